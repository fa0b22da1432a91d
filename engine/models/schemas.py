"""Event schemas (a tracking plan), their versions, and the events they refused or flagged."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.models.base import Base, BigID, JSONDoc, utcnow


class EventSchema(Base):
    """The schema of one event type's properties now (engine.schemas reads it)."""

    __tablename__ = "event_schemas"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_type: Mapped[str] = mapped_column(String(200), unique=True)
    mode: Mapped[str] = mapped_column(String(8))
    channels: Mapped[list[str]] = mapped_column(JSONDoc, default=list)
    schema: Mapped[dict[str, Any]]
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(254))


class EventSchemaVersion(Base):
    """Every schema an event type has had, kept as it was."""

    __tablename__ = "event_schema_versions"
    __table_args__ = (UniqueConstraint("schema_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    schema_id: Mapped[int] = mapped_column(
        ForeignKey("event_schemas.id", ondelete="CASCADE")
    )
    version: Mapped[int] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(8))
    channels: Mapped[list[str]] = mapped_column(JSONDoc, default=list)
    schema: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(254))


class SchemaViolation(Base):
    """An event that broke its schema: refused and kept to be replayed (its body kept), or
    taken and flagged (the event it became named). Kept until `expires_at`."""

    __tablename__ = "schema_violations"
    __table_args__ = (
        Index("ix_schema_violations_type", "event_type", "id"),
        Index("ix_schema_violations_channel", "channel_id", "id"),
        Index("ix_schema_violations_expires_at", "expires_at"),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    channel_id: Mapped[int] = mapped_column(
        ForeignKey("channels.id", ondelete="CASCADE")
    )
    event_type: Mapped[str] = mapped_column(String(200))
    webhook_id: Mapped[str] = mapped_column(String(255))
    # refused (in quarantine), replayed (taken later), or flagged (taken with its problems)
    outcome: Mapped[str] = mapped_column(String(16))
    body: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc)
    problems: Mapped[list[dict[str, str]]] = mapped_column(JSONDoc, default=list)
    event_id: Mapped[int | None] = mapped_column(BigID)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    replayed_at: Mapped[datetime | None]
