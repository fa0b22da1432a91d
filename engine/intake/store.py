"""Storing inbound events durably in one statement per group; a repeat of a webhook id is
answered as before (its first row), not stored twice."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, delete, insert, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError

from engine import jsontext, tracing
from engine.intake.contract import IncomingEvent, partition_for
from engine.models import Event, EventKey, EventStatus

# The events of a request or a group in one statement on PostgreSQL: their rows travel as one
# JSON document, so the statement is the same whatever their number (the driver prepares it
# once) and encoding them is one `jsontext.dumps`. The first of each webhook id is given an
# id (in the order of the document) and takes its key; only the rows that took a key are
# inserted. Keys are taken in the order of their webhook ids, so two requests carrying the
# same ids in another order wait for each other instead of deadlocking. It goes through the
# driver itself (`_insert_postgres`), so its parameters are written in the driver's style.
_PG_INSERT = """
    WITH u AS (
        SELECT DISTINCT ON (webhook_id) *
        FROM ROWS FROM (jsonb_to_recordset(CAST(%(rows)s AS jsonb))
                        AS (webhook_id text, type text, partition integer, payload jsonb,
                            occurred_at timestamptz, traceparent text))
             WITH ORDINALITY AS u(webhook_id, type, partition, payload, occurred_at,
                                  traceparent, n)
        ORDER BY webhook_id, n
    ), numbered AS (
        SELECT u.*, nextval('events_id_seq') AS event_id FROM u ORDER BY u.n
    ), keyed AS (
        INSERT INTO event_keys (channel_id, webhook_id, event_id, received_at)
        SELECT %(channel_id)s, webhook_id, event_id, %(received_at)s
        FROM numbered ORDER BY webhook_id
        ON CONFLICT DO NOTHING
        RETURNING webhook_id, event_id
    )
    INSERT INTO events (id, channel_id, webhook_id, type, partition, payload, status,
                        attempts, occurred_at, received_at, traceparent)
    SELECT keyed.event_id, %(channel_id)s, u.webhook_id, u.type, u.partition, u.payload,
           %(status)s, 0, u.occurred_at, %(received_at)s, u.traceparent
    FROM numbered u JOIN keyed ON keyed.webhook_id = u.webhook_id
    ORDER BY u.n
    RETURNING webhook_id, id, partition
"""


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
    rows: list[dict[str, Any]] = [
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
    inserted = (
        _insert_postgres(connection, channel_id, rows, now)
        if connection.dialect.name == "postgresql"
        else _insert_sqlite(connection, channel_id, rows, now)
    )
    missing = [item.webhook_id for item in items if item.webhook_id not in inserted]
    known = known_events(connection, channel_id, missing)
    earlier = {
        item.webhook_id: (known[item.webhook_id], rows[n]["partition"])
        for n, item in enumerate(items)
        if item.webhook_id in known
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


def _insert_postgres(
    connection: Connection, channel_id: int, rows: list[dict[str, Any]], now: datetime
) -> dict[str, tuple[int, int]]:
    """Insert through the driver's own connection: for the group of a few events a
    committing thread stores, SQLAlchemy's execution (its context, parameters and result)
    cost more CPU than the driver's call and the answer together (docs/benchmarks.md).
    The driver's errors are raised as SQLAlchemy's, as `connection.execute` raises them."""
    parameters = {
        "channel_id": channel_id,
        "status": EventStatus.pending.value,
        "received_at": now,
        "rows": jsontext.dumps(rows),
    }
    autocommit = connection.get_execution_options().get("isolation_level")
    if autocommit != "AUTOCOMMIT" and not connection.in_transaction():
        connection.begin()  # as `execute` would: the caller's commit then commits it
    driver = connection.connection.driver_connection
    if driver is None:
        raise RuntimeError("the connection has no driver connection")
    try:
        with driver.cursor() as cursor:
            found = cursor.execute(_PG_INSERT, parameters, prepare=True).fetchall()
    except connection.dialect.loaded_dbapi.Error as error:
        if connection.dialect.is_disconnect(error, driver, None):
            connection.invalidate(error)
        raise DBAPIError.instance(
            _PG_INSERT,
            parameters,
            error,
            connection.dialect.loaded_dbapi.Error,
            hide_parameters=connection.engine.hide_parameters,
            dialect=connection.dialect,
            connection_invalidated=connection.invalidated,
        ) from error
    return {webhook_id: (event_id, part) for webhook_id, event_id, part in found}


def _insert_sqlite(
    connection: Connection, channel_id: int, rows: list[dict[str, Any]], now: datetime
) -> dict[str, tuple[int, int]]:
    """Insert the events, then their keys; an event whose key was taken (by an earlier
    event, or by the first of the same id here) is deleted again before anyone sees it:
    SQLite has one writer at a time."""
    # Core inserts with the rows as parameters: they compile once and are cached, and skip
    # the ORM's bulk machinery, which costs more than the round trip here.
    table = cast(Table, Event.__table__)
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
    # One statement, its rows given ids in the order of the values (the first of a webhook
    # id repeated here takes the key).
    made = sorted(
        (
            (str(webhook_id), int(event_id), int(part))
            for webhook_id, event_id, part in connection.execute(
                insert(table).returning(
                    table.c.webhook_id, table.c.id, table.c.partition
                ),
                values[0] if len(values) == 1 else values,
            )
        ),
        key=lambda row: row[1],
    )
    keys = cast(Table, EventKey.__table__)
    taken = {
        event_id
        for (event_id,) in connection.execute(
            sqlite_insert(keys).on_conflict_do_nothing().returning(keys.c.event_id),
            [
                {
                    "channel_id": channel_id,
                    "webhook_id": webhook_id,
                    "event_id": event_id,
                    "received_at": now,
                }
                for webhook_id, event_id, _part in made
            ],
        )
    }
    lost = [event_id for _w, event_id, _p in made if event_id not in taken]
    if lost:
        connection.execute(delete(table).where(table.c.id.in_(lost)))
    return {w: (event_id, part) for w, event_id, part in made if event_id in taken}


def known_events(
    connection: Connection, channel_id: int, webhook_ids: list[str]
) -> dict[str, int]:
    """The events a channel sent before under these webhook ids: webhook id -> event id."""
    if not webhook_ids:
        return {}
    return {
        webhook_id: int(event_id)
        for webhook_id, event_id in connection.execute(
            select(EventKey.webhook_id, EventKey.event_id).where(
                EventKey.channel_id == channel_id, EventKey.webhook_id.in_(webhook_ids)
            )
        )
    }


def fresh_per_partition(stored: Sequence[Stored]) -> dict[int, int]:
    """How many new events each partition got (what the drains are signalled about)."""
    fresh: dict[int, int] = {}
    for item in stored:
        if not item.duplicate:
            fresh[item.partition] = fresh.get(item.partition, 0) + 1
    return fresh
