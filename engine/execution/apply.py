"""Applying stored events: identity, traits, then runs resumed, exited, converted and started.

A partition's drain applies its pending events in arrival order, a batch per transaction and a
savepoint per event, so one bad event is marked failed without holding back the others.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from engine import bulk, execution
from engine.analytics import counters
from engine.delivery import LEASE
from engine.execution import batch, documents, live_runs, rows
from engine.intake.contract import EventError, IncomingEvent, parse_event
from engine.models import Customer, DeliveryStatus, Event, EventStatus, utcnow
from engine.profiles import identity

log = logging.getLogger("throughline.ingest")
MAX_ATTEMPTS = 3


@dataclass
class Taken:
    """A pending event as a fast drain reads it: the columns applying it reads, and those it
    sets, written for the whole batch in one statement (no ORM object per event)."""

    id: int
    channel_id: int
    type: str
    payload: dict[str, Any]
    occurred_at: datetime
    traceparent: str | None = None
    # Where its row is: the time `events` is partitioned by (engine.partitions).
    received_at: datetime | None = None
    customer_id: int | None = None
    customer: Customer | None = None
    status: EventStatus = EventStatus.pending
    processed_at: datetime | None = None
    error: str | None = None

    def outcome(self) -> dict[str, Any]:
        """The event's row as applying it left it."""
        customer_id = self.customer.id if self.customer else self.customer_id
        return {
            "id": self.id,
            "received_at": self.received_at,
            "customer_id": customer_id,
            "status": self.status,
            "processed_at": self.processed_at,
            "error": self.error,
        }


_EVENTS = cast(Table, Event.__table__)


def event_scope(
    event: Event | Taken, channel_slug: str, body: dict[str, Any]
) -> dict[str, Any]:
    """The event as rules and templates see it."""
    return {
        "id": event.id,
        "type": event.type,
        "channel": channel_slug,
        "properties": body.get("properties") or {},
        "traits": body.get("traits") or {},
        "occurred_at": event.occurred_at.isoformat(),
    }


def process_event(
    session: Session,
    event: Event | Taken,
    channel_slug: str,
    live: dict[str, list[documents.LiveJourney]],
    effects: execution.Effects,
    now: datetime,
    incoming: IncomingEvent | None = None,
) -> None:
    """Apply one stored event (`incoming`: its body, read already); everything it changes
    is in the caller's transaction, and in the event's trace."""
    if incoming is None:
        incoming = parse_event(event.payload)
    customer = identity.resolve(
        session, incoming.identifiers, event.channel_id, incoming.traits
    )
    identity.touch(customer, incoming.traits)
    _count_context(session, customer, event.channel_id, now)
    scope = identity.scope_of(session, customer)
    happened = event_scope(event, channel_slug, event.payload)
    runs = identity.active_runs(session, customer.id)
    attributes = {"throughline.event_id": event.id, "throughline.type": event.type}
    with rows.in_trace(session, "apply event", event.traceparent, attributes):
        live_runs.react(
            session, customer, runs, happened, event.id, live, scope, effects, now
        )
    if scope["traits"] != customer.traits:
        customer.traits = scope["traits"]  # profile updates made by the journeys
        customer.updated_at = now
    event.customer_id = customer.id
    event.customer = customer
    event.status, event.processed_at, event.error = EventStatus.processed, now, None


def _count_context(
    session: Session, customer: Customer, channel_id: int, now: datetime
) -> None:
    """Count whether the customer was already known from another channel (context kept)."""
    seen = list(customer.seen_channels or [])
    if identity.is_new(session, customer):
        label = "new"
    elif any(other != channel_id for other in seen):
        label = "known"
    else:
        label = "same"
    counters.add(
        session, counters.Metric.EVENT, now, channel_id=channel_id, label=label
    )
    if channel_id not in seen:
        customer.seen_channels = [*seen, channel_id]


def _read(event: Event | Taken) -> IncomingEvent | None:
    """The event's body read against the contract, or None (it fails when applied)."""
    try:
        return parse_event(event.payload)
    except EventError:
        return None


@dataclass
class DrainResult:
    processed: int = 0
    failed: int = 0
    more: bool = False
    interrupted: bool = False


TRANSIENT_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock, serialization failure


def _transient(error: OperationalError) -> bool:
    return getattr(error.orig, "sqlstate", None) in TRANSIENT_SQLSTATES


