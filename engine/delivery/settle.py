"""Settling an attempt: the row's new status, its counters, a fallback, the run resumed."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from engine import bulk, execution, transaction
from engine.analytics import counters
from engine.analytics.counters import Metric
from engine.delivery import CHANNEL_REASONS, LEASE, Claimed, Outcome
from engine.delivery.claim import load, retry_delay
from engine.execution import live_runs, rows
from engine.language.nodes import Resume
from engine.models import Channel, Customer, Delivery, DeliveryStatus, Run, RunStatus
from engine.policies import Held, Suppressed
from engine.policies.gate import fallback_verdict
from engine.profiles import identity

_DELIVERIES = cast(Table, Delivery.__table__)


def _where(
    row: Delivery, channel_id: int | None, session: Session | None = None
) -> Any:
    versions = transaction.of(session).run_versions if session is not None else {}
    return {
        "journey_id": row.journey_id or 0,
        "version_id": versions.get(row.run_id or 0, 0),
        "node_id": row.node_id or "",
        "channel_id": channel_id or 0,
    }


def _count(session: Session, row: Delivery, outcome: Outcome, now: datetime) -> None:
    """Count an attempt's latency and, once final, the delivery's status and reason."""
    _count_at(session, _where(row, row.channel_id, session), outcome, now)


def _count_at(
    session: Session, where: dict[str, Any], outcome: Outcome, now: datetime
) -> None:
    if outcome.latency_ms is not None:
        label = counters.bucket_label(outcome.latency_ms, counters.LATENCY_BOUNDS_MS)
        counters.add(session, Metric.LATENCY, now, label=label, **where)
    if outcome.status in ("retry", "postpone"):
        return
    counters.add(session, Metric.DELIVERY, now, label=outcome.status, **where)
    if outcome.status != "delivered":
        counters.add(
            session, Metric.REASON, now, label=outcome.reason or "failed", **where
        )


def settle_all(
    session: Session,
    items: list[Claimed],
    outcomes: list[Outcome],
    now: datetime,
    breaker_reset: float,
    effects: execution.Effects,
) -> None:
    """Record a claimed batch's outcomes: the deliveries that may resume a run or try a
    fallback channel one by one, the others with one update (rows settled meanwhile by an
    earlier lease holder are left as they are)."""
    involved = [(i, o) for i, o in zip(items, outcomes, strict=True) if i.involved]
    if involved:
        load(session, [item.id for item, _ in involved])
        for item, outcome in involved:
            settle(session, item, outcome, now, breaker_reset, effects)
    plain = {
        i.id: (i, o) for i, o in zip(items, outcomes, strict=True) if not i.involved
    }
    if not plain:
        return
    # Each row found by its id and the time it was written, in its own partition.
    placed = all(item.created_at is not None for item, _ in plain.values())
    settled = bulk.update_rows(
        session.connection(),
        _DELIVERIES,
        "id",
        [
            _settled(item, outcome, now, breaker_reset)
            | ({"created_at": item.created_at} if placed else {})
            for item, outcome in plain.values()
        ],
        where=("status", DeliveryStatus.pending),
        match=("created_at",) if placed else (),
    )
    for delivery_id in settled:
        item, outcome = plain[delivery_id]
        where: dict[str, Any] = {
            "journey_id": item.journey_id or 0,
            "version_id": item.version_id,
            "node_id": item.node_id or "",
            "channel_id": item.channel_id or 0,
        }
        _count_at(session, where, outcome, now)


def _settled(
    item: Claimed, outcome: Outcome, now: datetime, breaker_reset: float
) -> dict[str, Any]:
    """A delivery's row after an attempt, as `settle` leaves it (no run, no fallback)."""
    row: dict[str, Any] = {
        "id": item.id,
        "response_status": outcome.response_status,
        "latency_ms": outcome.latency_ms,
        "last_error": outcome.error,
        "attempts": item.attempts,
        "status": DeliveryStatus.pending,
        "reason": None,
        "finished_at": None,
        "next_attempt_at": None,
    }
    if outcome.status == "retry":
        row["next_attempt_at"] = now + timedelta(seconds=retry_delay(item.attempts))
    elif outcome.status == "postpone":
        row["attempts"] = item.attempts - 1  # the channel was not called
        row["next_attempt_at"] = now + timedelta(seconds=breaker_reset)
    else:
        row["status"] = DeliveryStatus(outcome.status)
        row["reason"], row["finished_at"] = outcome.reason, now
    return row


