"""Runs of customers through journey versions, their steps, and the deliveries they ask for."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    event,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.models.base import Base, BigID, enum_type, utcnow
from engine.models.states import DeliveryStatus, RunStatus

if TYPE_CHECKING:
    from engine.models.customers import Customer


class Run(Base):
    """One customer's way through one journey version."""

    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_due", "status", "wake_at"),
        Index("ix_runs_customer", "customer_id", "status"),
        # The runs in a journey now, by status and node (the canvas reads them every 5 s).
        Index("ix_runs_journey_node", "journey_id", "status", "current_node"),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    journey_id: Mapped[int] = mapped_column(
        ForeignKey("journeys.id", ondelete="CASCADE")
    )
    version_id: Mapped[int] = mapped_column(
        ForeignKey("journey_versions.id", ondelete="CASCADE")
    )
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE")
    )
    status: Mapped[RunStatus] = mapped_column(
        enum_type(RunStatus), default=RunStatus.active
    )
    current_node: Mapped[str | None] = mapped_column(String(100))
    wake_at: Mapped[datetime | None]
    awaiting_event: Mapped[str | None] = mapped_column(String(200))
    context: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # What the runner needs between advances: the trigger and latest event, what it awaits.
    state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The event that started it (no foreign key: events are partitioned by time, and this
    # one may be dropped with its period while the run goes on).
    trigger_event_id: Mapped[int | None] = mapped_column(BigID)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The trace of the event that started it, which steps after a wait belong to.
    traceparent: Mapped[str | None] = mapped_column(String(55))
    ended_at: Mapped[datetime | None]
    converted_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    # For the order of inserts within one flush (rows this one names are written first);
    # code reads and writes the id columns.
    customer: Mapped[Customer] = relationship(lazy="raise")


class Step(Base):
    """One node a run passed through, with the reason it went where it went (partitioned by
    `at` on PostgreSQL, its primary key there (id, at))."""

    __tablename__ = "steps"
    __table_args__ = (Index("ix_steps_run", "run_id", "id"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    # No foreign key, nor on deliveries' run, journey and channel: each cost PostgreSQL a
    # lookup per row written (migration 0017). An erasure deletes runs, then their steps.
    run_id: Mapped[int] = mapped_column(BigID)
    node_id: Mapped[str] = mapped_column(String(100))
    node_type: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    # The trace of what caused it: an event, or for steps after a wait, the run's start.
    trace_id: Mapped[str | None] = mapped_column(String(32))


def new_delivery_id() -> str:
    return "dlv_" + uuid.uuid4().hex


class Delivery(Base):
    """An action toward a channel or URL; its id is the `webhook-id` of every attempt
    (partitioned by `created_at` on PostgreSQL, its primary key there (id, created_at))."""

    __tablename__ = "deliveries"
    __table_args__ = (
        Index("ix_deliveries_due", "status", "next_attempt_at"),
        Index("ix_deliveries_customer", "customer_id", "created_at"),
        Index("ix_deliveries_channel_created", "channel_id", "created_at"),
        Index("ix_deliveries_channel_finished", "channel_id", "finished_at"),
    )

    id: Mapped[str] = mapped_column(
        String(40), primary_key=True, default=new_delivery_id
    )
    run_id: Mapped[int | None] = mapped_column(BigID)
    # The one foreign key kept: a delivery made for a profile while it is erased goes too.
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE")
    )
    journey_id: Mapped[int | None] = mapped_column(Integer)
    node_id: Mapped[str | None] = mapped_column(String(100))
    channel_id: Mapped[int | None] = mapped_column(Integer)
    url: Mapped[str | None] = mapped_column(String(2048))
    # The delivery this one stands in for (no foreign key, as deliveries are partitioned).
    fallback_of_id: Mapped[str | None] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16), default="send")
    holds_run: Mapped[bool] = mapped_column(Boolean, default=False)
    # A receipt or password reset: no policy holds it back, and no frequency cap counts it.
    transactional: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    payload: Mapped[dict[str, Any]]
    status: Mapped[DeliveryStatus] = mapped_column(
        enum_type(DeliveryStatus), default=DeliveryStatus.pending
    )
    reason: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    response_status: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[datetime | None]
    deadline_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # Sent as the `traceparent` header of the call: the trace of the event that caused it.
    traceparent: Mapped[str | None] = mapped_column(String(55))

    # For the order of inserts within one flush (rows this one names are written first);
    # code reads and writes the id columns.
    customer: Mapped[Customer | None] = relationship(lazy="raise")


@event.listens_for(Delivery, "init")
def _delivery_id(_target: Delivery, _args: Any, kwargs: dict[str, Any]) -> None:
    """A delivery gets its id when it is made, not when it is inserted. With every key known,
    a flush inserts a batch's deliveries through one statement the driver prepares once; with
    the keys left to the column default, it built a statement of one VALUES group per row,
    different for every batch size, for the driver and the database to parse each time."""
    kwargs.setdefault("id", new_delivery_id())