def drain_batch(
    session: Session,
    partition: int,
    effects: execution.Effects,
    limit: int = 200,
    now: datetime | None = None,
    careful: bool = True,
    send_up_to: int = 0,
) -> DrainResult:
    """Apply up to `limit` pending events of a partition, oldest first.

    Careful mode wraps each event in a savepoint so a bad one is marked failed and the rest
    go on. Fast mode skips the savepoints (two round trips and a flush per event) and raises
    on the first error; the caller then rolls back and repeats the batch carefully.

    `send_up_to`: a fast batch that asks for at most this many deliveries leases them to
    its drain (`effects.leased`), which sends them once the batch commits, instead of
    leaving them to a delivery drain.
    """
    now = now or utcnow()
    counters.set_shard(session, partition)
    pending = (Event.status == EventStatus.pending, Event.partition == partition)
    postgres = session.get_bind().dialect.name == "postgresql"
    if careful:
        statement = select(Event).where(*pending).order_by(Event.id).limit(limit)
        if postgres:
            statement = statement.with_for_update(skip_locked=True)
        events = list(session.scalars(statement))
    else:
        read = (
            select(Event.id, Event.channel_id, Event.type, Event.payload)
            .add_columns(Event.occurred_at, Event.traceparent, Event.received_at)
            .where(*pending)
            .order_by(Event.id)
            .limit(limit)
        )
        if postgres:
            read = read.with_for_update(skip_locked=True)
        taken = [Taken(*row) for row in session.execute(read)]
    found = len(events) if careful else len(taken)
    result = DrainResult(more=found == limit)
    if not found:
        return result
    # Read before the batch creates anything, so its rows are flushed once, at the commit.
    slugs = {c.id: slug for slug, c in documents.channels_by_slug(session).items()}
    live = documents.live_journeys(session)
    if careful:
        _drain_careful(session, events, slugs, live, effects, now, result)
    else:
        _drain_fast(session, taken, slugs, live, effects, now, result)
        if send_up_to:
            _lease_sends(session, effects, send_up_to, now)
        # Everything the batch wrote, with its events' processed state and its counters.
        processed = [event.outcome() for event in taken]
        rows.write(
            session,
            also=[
                bulk.Write(_EVENTS, processed, key="id", match=("received_at",)),
                counters.take(session),
            ],
        )
    return result


def _lease_sends(
    session: Session, effects: execution.Effects, up_to: int, now: datetime
) -> None:
    """Lease the batch's deliveries to its drain, if they are few and their customers'
    consent is at hand; a delivery drain takes them if the drain dies before sending."""
    wanted = [
        row
        for row in rows.unwritten_deliveries(session)
        if row["status"] is DeliveryStatus.pending  # not those a policy suppressed
    ]
    found = batch.current(session)
    if not wanted or len(wanted) > up_to or found is None:
        return
    consents, versions = {}, {}
    for row in wanted:
        customer = found.customers.get(row["customer_id"])
        run = next(
            (
                r
                for r in found.runs.get(row["customer_id"], [])
                if r.id == row["run_id"]
            ),
            None,
        )
        if customer is None or run is None:
            return
        consents[row["customer_id"]] = dict(customer.consent or {})
        versions[row["run_id"]] = run.version_id
    channels = {c.id: c for c in documents.channels_by_slug(session).values()}
    for row in wanted:
        row["attempts"], row["next_attempt_at"] = 1, now + LEASE
        effects.leased.append(
            (
                row,
                channels.get(row["channel_id"]),
                consents[row["customer_id"]],
                versions[row["run_id"]],
            )
        )
    effects.delivery_channels.clear()  # nothing is left for a delivery drain
    effects.webhook_deliveries = False


def _drain_fast(
    session: Session,
    events: list[Taken],
    slugs: dict[int, str],
    live: dict[str, list[documents.LiveJourney]],
    effects: execution.Effects,
    now: datetime,
    result: DrainResult,
) -> None:
    """Apply the batch with what it needs read ahead and no savepoints; an error escapes."""
    journeys = [j for found in live.values() for j in found]
    limits = any(
        j.document.entry.reentry == "never" or j.document.entry.max_entries
        for j in journeys
    )
    read = [_read(e) for e in events]
    batch.prefetch(
        session,
        [found.identifiers if found else () for found in read],
        count_entries=limits,
    )
    n = len(events)
    steps = sum(len(j.document.nodes) for j in journeys)
    batch.reserve(
        session,
        {
            "customers": n,
            "identities": 2 * n,
            "runs": n,
            "steps": min(steps, 8) * n,
        },
    )
    for event, incoming in zip(events, read, strict=True):
        process_event(
            session,
            event,
            slugs.get(event.channel_id, ""),
            live,
            effects,
            now,
            incoming,
        )
        result.processed += 1