def settle(
    session: Session,
    item: Claimed,
    outcome: Outcome,
    now: datetime,
    breaker_reset: float,
    effects: execution.Effects,
) -> None:
    """Record an attempt's outcome; fall back or resume the waiting run when it is final."""
    row = session.get(Delivery, item.id)
    if row is None or row.status is not DeliveryStatus.pending:
        return  # erased meanwhile, or settled by an earlier lease holder
    row.response_status, row.latency_ms = outcome.response_status, outcome.latency_ms
    row.last_error = outcome.error
    _count(session, row, outcome, now)
    if outcome.status == "retry":
        row.next_attempt_at = now + timedelta(seconds=retry_delay(row.attempts))
        return
    if outcome.status == "postpone":
        row.attempts -= 1  # the channel was not called
        row.next_attempt_at = now + timedelta(seconds=breaker_reset)
        return
    row.status = DeliveryStatus(outcome.status)
    row.reason, row.finished_at, row.next_attempt_at = outcome.reason, now, None
    if row.status is DeliveryStatus.delivered:
        _resume_run(session, row, True, "delivered", effects, now)
        return
    fallback = row.payload.get("fallback_channel")
    if fallback and row.fallback_of_id is None and outcome.reason in CHANNEL_REASONS:
        channel = session.scalar(select(Channel).where(Channel.slug == fallback))
        if channel is not None:
            payload = {**row.payload, "channel": fallback, "fallback_channel": None}
            made = Delivery(
                run_id=row.run_id,
                customer_id=row.customer_id,
                journey_id=row.journey_id,
                node_id=row.node_id,
                channel_id=channel.id,
                kind="send",
                holds_run=row.holds_run,
                transactional=row.transactional,
                fallback_of_id=row.id,
                traceparent=row.traceparent,
                payload=payload,
                next_attempt_at=now,
                deadline_at=row.deadline_at,
                created_at=now,
            )
            verdict = (
                None
                if row.transactional
                else fallback_verdict(session, row.customer_id, fallback, now)
            )
            if isinstance(verdict, Held):  # quiet hours on the fallback's channel
                made.next_attempt_at = verdict.until
                made.deadline_at = max(row.deadline_at or now, verdict.until) + LEASE
            elif isinstance(verdict, Suppressed):
                made.status, made.reason = DeliveryStatus.suppressed, verdict.reason
                made.next_attempt_at, made.finished_at = None, now
                session.add(made)
                suppressed = Outcome("suppressed", verdict.reason)
                _count_at(session, _where(row, channel.id, session), suppressed, now)
                _resume_run(session, row, False, verdict.reason, effects, now)
                return
            session.add(made)
            effects.delivery_channels.add(channel.id)
            return
    _resume_run(session, row, False, outcome.reason or "failed", effects, now)


def _resume_run(
    session: Session,
    row: Delivery,
    ok: bool,
    reason: str,
    effects: execution.Effects,
    now: datetime,
) -> None:
    if not row.holds_run or row.run_id is None:
        return
    run: Run | None
    if row.run_id in transaction.of(session).held_runs:
        run = session.get(Run, row.run_id)  # read and locked by load()
    else:
        query = select(Run).where(Run.id == row.run_id)
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()
        run = session.scalar(query)
    if (
        run is None
        or run.status is not RunStatus.waiting
        or not run.state.get("holding_delivery")
    ):
        return
    customer = session.get(Customer, run.customer_id)
    if customer is None:
        return
    scope = identity.scope_of(session, customer)
    with rows.in_trace_of(session, run, "delivery answered"):
        live_runs.resume_run(
            session,
            run,
            Resume("delivery", {"ok": ok, "reason": reason}),
            scope,
            effects,
            now,
        )
    if scope["traits"] != customer.traits:
        customer.traits = scope["traits"]
