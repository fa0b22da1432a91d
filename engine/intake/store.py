"""Storing inbound events durably in one statement per group; a repeat of a webhook id is
answered as before (its first row), not stored twice."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, select, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from engine import tracing
from engine.intake.contract import IncomingEvent, partition_for
from engine.models import Event, EventStatus

# The events of a request or a group in one statement on PostgreSQL: their rows travel as one
# JSON document, so the statement is the same whatever their number (the driver prepares it
# once) and encoding them is one `json.dumps`; ids follow the order of the document.
_PG_INSERT = text(
    """
    INSERT INTO events (channel_id, webhook_id, type, partition, payload, status,
                        attempts, occurred_at, received_at, traceparent)
    SELECT :channel_id, u.webhook_id, u.type, u.partition, u.payload, :status,
           0, u.occurred_at, :received_at, u.traceparent
    FROM ROWS FROM (jsonb_to_recordset(CAST(:rows AS jsonb))
                    AS (webhook_id text, type text, partition integer, payload jsonb,
                        occurred_at timestamptz, traceparent text))
         WITH ORDINALITY AS u(webhook_id, type, partition, payload, occurred_at,
                              traceparent, n)
    ORDER BY u.n
    ON CONFLICT (channel_id, webhook_id) DO NOTHING
    RETURNING webhook_id, id, partition
    """
)


@dataclass(frozen=True)
class ToStore:
    webhook_id: str
    body: dict[str, Any]
    parsed: IncomingEvent
    # The W3C trace context of the request that brought it (None: a new trace).
    traceparent: str | None = None


@dataclass(frozen=True)
class Stored:
    webhook_id: str
    event_id: int
    partition: int
    duplicate: bool


def store_events(
    connection: Connection,
    channel_id: int,
    items: Sequence[ToStore],
    partitions: int,
    now: datetime,
) -> list[Stored]:
    """Insert events (a repeated webhook id inserts nothing); the caller commits."""
    if not items:
        return []
    rows = [
        {
            "webhook_id": item.webhook_id,
            "type": item.parsed.type,
            "partition": partition_for(item.parsed.identifiers, partitions),
            "payload": item.body,
            "occurred_at": item.parsed.occurred_at or now,
            "traceparent": item.traceparent or tracing.new(),
        }
        for item in items
    ]
    found: Iterable[Any]
    if connection.dialect.name == "postgresql":
        found = connection.execute(
            _PG_INSERT,
            {
                "channel_id": channel_id,
                "status": EventStatus.pending.value,
                "received_at": now,
                "rows": json.dumps(
                    rows, separators=(",", ":"), default=datetime.isoformat
                ),
            },
        )
    else:
        # A Core insert with the rows as parameters: it compiles once and is cached, and
        # skips the ORM's bulk machinery, which costs more than the round trip here.
        table = cast(Table, Event.__table__)
        statement = (
            sqlite_insert(table)
            .on_conflict_do_nothing(index_elements=["channel_id", "webhook_id"])
            .returning(table.c.webhook_id, table.c.id, table.c.partition)
        )
        values = [
            {
                **row,
                "channel_id": channel_id,
                "status": EventStatus.pending,
                "attempts": 0,
                "received_at": now,
            }
            for row in rows
        ]
        found = connection.execute(statement, values[0] if len(values) == 1 else values)
    inserted = {
        webhook_id: (event_id, partition) for webhook_id, event_id, partition in found
    }
    missing = [item.webhook_id for item in items if item.webhook_id not in inserted]
    earlier: dict[str, tuple[int, int]] = {}
    if missing:
        found = connection.execute(
            select(Event.webhook_id, Event.id, Event.partition).where(
                Event.channel_id == channel_id, Event.webhook_id.in_(missing)
            )
        )
        earlier = {
            webhook_id: (event_id, partition)
            for webhook_id, event_id, partition in found
        }
    result = []
    answered: set[str] = set()
    for item in items:
        # The same id twice in one insert (two requests racing) stores one event: the
        # first is answered as new, the other as a repeat.
        new = item.webhook_id in inserted and item.webhook_id not in answered
        answered.add(item.webhook_id)
        event_id, partition = (inserted if item.webhook_id in inserted else earlier)[
            item.webhook_id
        ]
        result.append(Stored(item.webhook_id, event_id, partition, not new))
    return result


def fresh_per_partition(stored: Sequence[Stored]) -> dict[int, int]:
    """How many new events each partition got (what the drains are signalled about)."""
    fresh: dict[int, int] = {}
    for item in stored:
        if not item.duplicate:
            fresh[item.partition] = fresh.get(item.partition, 0) + 1
    return fresh
