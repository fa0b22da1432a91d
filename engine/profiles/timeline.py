"""A customer's history across channels: events in, steps, deliveries, profile changes.

Entries come newest first from four tables. Each carries a `cursor` naming its place in
that order (time, then kind, then id), so a page can ask for what comes after it without
skipping entries that share a timestamp or missing older ones.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, SQLColumnExpression, and_, func, or_, select, true
from sqlalchemy.orm import Session

from engine import tracing
from engine.intake.payload import LARGEST_INTEGER
from engine.models import AuditEntry, Customer, Delivery, Event, Run, Step

# Among entries of the same instant, the later kinds are shown first (newest first): an
# event causes steps, a step causes deliveries, and profile notes come last.
KINDS = ("event", "step", "delivery", "profile")
SEPARATOR = "~"


class CursorError(ValueError):
    """A `before` value that is neither a timeline cursor nor an ISO 8601 date-time."""


@dataclass(frozen=True)
class Cursor:
    """A place in the timeline: entries strictly older than it come after it."""

    at: datetime
    rank: int | None = None  # None: everything before `at`, whatever its kind
    key: str = ""

    @classmethod
    def parse(cls, raw: str) -> Cursor:
        """Read a cursor (`<time>~<kind>~<id>`) or a bare ISO 8601 date-time."""
        at_text, _, rest = raw.partition(SEPARATOR)
        try:
            at = datetime.fromisoformat(at_text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise CursorError(
                "before must be a cursor from the timeline or an ISO 8601 date-time"
            ) from None
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
        if not rest:
            return cls(at)
        kind, _, key = rest.partition(SEPARATOR)
        if kind not in KINDS or not key or "\x00" in key:
            raise CursorError("before names an unknown timeline entry")
        if kind != "delivery" and not (
            key.isdigit() and len(key) <= 19 and int(key) <= LARGEST_INTEGER
        ):
            raise CursorError("before names an unknown timeline entry")
        return cls(at, KINDS.index(kind), key)

    def window(
        self,
        kind: str,
        at: SQLColumnExpression[datetime],
        key: SQLColumnExpression[Any],
    ) -> ColumnElement[bool]:
        """The SQL condition for rows of `kind` that come after this cursor."""
        rank = KINDS.index(kind)
        if self.rank is None or rank > self.rank:
            return at < self.at
        if rank < self.rank:
            return at <= self.at
        value: int | str = self.key if kind == "delivery" else int(self.key)
        return or_(at < self.at, and_(at == self.at, key < value))


def cursor_of(at: datetime, kind: str, key: object) -> str:
    return f"{at.isoformat()}{SEPARATOR}{kind}{SEPARATOR}{key}"


def profile_ids(session: Session, customer: Customer) -> list[int]:
    """The profile and those merged into it (their notes are part of its history)."""
    merged = session.scalars(
        select(Customer.id).where(Customer.merged_into_id == customer.id)
    )
    return [customer.id, *merged]


def _events(
    session: Session, customer: Customer, limit: int, after: Cursor | None
) -> Iterator[tuple[datetime, str, Any, dict[str, Any]]]:
    where = after.window("event", Event.received_at, Event.id) if after else true()
    for event in session.scalars(
        select(Event)
        .where(Event.customer_id == customer.id, where)
        .order_by(Event.received_at.desc(), Event.id.desc())
        .limit(limit)
    ):
        yield (
            event.received_at,
            "event",
            event.id,
            {
                "event_id": event.id,
                "type": event.type,
                "channel_id": event.channel_id,
                "status": event.status.value,
                "occurred_at": event.occurred_at.isoformat(),
                "properties": event.payload.get("properties", {}),
                "traits": event.payload.get("traits", {}),
                "error": event.error,
                "trace_id": tracing.trace_id(event.traceparent),
            },
        )


def _steps(
    session: Session, customer: Customer, limit: int, after: Cursor | None
) -> Iterator[tuple[datetime, str, Any, dict[str, Any]]]:
    where = after.window("step", Step.at, Step.id) if after else true()
    for step, journey_id, version_id in session.execute(
        select(Step, Run.journey_id, Run.version_id)
        .join(Run, Run.id == Step.run_id)
        .where(Run.customer_id == customer.id, where)
        .order_by(Step.at.desc(), Step.id.desc())
        .limit(limit)
    ):
        yield (
            step.at,
            "step",
            step.id,
            {
                "step_id": step.id,
                "journey_id": journey_id,
                "version_id": version_id,
                "run_id": step.run_id,
                "node": step.node_id,
                "type": step.node_type,
                "outcome": step.outcome,
                "reason": step.detail.get("reason"),
                "detail": step.detail,
                "trace_id": step.trace_id,
            },
        )


def _deliveries(
    session: Session, customer: Customer, limit: int, after: Cursor | None
) -> Iterator[tuple[datetime, str, Any, dict[str, Any]]]:
    at = func.coalesce(Delivery.finished_at, Delivery.created_at)
    where = after.window("delivery", at, Delivery.id) if after else true()
    for delivery in session.scalars(
        select(Delivery)
        .where(Delivery.customer_id == customer.id, where)
        .order_by(at.desc(), Delivery.id.desc())
        .limit(limit)
    ):
        body = delivery.payload.get("body") or {}
        yield (
            delivery.finished_at or delivery.created_at,
            "delivery",
            delivery.id,
            {
                "delivery_id": delivery.id,
                "channel_id": delivery.channel_id,
                "journey_id": delivery.journey_id,
                "node": delivery.node_id,
                "action": delivery.kind,
                "status": delivery.status.value,
                "reason": delivery.reason,
                "attempts": delivery.attempts,
                "response_status": delivery.response_status,
                "last_error": delivery.last_error,
                "fallback_of": delivery.fallback_of_id,
                # What was sent; a webhook's headers may hold credentials and stay out.
                "message": body.get("message") if delivery.kind == "send" else None,
                "trace_id": tracing.trace_id(delivery.traceparent),
            },
        )


def _notes(
    session: Session, ids: Sequence[int], limit: int, after: Cursor | None
) -> Iterator[tuple[datetime, str, Any, dict[str, Any]]]:
    where = after.window("profile", AuditEntry.at, AuditEntry.id) if after else true()
    for note in session.scalars(
        select(AuditEntry)
        .where(
            AuditEntry.target_type == "customer",
            AuditEntry.target_id.in_([str(i) for i in ids]),
            where,
        )
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        .limit(limit)
    ):
        yield (
            note.at,
            "profile",
            note.id,
            {
                "entry_id": note.id,
                "action": note.action,
                "actor": note.actor,
                "detail": note.detail,
            },
        )


def timeline(
    session: Session, customer: Customer, limit: int = 200, before: str | None = None
) -> list[dict[str, Any]]:
    """Up to `limit` entries, newest first, after the `before` cursor when one is given.

    Raises CursorError for a `before` that cannot be read.
    """
    after = Cursor.parse(before) if before else None
    rows = [
        *_events(session, customer, limit, after),
        *_steps(session, customer, limit, after),
        *_deliveries(session, customer, limit, after),
        *_notes(session, profile_ids(session, customer), limit, after),
    ]
    rows.sort(key=lambda row: (row[0], KINDS.index(row[1]), row[2]), reverse=True)
    return [
        {
            "at": at.isoformat(),
            "kind": kind,
            **fields,
            "cursor": cursor_of(at, kind, key),
        }
        for at, kind, key, fields in rows[:limit]
    ]


def whole_timeline(
    session: Session, customer: Customer, batch: int = 500
) -> list[dict[str, Any]]:
    """Every entry, newest first, read a batch at a time."""
    entries: list[dict[str, Any]] = []
    before: str | None = None
    while True:
        page = timeline(session, customer, batch, before)
        entries.extend(page)
        if len(page) < batch:
            return entries
        before = page[-1]["cursor"]
