"""Channels and the events they send."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.models.base import Base, BigID, enum_type, utcnow
from engine.models.states import ChannelKind, EventStatus

if TYPE_CHECKING:
    from engine.models.customers import Customer


class Channel(Base):
    """A system that posts events to Throughline and receives its actions.

    Secrets are stored encrypted (see engine.crypto); during a rotation's grace period the
    previous inbound secret stays valid until `previous_inbound_expires_at`.
    """

    __tablename__ = "channels"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[ChannelKind] = mapped_column(enum_type(ChannelKind))
    inbound_secret: Mapped[str] = mapped_column(Text)
    previous_inbound_secret: Mapped[str | None] = mapped_column(Text)
    previous_inbound_expires_at: Mapped[datetime | None]
    outbound_secret: Mapped[str] = mapped_column(Text)
    outbound_url: Mapped[str | None] = mapped_column(String(2048))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    rate_limit: Mapped[int] = mapped_column(Integer, default=100)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Event(Base):
    """An event received from a channel; its key (`EventKey`) makes a repeat harmless.

    On PostgreSQL the table is partitioned by `received_at` (engine.partitions): its primary
    key there is (id, received_at), and no other table's foreign key points into it.
    """

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_pending", "status", "partition", "id"),
        Index("ix_events_channel_received", "channel_id", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    # No foreign key (migration 0017): channels are disabled, never deleted, and the
    # lookup cost every event stored.
    channel_id: Mapped[int] = mapped_column(Integer)
    webhook_id: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(200))
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    partition: Mapped[int] = mapped_column(Integer, default=0)
    payload: Mapped[dict[str, Any]]
    status: Mapped[EventStatus] = mapped_column(
        enum_type(EventStatus), default=EventStatus.pending
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None]
    # The W3C trace context it came with, or a new one (engine.tracing).
    traceparent: Mapped[str | None] = mapped_column(String(55))

    # For the order of inserts within one flush (rows this one names are written first);
    # code reads and writes the id columns.
    customer: Mapped[Customer | None] = relationship(lazy="raise")


class EventKey(Base):
    """The (channel, webhook id) of every event kept: a repeat finds its first event here.

    Kept apart from `events` because a unique key of a partitioned table must hold the time
    it is partitioned by, and a retry comes at another time. A key goes when its event's
    period is dropped (engine.partitions); an erased customer's keys stay, so a retry of
    their event is still answered as a repeat, not applied again.
    """

    __tablename__ = "event_keys"
    __table_args__ = (
        # Keys are written in time order: a BRIN index on PostgreSQL costs next to nothing
        # per insert and finds the old keys to trim.
        Index("ix_event_keys_received_at", "received_at", postgresql_using="brin"),
    )

    channel_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    webhook_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    event_id: Mapped[int] = mapped_column(BigID)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
