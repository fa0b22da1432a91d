"""Storing inbound events: one durable insert each, a repeat of a webhook id answered as before."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from engine.events import IncomingEvent, partition_for
from engine.models import Event, EventStatus


@dataclass(frozen=True)
class ToStore:
    webhook_id: str
    body: dict[str, Any]
    parsed: IncomingEvent


@dataclass(frozen=True)
class Stored:
    webhook_id: str
    event_id: int
    partition: int
    duplicate: bool


def store_events(
    session: Session,
    channel_id: int,
    items: Sequence[ToStore],
    partitions: int,
    now: datetime,
) -> list[Stored]:
    """Insert events (a repeated webhook id inserts nothing); the caller commits."""
    if not items:
        return []
    rows = []
    for item in items:
        parsed = item.parsed
        rows.append(
            {
                "channel_id": channel_id,
                "webhook_id": item.webhook_id,
                "type": parsed.type,
                "partition": partition_for(parsed.identifiers, partitions),
                "payload": item.body,
                "status": EventStatus.pending,
                "attempts": 0,
                "occurred_at": parsed.occurred_at or now,
                "received_at": now,
            }
        )
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    # A Core insert with the rows as parameters: it compiles once and is cached, and skips
    # the ORM's bulk machinery, which costs more than the round trip on this hot path.
    table = cast(Table, Event.__table__)
    statement = (
        insert(table)
        .on_conflict_do_nothing(index_elements=["channel_id", "webhook_id"])
        .returning(table.c.webhook_id, table.c.id, table.c.partition)
    )
    connection = session.connection()
    cursor = (
        connection.execute(statement, rows[0])
        if len(rows) == 1
        else connection.execute(statement, rows)
    )
    inserted = {
        webhook_id: (event_id, partition) for webhook_id, event_id, partition in cursor
    }
    missing = [item.webhook_id for item in items if item.webhook_id not in inserted]
    earlier: dict[str, tuple[int, int]] = {}
    if missing:
        found = session.execute(
            select(Event.webhook_id, Event.id, Event.partition).where(
                Event.channel_id == channel_id, Event.webhook_id.in_(missing)
            )
        )
        earlier = {
            webhook_id: (event_id, partition)
            for webhook_id, event_id, partition in found
        }
    result = []
    for item in items:
        if item.webhook_id in inserted:
            event_id, partition = inserted[item.webhook_id]
            result.append(Stored(item.webhook_id, event_id, partition, False))
        else:
            event_id, partition = earlier[item.webhook_id]
            result.append(Stored(item.webhook_id, event_id, partition, True))
    return result
