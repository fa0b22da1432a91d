"""Event schemas in SQL: one per event type with its versions, read through a short
per-process cache by intake; the quarantine of refused events and the flags of taken ones."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import URL, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine import audit
from engine.analytics import counters
from engine.analytics.counters import Metric
from engine.db import Database
from engine.intake.contract import normalize_identifier
from engine.models import Channel, Event, SchemaViolation, User, utcnow
from engine.models import EventSchema as SchemaRow
from engine.models import EventSchemaVersion as VersionRow
from engine.schemas import (
    EventSchema,
    Problem,
    SchemaDocumentError,
    compiled,
    infer,
    parse,
)

# How long a process keeps the schemas it read: a change reaches every web process within
# this (the process that made it sees it at once).
CACHE_SECONDS = 5.0
KEPT = timedelta(days=7)  # how long refused events wait in the quarantine
REFUSED, FLAGGED, REPLAYED = "refused", "flagged", "replayed"
SAMPLES = 200  # recent events a draft schema is inferred from

_lock = threading.Lock()
_cache: dict[URL, tuple[float, dict[str, EventSchema]]] = {}


def forget() -> None:
    with _lock:
        _cache.clear()


def _of(row: SchemaRow) -> EventSchema:
    return compiled(
        EventSchema(
            row.event_type, row.schema, row.mode, tuple(row.channels or ()), row.version
        )
    )


def _cached(
    where: URL, read: Callable[[], dict[str, EventSchema]]
) -> dict[str, EventSchema]:
    now = time.monotonic()
    with _lock:
        found = _cache.get(where)
    if found is not None and now - found[0] < CACHE_SECONDS:
        return found[1]
    schemas = read()
    with _lock:
        _cache[where] = (now, schemas)
    return schemas


def _read(session: Session) -> dict[str, EventSchema]:
    return {row.event_type: _of(row) for row in session.scalars(select(SchemaRow))}


def every(session: Session) -> dict[str, EventSchema]:
    """Every event type's schema, read at most once per CACHE_SECONDS per process."""
    return _cached(session.get_bind().engine.url, lambda: _read(session))


def every_in(database: Database) -> dict[str, EventSchema]:
    """As `every`, with a session of its own opened only when the schemas are read."""

    def read() -> dict[str, EventSchema]:
        with database.session() as session:
            return _read(session)

    return _cached(database.engine.url, read)


def for_event(session: Session, event_type: str, channel: str) -> EventSchema | None:
    """The schema an event of `event_type` from `channel` must meet, if any."""
    return _applying(every(session).get(event_type), channel)


def for_event_in(
    database: Database, event_type: str, channel: str
) -> EventSchema | None:
    """As `for_event`, opening a session only when the cached schemas are too old."""
    return _applying(every_in(database).get(event_type), channel)


def _applying(schema: EventSchema | None, channel: str) -> EventSchema | None:
    return schema if schema is not None and schema.applies_to(channel) else None


def row_of(session: Session, event_type: str) -> SchemaRow | None:
    return session.scalar(select(SchemaRow).where(SchemaRow.event_type == event_type))


def save(session: Session, event_type: str, raw: Any, actor: User | None) -> SchemaRow:
    """Make `raw` the schema of `event_type`, as a new version, audited
    (SchemaDocumentError naming each problem); the caller commits."""
    slugs = set(session.scalars(select(Channel.slug)))
    schema = parse(event_type, raw, slugs)
    row = session.scalar(
        select(SchemaRow).where(SchemaRow.event_type == event_type).with_for_update()
    )
    who = actor.email if actor else audit.SYSTEM
    if row is None:
        row = SchemaRow(event_type=event_type, version=0)
        session.add(row)
    row.mode, row.channels, row.schema = (
        schema.mode,
        list(schema.channels),
        dict(schema.schema),
    )
    row.version += 1
    row.updated_at, row.updated_by = utcnow(), who
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:  # a first schema saved at the same moment
        raise SchemaDocumentError(
            [("", "the schema was saved at the same moment by someone else; try again")]
        ) from None
    session.add(
        VersionRow(
            schema_id=row.id,
            version=row.version,
            mode=row.mode,
            channels=list(row.channels),
            schema=dict(row.schema),
            created_by=who,
        )
    )
    audit.record(
        session,
        actor,
        "schema.update",
        "event_type",
        event_type,
        {"version": row.version, "mode": row.mode},
    )
    session.flush()
    forget()
    return row


def versions(session: Session, row: SchemaRow) -> list[VersionRow]:
    return list(
        session.scalars(
            select(VersionRow)
            .where(VersionRow.schema_id == row.id)
            .order_by(VersionRow.version.desc())
        )
    )


def quarantine(
    session: Session,
    channel_id: int,
    webhook_id: str,
    event_type: str,
    body: dict[str, Any],
    problems: tuple[Problem, ...],
    now: datetime,
) -> None:
    """Keep a refused event, its body and why, for KEPT (once: a retry of one still
    waiting keeps nothing more); the caller commits."""
    waiting_already = session.scalar(
        select(SchemaViolation.id).where(
            SchemaViolation.channel_id == channel_id,
            SchemaViolation.webhook_id == webhook_id,
            SchemaViolation.outcome == REFUSED,
        )
    )
    if waiting_already is not None:
        return
    session.execute(
        insert(SchemaViolation).values(
            channel_id=channel_id,
            event_type=event_type,
            webhook_id=webhook_id,
            outcome=REFUSED,
            body=body,
            problems=[p.as_dict() for p in problems],
            received_at=now,
            expires_at=now + KEPT,
        )
    )
    counters.add(
        session,
        Metric.SCHEMA,
        now,
        node_id=event_type,
        channel_id=channel_id,
        label=REFUSED,
    )


