"""One leading scheduler among any number: a lease in Redis, a fencing token in SQL.

Every `throughline scheduler` process asks for the lease (redis-py's `Lock`, which expires by
itself after `LEASE_SECONDS` unless renewed). The one that holds it takes the next fencing
token from SQL and does the periodic work; the others ask again every renewal period and
take over within one lease of the leader dying.

A lease can be lost without its holder knowing at once (a long pause, a partition from
Redis), so the work a leader queues carries its token, and `claim` lets it run only while that
token is the newest one handed out, and only once per slot: a job queued by a leader that has
since been replaced does nothing, and a slot run by one leader is not run again by the next.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from redis import Redis
from redis.exceptions import LockError, RedisError
from redis.lock import Lock
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from engine.models import PeriodicRun, SchedulerLease, utcnow

log = logging.getLogger("throughline.scheduler")

LEASE_KEY = "throughline:scheduler:leader"
SCHEDULER = "scheduler"
# A renewal every RENEW_SHARE of the lease: three chances before it runs out.
RENEW_SHARE = 1 / 3
# How often a scheduler that does not lead asks for the lease.
FOLLOW_EVERY = 0.5
# How long the record of periodic runs is kept.
KEEP_RUNS = timedelta(days=7)


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def next_fence(session: Session, holder: str) -> int:
    """Hand out the next fencing token to `holder` (taking the row's lock until commit)."""
    row = session.scalar(
        select(SchedulerLease).where(SchedulerLease.name == SCHEDULER).with_for_update()
    )
    if row is None:
        session.add(SchedulerLease(name=SCHEDULER, fence=1, holder=holder))
        session.flush()
        return 1
    row.fence += 1
    row.holder = holder
    row.since = utcnow()
    return row.fence


def current_fence(session: Session) -> int | None:
    return session.scalar(
        select(SchedulerLease.fence).where(SchedulerLease.name == SCHEDULER)
    )


def claim(session: Session, task: str, slot: int, fence: int) -> bool:
    """Record that `task` runs in `slot` under `fence`, in the caller's transaction; False
    when `fence` is no longer the newest token or the slot has run already.

    Two claims of one slot in flight at once (an old leader's job checked its token just
    before a new leader took one) meet on the record's key: the second waits for the first
    to commit and then finds the slot taken.
    """
    newest = session.scalar(
        select(SchedulerLease.fence).where(SchedulerLease.name == SCHEDULER)
    )
    if newest != fence:
        log.info(
            "%s of slot %d not run: queued under token %d, the newest is %s",
            task,
            slot,
            fence,
            newest,
        )
        return False
    row = {"task": task, "slot": slot, "fence": fence, "ran_at": utcnow()}
    statement = (
        postgresql_insert(PeriodicRun)
        if session.get_bind().dialect.name == "postgresql"
        else sqlite_insert(PeriodicRun)
    )
    taken = session.scalar(
        statement.values(row).on_conflict_do_nothing().returning(PeriodicRun.slot)
    )
    if taken is None:
        log.info("%s of slot %d not run: it ran already", task, slot)
        return False
    return True


def still_newest(session: Session, fence: int) -> bool:
    """Whether `fence` is still the newest token, checked as a job's work is about to be
    committed. On PostgreSQL the row is then share-locked until the commit, so a new leader's
    token (taken under the row's update lock) comes after this job's work, never during it."""
    newest = session.scalar(
        select(SchedulerLease.fence)
        .where(SchedulerLease.name == SCHEDULER)
        .with_for_update(read=True)
    )
    return newest == fence


def forget_runs(session: Session, now: datetime) -> int:
    """Drop the record of periodic runs older than `KEEP_RUNS`."""
    result = session.execute(
        delete(PeriodicRun).where(PeriodicRun.ran_at < now - KEEP_RUNS)
    )
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass
class Leadership:
    """This process's part in the election: `poll` keeps or seeks the lease, `leading` says
    whether to work now, `fence` is the token the work carries."""

    redis: Redis
    lease_seconds: float
    holder: str = field(default_factory=holder_name)
    fence: int | None = None
    _lock: Lock | None = None
    _valid_until: float = 0.0
    _next_poll: float = 0.0

    @property
    def renew_every(self) -> float:
        return self.lease_seconds * RENEW_SHARE

    def leading(self, now: float | None = None) -> bool:
        """True while the lease is surely held: renewed within the lease, less a margin for
        clocks that run apart."""
        now = time.monotonic() if now is None else now
        return self.fence is not None and now < self._valid_until

    def due(self) -> float:
        """When `poll` should run next (monotonic seconds)."""
        return self._next_poll

    def poll(
        self,
        take_fence: Callable[[str], int],
        newest: Callable[[], int | None] | None = None,
    ) -> bool:
        """Renew the lease when held, ask for it when not; returns `leading()`.

        `take_fence(holder)` returns a new fencing token from SQL once the lease is won;
        `newest()` reads the newest token handed out: a leader whose token is no longer the
        newest gives the lease up, to take a new token when it wins it again.
        """
        started = time.monotonic()
        try:
            if self._lock is not None:
                self._renew(started, newest)
            else:
                self._seek(started, take_fence)
        except (RedisError, OSError):
            if self._lock is not None and self.leading(started):
                # Held until it runs out: the next renewal, sooner, may get through.
                log.warning("the scheduler lease could not be renewed; trying again")
                self._next_poll = started + FOLLOW_EVERY
                return self.leading()
            log.warning("the scheduler lease could not be checked; not leading")
            self._lose()
        finally:
            if self._next_poll <= started:
                self._next_poll = started + (
                    self.renew_every if self._lock is not None else FOLLOW_EVERY
                )
        return self.leading()

    def _renew(self, started: float, newest: Callable[[], int | None] | None) -> None:
        assert self._lock is not None
        try:
            self._lock.reacquire()
        except LockError:
            log.warning(
                "scheduler lease lost (token %s); another scheduler leads", self.fence
            )
            self._lose()
            return
        self._valid_until = started + self.lease_seconds * (1 - RENEW_SHARE)
        if newest is not None:
            latest = newest()
            if latest != self.fence:
                log.warning(
                    "token %s is no longer the newest (%s): taking the lease again",
                    self.fence,
                    latest,
                )
                self.release()

    def _seek(self, started: float, take_fence: Callable[[str], int]) -> None:
        lock = Lock(
            self.redis,
            LEASE_KEY,
            timeout=self.lease_seconds,
            blocking=False,
            thread_local=False,
        )
        if not lock.acquire(token=f"{self.holder}:{started}"):
            return
        try:
            fence = take_fence(self.holder)
        except Exception:
            lock.release()
            raise
        try:
            lock.reacquire()  # still held once the token is taken (SQL may be slow)
        except LockError:
            log.warning(
                "the lease ran out while token %d was taken; not leading", fence
            )
            return
        self._lock, self.fence = lock, fence
        self._valid_until = started + self.lease_seconds * (1 - RENEW_SHARE)
        log.info("this scheduler leads now, with token %d", fence)

    def _lose(self) -> None:
        self._lock, self.fence, self._valid_until = None, None, 0.0

    def release(self) -> int | None:
        """Give the lease up (on a clean stop) so another scheduler takes over at once;
        returns the token this process held."""
        fence, lock = self.fence, self._lock
        self._lose()
        if lock is not None:
            try:
                lock.release()
            except (LockError, RedisError, OSError):
                pass
        return fence
