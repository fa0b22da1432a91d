"""RQ entry points: a few lines each, ids in, one engine function called."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from engine import heap, leadership, maintenance, partitions, runtime
from engine.analytics import counters
from engine.execution import drains
from engine.models import utcnow
from engine.schemas import store as schema_store


def drain_events(partition: int) -> dict[str, Any]:
    """Apply the pending events of one partition."""
    with heap.collector_paused():
        return drains.drain_events(runtime.current(), partition)


def drain_deliveries(partition: int) -> dict[str, Any]:
    """Attempt the due deliveries of one channel (partition 0: webhook calls)."""
    with heap.collector_paused():
        return drains.drain_deliveries(runtime.current(), partition)


def _purge(session: Session, now: datetime) -> int:
    """Drop refused and flagged events kept past their 7 days, and the old record of
    periodic runs."""
    return schema_store.purge(session, now) + leadership.forget_runs(session, now)


# The periodic jobs the leading scheduler queues, by name: each is given a session and the
# time, and returns how many rows it changed.
HOUSEKEEPING: dict[str, Callable[[Session, datetime], int]] = {
    "expire_rotated_secrets": maintenance.expire_rotated_secrets,
    "compact_counters": counters.compact,
    "purge_schema_violations": _purge,
}


def _maintain_partitions(now: datetime) -> int:
    """Make partitions ahead and drop the periods past their retention."""
    rt = runtime.current()
    return partitions.maintain(rt.database, now, rt.settings.retention)


# Periodic jobs that work in short transactions of their own (so as not to hold locks for
# long): their slot is claimed and committed first, and a run that fails midway leaves the
# rest to the next slot.
OWN_TRANSACTIONS: dict[str, Callable[[datetime], int]] = {
    "maintain_partitions": _maintain_partitions,
}


def housekeeping(task: str, slot: int, fence: int) -> int | None:
    """Run periodic job `task` for `slot`, once, if the scheduler that queued it still
    leads (`fence` is its token); None when it does not run."""
    separate = OWN_TRANSACTIONS.get(task)
    with runtime.current().database.session(writer=True) as session:
        if not leadership.claim(session, task, slot, fence):
            return None
        changed = 0 if separate else HOUSEKEEPING[task](session, utcnow())
        if not leadership.still_newest(session, fence):
            session.rollback()  # a new leader took over while it ran
            return None
        session.commit()
    return separate(utcnow()) if separate else changed


def _unfenced(task: str) -> int:
    with runtime.current().database.session(writer=True) as session:
        return HOUSEKEEPING[task](session, utcnow())


# The entry points of housekeeping before schedulers were fenced: jobs of this form may still
# wait in a queue across an upgrade (paths are a wire format), so they still run.
def expire_rotated_secrets() -> int:
    return _unfenced("expire_rotated_secrets")


def compact_counters() -> int:
    return _unfenced("compact_counters")


def purge_schema_violations() -> int:
    return _unfenced("purge_schema_violations")


def sweep_due_timers(helper: int) -> int:
    """Help the scheduler fire due timers when it has more than it can sweep alone."""
    with heap.collector_paused():
        return drains.sweep_timers(runtime.current(), budget=2.0, helper=helper)


def move_runs(move_id: int) -> dict[str, Any]:
    """Move the runs a publish's plan names onto the new version."""
    return drains.move_runs(runtime.current(), move_id)