@dataclass(frozen=True)
class Flag:
    """A taken event that broke its schema (or lost properties to it)."""

    event_id: int
    webhook_id: str
    event_type: str
    problems: tuple[Problem, ...]


def flag(session: Session, channel_id: int, flags: list[Flag], now: datetime) -> None:
    """Mark taken events with their problems, for KEPT; the caller commits."""
    if not flags:
        return
    session.execute(
        insert(SchemaViolation),
        [
            {
                "channel_id": channel_id,
                "event_type": item.event_type,
                "webhook_id": item.webhook_id,
                "outcome": FLAGGED,
                "body": None,
                "problems": [p.as_dict() for p in item.problems],
                "event_id": item.event_id,
                "received_at": now,
                "expires_at": now + KEPT,
            }
            for item in flags
        ],
    )
    for item in flags:
        counters.add(
            session,
            Metric.SCHEMA,
            now,
            node_id=item.event_type,
            channel_id=channel_id,
            label=FLAGGED,
        )


def replayed(
    session: Session,
    event_type: str,
    taken: dict[int, int],
    still: dict[int, list[dict[str, str]]],
    actor: User | None,
    now: datetime,
) -> None:
    """Record a replay: the rows taken (row id -> the event it became) let go of their
    bodies, those still refused keep their problems as they are now; audited. The caller
    commits."""
    for row_id, event_id in taken.items():
        session.execute(
            update(SchemaViolation)
            .where(SchemaViolation.id == row_id)
            .values(outcome=REPLAYED, event_id=event_id, replayed_at=now, body=None)
        )
    for row_id, problems in still.items():
        session.execute(
            update(SchemaViolation)
            .where(SchemaViolation.id == row_id)
            .values(problems=problems)
        )
    audit.record(
        session,
        actor,
        "schema.replay",
        "event_type",
        event_type,
        {"taken": len(taken), "still_refused": len(still)},
    )


def count_stripped(
    session: Session, channel_id: int, event_type: str, now: datetime
) -> None:
    """Count a taken event whose properties the schema did not name were removed."""
    counters.add(
        session,
        Metric.SCHEMA,
        now,
        node_id=event_type,
        channel_id=channel_id,
        label="stripped",
    )


def waiting(session: Session, event_type: str | None = None) -> int:
    """Refused events still in the quarantine (of one type, or all)."""
    statement = select(func.count()).where(SchemaViolation.outcome == REFUSED)
    if event_type is not None:
        statement = statement.where(SchemaViolation.event_type == event_type)
    return int(session.scalar(statement) or 0)


def purge(session: Session, now: datetime) -> int:
    """Drop what was kept past its time; the number dropped."""
    result = session.execute(
        delete(SchemaViolation).where(SchemaViolation.expires_at < now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def samples(
    session: Session, event_type: str, limit: int = SAMPLES
) -> list[dict[str, Any]]:
    """The properties of the latest events of `event_type`."""
    rows = session.scalars(
        select(Event.payload)
        .where(Event.type == event_type)
        .order_by(Event.id.desc())
        .limit(limit)
    )
    found = []
    for payload in rows:
        properties = payload.get("properties") if isinstance(payload, dict) else None
        found.append(properties if isinstance(properties, dict) else {})
    return found


def draft(session: Session, event_type: str) -> tuple[dict[str, Any] | None, int]:
    """A schema inferred from the latest events of the type, and how many it read."""
    seen = samples(session, event_type)
    return infer(seen), len(seen)


def types_seen(session: Session, recent: int = 100_000) -> dict[str, int]:
    """Event types among the latest `recent` events, with how many of each."""
    last = session.scalar(select(func.max(Event.id))) or 0
    rows = session.execute(
        select(Event.type, func.count())
        .where(Event.id > last - recent)
        .group_by(Event.type)
    )
    return {kind: int(count) for kind, count in rows}


def kept_of(
    session: Session, identities: set[tuple[str, str]], event_ids: Any
) -> list[int]:
    """The rows the schemas kept of a customer: the flags of their events (`event_ids`,
    a subquery) and the refused bodies naming one of their identities ((kind, value))."""
    found = list(
        session.scalars(
            select(SchemaViolation.id).where(SchemaViolation.event_id.in_(event_ids))
        )
    )
    for row_id, body in session.execute(
        select(SchemaViolation.id, SchemaViolation.body).where(
            SchemaViolation.body.is_not(None)
        )
    ):
        customer = body.get("customer") if isinstance(body, dict) else None
        if isinstance(customer, dict) and any(
            (str(kind), normalize_identifier(str(kind), value)) in identities
            for kind, value in customer.items()
            if isinstance(value, str)
        ):
            found.append(row_id)
    return found


def drop(session: Session, row_ids: list[int]) -> int:
    """Drop kept rows (an erased customer's); how many went."""
    if not row_ids:
        return 0
    result = session.execute(
        delete(SchemaViolation).where(SchemaViolation.id.in_(row_ids))
    )
    return int(getattr(result, "rowcount", 0) or 0)
