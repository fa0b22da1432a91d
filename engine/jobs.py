"""RQ entry points: a few lines each, ids in, one engine function called."""

from __future__ import annotations

from typing import Any

from engine import maintenance, runtime
from engine.analytics import counters
from engine.execution import drains
from engine.models import utcnow
from engine.schemas import store as schema_store


def drain_events(partition: int) -> dict[str, Any]:
    """Apply the pending events of one partition."""
    return drains.drain_events(runtime.current(), partition)


def drain_deliveries(partition: int) -> dict[str, Any]:
    """Attempt the due deliveries of one channel (partition 0: webhook calls)."""
    return drains.drain_deliveries(runtime.current(), partition)


def expire_rotated_secrets() -> int:
    """Forget previous inbound secrets whose grace period has ended."""
    with runtime.current().database.session() as session:
        return maintenance.expire_rotated_secrets(session, now=utcnow())


def compact_counters() -> int:
    """Fold finished hours' counter shards (and older hours into days)."""
    with runtime.current().database.session(writer=True) as session:
        return counters.compact(session, now=utcnow())


def purge_schema_violations() -> int:
    """Drop refused and flagged events kept past their 7 days."""
    with runtime.current().database.session(writer=True) as session:
        dropped = schema_store.purge(session, now=utcnow())
        session.commit()
        return dropped


def sweep_due_timers(helper: int) -> int:
    """Help the scheduler fire due timers when it has more than it can sweep alone."""
    return drains.sweep_timers(runtime.current(), budget=2.0, helper=helper)


def move_runs(move_id: int) -> dict[str, Any]:
    """Move the runs a publish's plan names onto the new version."""
    return drains.move_runs(runtime.current(), move_id)
