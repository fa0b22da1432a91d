"""Due runs: the scheduler claims runs whose wake time has come, in batches, and advances them.

The query reads the (status, wake_at) index from its start, so a sweep costs what is due, not
what is waiting.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import execution
from engine.execution import batch, live_runs, rows
from engine.language.nodes import Resume
from engine.models import Journey, JourneyStatus, Run, RunStatus
from engine.policies.store import current as current_policies
from engine.profiles import identity


def sweep_due_runs(
    session: Session, now: datetime, effects: execution.Effects, limit: int = 500
) -> list[float]:
    """Advance up to `limit` runs due by `now`; returns each one's lateness in seconds."""
    statement = (
        select(Run)
        .join(Journey, Journey.id == Run.journey_id)
        .where(
            Run.status == RunStatus.waiting,
            Run.wake_at <= now,
            Journey.status != JourneyStatus.paused,
        )
        .order_by(Run.wake_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        statement = statement.with_for_update(of=Run, skip_locked=True)
    lateness = []
    due = list(session.scalars(statement))
    # Frequency caps lock the profiles whose sends they count: the sweep locks them first,
    # skipping those an event drain holds (see batch.customers_of).
    caps = bool(due) and bool(current_policies(session).frequency_caps)
    read = batch.customers_of(
        session, (run.customer_id for run in due), skip_locked=caps
    )
    for run in due:
        assert run.wake_at is not None
        customer = read.customers.get(run.customer_id)
        if customer is None:  # gone, or held by an event drain: the next sweep
            continue
        lateness.append((now - run.wake_at).total_seconds())
        scope = identity.scope_of(session, customer)
        with rows.in_trace_of(session, run, "timer"):
            live_runs.resume_run(session, run, Resume("timer"), scope, effects, now)
        if scope["traits"] != customer.traits:
            customer.traits = scope["traits"]
    return lateness