def _drain_careful(
    session: Session,
    events: list[Event],
    slugs: dict[int, str],
    live: dict[str, list[documents.LiveJourney]],
    effects: execution.Effects,
    now: datetime,
    result: DrainResult,
) -> None:
    """Apply the batch one savepoint per event: a bad event is marked failed, the rest go on."""
    for event in events:
        if result.interrupted:
            break
        for attempt in (1, 2):
            savepoint = session.begin_nested()
            try:
                process_event(
                    session, event, slugs.get(event.channel_id, ""), live, effects, now
                )
                savepoint.commit()
                result.processed += 1
                break
            except IntegrityError:
                savepoint.rollback()  # another drain created the same identity: look again
                identity.forget_cached(session)
                if attempt == 2:
                    _fail(
                        event,
                        "the profile was changed concurrently twice; will retry",
                        now,
                        result,
                    )
            except OperationalError as error:
                savepoint.rollback()
                identity.forget_cached(session)
                if not _transient(error):
                    log.exception("event %s could not be applied", event.id)
                    _fail(event, f"{type(error).__name__}: {error}", now, result)
                    break
                # A deadlock or serialization failure says nothing about the event: leave
                # it and the rest of the batch (in order) for the next drain, uncounted.
                log.info(
                    "event %s met a transient database error; retried later", event.id
                )
                result.more = result.interrupted = True
                break
            except (EventError, LookupError) as error:
                savepoint.rollback()
                identity.forget_cached(session)
                _fail(event, str(error), now, result, final=True)
                break
            except Exception as error:  # a bug or bad data: retried, then marked failed
                savepoint.rollback()
                identity.forget_cached(session)
                log.exception("event %s could not be applied", event.id)
                _fail(event, f"{type(error).__name__}: {error}", now, result)
                break


def _fail(
    event: Event, reason: str, now: datetime, result: DrainResult, final: bool = False
) -> None:
    event.attempts += 1
    event.error = reason
    if final or event.attempts >= MAX_ATTEMPTS:
        event.status, event.processed_at = EventStatus.failed, now
        result.failed += 1
        log.warning("event %s failed: %s", event.id, reason)


def drain_partition(
    database: Any,
    partition: int,
    on_batch: Any,
    batch: int = 200,
    budget: float = 5.0,
    before_batch: Any = None,
    send_up_to: int | Callable[[], int] = 0,
) -> DrainResult:
    """Apply pending events of a partition in batches until none are left or time is up.

    `on_batch(effects, result)` runs after each commit (to enqueue deliveries, count the
    backlog down); a True `more` in the result means the caller should queue another drain.
    `send_up_to` (see `drain_batch`), or a function asked before each batch.
    """
    total = DrainResult()
    deadline = time.monotonic() + budget
    while True:
        if before_batch is not None:
            before_batch()
        sends = send_up_to() if callable(send_up_to) else send_up_to
        effects, result = _apply_batch(database, partition, batch, sends)
        on_batch(effects, result)
        total.processed += result.processed
        total.failed += result.failed
        if not result.more:
            return total
        if time.monotonic() > deadline:
            total.more = True
            return total


def _apply_batch(
    database: Any, partition: int, batch: int, send_up_to: int = 0
) -> tuple[execution.Effects, DrainResult]:
    """One batch in one transaction: fast first, carefully (event by event) if that fails."""
    effects = execution.Effects()
    try:
        with database.session(writer=True) as session:
            return effects, drain_batch(
                session, partition, effects, batch, careful=False, send_up_to=send_up_to
            )
    except Exception:
        log.debug(
            "batch of partition %s failed fast; applying it event by event", partition
        )
    effects = execution.Effects()
    with database.session(writer=True) as session:
        return effects, drain_batch(session, partition, effects, batch, careful=True)
