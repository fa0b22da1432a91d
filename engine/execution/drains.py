"""The work of workers and scheduler: drains, timer sweeps, and the sweeper that recovers
work whose Redis signal was lost. SQL holds the work; Redis only says where to look."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from functools import partial
from typing import Any, cast

from redis import Redis
from sqlalchemy import func, select

from engine import delivery, execution
from engine.analytics import counters
from engine.delivery import LEASE, Claimed, Outcome, claim, settle
from engine.delivery.sender import Sender
from engine.execution import apply, signals, timers
from engine.intake import admission
from engine.journeys import moves
from engine.models import (
    Delivery,
    DeliveryStatus,
    Event,
    EventStatus,
    MoveStatus,
    RunMove,
    utcnow,
)
from engine.runtime import Runtime
from engine.settings import Settings

log = logging.getLogger("throughline.work")
EVENT_BATCH = 200
DELIVERY_BATCH = 64
TIMER_BATCH = 500
# Counter shards: event drains write their partition's, delivery drains and sweeps their own.
DELIVERY_SHARDS = 100_000
SENDING_SHARDS = 400_000  # what an event drain sends, settled apart from its next batch
TIMER_SHARD = 200_000
MOVE_SHARD = 300_000
MOVE_BATCH = moves.BATCH


def enqueue_event_drain(redis: Redis, partition: int) -> None:
    signals.events_queue(redis).enqueue(
        "engine.jobs.drain_events",
        partition,
        job_timeout=300,
        result_ttl=60,
        failure_ttl=86400,
    )


def enqueue_delivery_drain(redis: Redis, partition: int) -> None:
    signals.deliveries_queue(redis).enqueue(
        "engine.jobs.drain_deliveries",
        partition,
        job_timeout=300,
        result_ttl=60,
        failure_ttl=86400,
    )


def enqueue_move(redis: Redis, move_id: int) -> None:
    signals.events_queue(redis).enqueue(
        "engine.jobs.move_runs",
        move_id,
        job_timeout=3600,
        result_ttl=60,
        failure_ttl=86400,
    )


def signal_deliveries(redis: Redis, partition: int) -> None:
    """After a commit that wrote deliveries: make sure the partition's drain is queued."""
    signals.raise_flag(
        redis,
        "deliveries",
        partition,
        partial(enqueue_delivery_drain, redis, partition),
    )


def follow_up(redis: Redis, effects: execution.Effects) -> None:
    """After a commit: make sure the deliveries it wrote are being worked on."""
    for channel_id in effects.delivery_channels:
        signal_deliveries(redis, channel_id)
    if effects.webhook_deliveries:
        signal_deliveries(redis, delivery.WEBHOOKS)


def drain_events(rt: Runtime, partition: int) -> dict[str, Any]:
    lock = signals.DrainLock(rt.redis, "events", partition)
    if not lock.acquire():
        return {"skipped": "another drain holds the partition"}

    def on_batch(effects: execution.Effects, result: apply.DrainResult) -> None:
        admission.reduce_backlog(rt.redis, result.processed + result.failed)
        follow_up(rt.redis, effects)
        lock.refresh()
        if effects.leased:  # the batch's few deliveries: sent now, without another hop
            claimed = claim.leased(effects.leased, rt.box)
            _send_leased(rt, claimed, SENDING_SHARDS + partition)

    def send_up_to() -> int:
        # While a slow channel's answers are still awaited, batches leave their deliveries
        # to the delivery drains rather than queue more calls behind them.
        return 0 if _late.outstanding() else rt.settings.drain_sends_up_to

    try:
        total = apply.drain_partition(
            rt.database,
            partition,
            on_batch,
            EVENT_BATCH,
            before_batch=lock.lower_flag,
            send_up_to=send_up_to,
        )
    finally:
        lock.release()
    lock.hand_over(total.more, partial(enqueue_event_drain, rt.redis, partition))
    return {"processed": total.processed, "failed": total.failed}


def move_runs(rt: Runtime, move_id: int) -> dict[str, Any]:
    """Apply a publish's plan to the runs in its journey, one transaction per batch.

    On PostgreSQL the batches first skip runs that an event or a timer holds right now;
    once nothing else is left, a last pass waits for them, so a run still at a planned step
    is moved. A crash loses at most the batch under way (rolled back whole); the sweeper
    queues the move again.
    """
    lock = signals.DrainLock(rt.redis, "moves", move_id)
    if not lock.acquire():
        return {"skipped": "another worker is moving these runs"}
    moved, skip_locked, done = 0, True, False
    postgres = rt.database.engine.dialect.name == "postgresql"
    try:
        while not done:
            lock.lower_flag()
            effects = execution.Effects()
            with rt.database.session(writer=True) as session:
                counters.set_shard(session, MOVE_SHARD)
                move = session.get(RunMove, move_id)
                if move is None or move.status is MoveStatus.done:
                    break
                count = moves.move_batch(
                    session, move, effects, utcnow(), MOVE_BATCH, skip_locked
                )
                moved += count
                if count == 0 and postgres and skip_locked:
                    skip_locked = False
                elif count == 0:
                    moves.finish(move)
                    done = True
            follow_up(rt.redis, effects)
            lock.refresh()
    finally:
        lock.release()
    return {"moved": moved, "done": done}


SEND_THREADS = 16
_pool = ThreadPoolExecutor(max_workers=SEND_THREADS, thread_name_prefix="deliver")


class Calls:
    """A batch's calls, made on the pool by up to SEND_THREADS tasks that each take the
    next item in turn: a few tasks per batch rather than a future per call.

    `outcomes[i]` is item i's outcome once `done` is set; a call that raised makes
    `results()` raise its error."""

    def __init__(
        self, items: list[Claimed], call: Callable[[Claimed], Outcome | None]
    ) -> None:
        self.items, self.call = items, call
        self.outcomes: list[Outcome | None] = [None] * len(items)
        self.done = threading.Event()
        self._error: BaseException | None = None
        self._taken = self._left = 0
        self._lock = threading.Lock()
        if not items:
            self.done.set()
        for _ in range(min(SEND_THREADS, len(items))):
            _pool.submit(self._work)

    def _work(self) -> None:
        while True:
            with self._lock:
                index = self._taken
                if index >= len(self.items):
                    return
                self._taken += 1
            try:
                self.outcomes[index] = self.call(self.items[index])
            except BaseException as error:  # for results() to raise where it is read
                self._error = error
            with self._lock:
                self._left += 1
                if self._left == len(self.items):
                    self.done.set()

    def results(self) -> list[Outcome | None]:
        self.done.wait()
        if self._error is not None:
            raise self._error
        return self.outcomes


def sender(rt: Runtime) -> Sender:
    if rt.sender is None:
        rt.sender = Sender(rt.settings, rt.redis)
    found: Sender = rt.sender
    return found


def _attempt_and_settle(
    rt: Runtime, claimed: list[Claimed], now: datetime, shard: int
) -> list[Outcome]:
    """Make one attempt of each claimed delivery, then settle them in one transaction
    (counted in `shard`); returns the outcomes."""
    send = sender(rt)
    attempt = partial(send.attempt, now=now, gates=send.gates(claimed))
    # Sender.attempt always gives an outcome: only a drain's own lease check gives None.
    outcomes = cast(list[Outcome], Calls(claimed, attempt).results())
    _settle(rt, claimed, outcomes, shard)
    return outcomes


# Settles what an event drain sent when its channels answer too slowly for the drain to wait.
_settler = ThreadPoolExecutor(max_workers=1, thread_name_prefix="settle")


class _Late:
    """How many batches of sends this worker's drains left to `_settler`, unsettled yet."""

    def __init__(self) -> None:
        self._count = 0
        self._lock = threading.Lock()

    def add(self, amount: int) -> None:
        with self._lock:
            self._count += amount

    def outstanding(self) -> bool:
        return self._count > 0


_late = _Late()


def _send_leased(rt: Runtime, claimed: list[Claimed], shard: int) -> None:
    """Send the deliveries an event drain leased to itself; settle them if every channel
    answers within `drain_sends_wait` seconds, else let the drain go on to its next batch
    and settle them in the background once they answer (a slow channel must not hold up
    the partition's events). If the worker stops first, their leases run out and a
    delivery drain sends them again, with the same ids.

    A call that could still be under way when its lease runs out is not made (its turn on
    the pool came too late): a delivery drain could take the lease over and send the same
    delivery beside it. Those deliveries keep their lease and go to a delivery drain once it
    has run out."""
    send = sender(rt)
    now, gates = utcnow(), send.gates(claimed)
    last_start = time.monotonic() + LEASE.total_seconds() - longest_call(rt.settings)

    def attempt(item: Claimed) -> Outcome | None:
        if time.monotonic() > last_start:
            return None
        return send.attempt(item, now, gates)

    calls = Calls(claimed, attempt)
    if not calls.done.wait(rt.settings.drain_sends_wait):
        _late.add(1)
        _settler.submit(_settle_answered, rt, claimed, calls, shard)
        return
    _settle_made(rt, claimed, calls.results(), shard)


def longest_call(settings: Settings) -> float:
    """Seconds a call may take at most, with room to spare: connecting, then reading."""
    return min(3.0, settings.delivery_timeout) + settings.delivery_timeout + 5.0


def _settle_made(
    rt: Runtime, claimed: list[Claimed], outcomes: list[Outcome | None], shard: int
) -> None:
    """Settle the calls made (an outcome of None: not made, still leased)."""
    made = [
        (item, out)
        for item, out in zip(claimed, outcomes, strict=True)
        if out is not None
    ]
    if made:
        _settle(rt, [item for item, _ in made], [out for _, out in made], shard)


def _settle_answered(
    rt: Runtime, claimed: list[Claimed], calls: Calls, shard: int
) -> None:
    try:
        _settle_made(rt, claimed, calls.results(), shard)
    except Exception:  # the leases run out and a delivery drain takes them
        log.exception("deliveries sent by a drain could not be settled")
    finally:
        _late.add(-1)


def _settle(
    rt: Runtime, claimed: list[Claimed], outcomes: list[Outcome], shard: int
) -> None:
    effects = execution.Effects()
    with rt.database.session(writer=True) as session:
        counters.set_shard(session, shard)
        settle.settle_all(
            session,
            claimed,
            outcomes,
            utcnow(),
            rt.settings.breaker_reset_seconds,
            effects,
        )
    follow_up(rt.redis, effects)


def drain_deliveries(
    rt: Runtime, partition: int, budget: float = 10.0
) -> dict[str, Any]:
    lock = signals.DrainLock(rt.redis, "deliveries", partition)
    if not lock.acquire():
        return {"skipped": "another drain holds the channel"}
    counts: dict[str, int] = {}
    deadline = time.monotonic() + budget
    more = False
    try:
        while True:
            lock.lower_flag()
            now = utcnow()
            with rt.database.session(writer=True) as session:
                claimed = claim.claim(session, partition, rt.box, now, DELIVERY_BATCH)
            if not claimed:
                break
            outcomes = _attempt_and_settle(
                rt, claimed, now, DELIVERY_SHARDS + partition
            )
            for outcome in outcomes:
                counts[outcome.status] = counts.get(outcome.status, 0) + 1
            lock.refresh()
            if len(claimed) < DELIVERY_BATCH:
                break
            if time.monotonic() > deadline:
                more = True
                break
    finally:
        lock.release()
    lock.hand_over(more, partial(enqueue_delivery_drain, rt.redis, partition))
    return counts


def sweep_timers(rt: Runtime, budget: float = 0.8, helper: int = 0) -> int:
    """Advance due runs in batches for up to `budget` seconds; record lateness for /metrics.

    The scheduler sweeps every second. When due runs remain after its budget, it asks the
    workers for help: a few `sweep_due_timers` jobs sweep beside it (claims skip rows another
    sweeper holds on PostgreSQL; SQLite takes them one writer at a time).
    """
    deadline, advanced, worst, late = time.monotonic() + budget, 0, 0.0, []
    more = False
    while True:
        effects = execution.Effects()
        with rt.database.session(writer=True) as session:
            counters.set_shard(session, TIMER_SHARD + helper)
            lateness = timers.sweep_due_runs(session, utcnow(), effects, TIMER_BATCH)
        follow_up(rt.redis, effects)
        advanced += len(lateness)
        late += lateness
        more = len(lateness) == TIMER_BATCH
        if not more or time.monotonic() >= deadline:
            break
    if more and not helper:
        ask_for_timer_help(rt.redis)
    if late:
        late.sort()
        worst = late[-1]
        p99 = late[min(len(late) - 1, int(len(late) * 0.99))]
        rt.redis.hset(
            signals.TIMER_STATS_KEY,
            mapping={
                "last_max": worst,
                "last_p99": p99,
                "last_count": len(late),
                "at": time.time(),
            },
        )
        rt.redis.hincrby(signals.TIMER_STATS_KEY, "fired_total", len(late))
        rt.redis.hincrbyfloat(signals.TIMER_STATS_KEY, "lateness_sum", sum(late))
    return advanced


TIMER_HELPERS = 2
TIMER_HELP_KEY = "throughline:timers:help"


def ask_for_timer_help(redis: Redis) -> int:
    """Queue one sweep job per helper, at most once per two seconds."""
    if not redis.set(TIMER_HELP_KEY, "1", nx=True, ex=2):
        return 0
    for helper in range(1, TIMER_HELPERS + 1):
        signals.events_queue(redis).enqueue(
            "engine.jobs.sweep_due_timers",
            helper,
            job_timeout=60,
            result_ttl=60,
            failure_ttl=86400,
        )
    return TIMER_HELPERS


def recover(rt: Runtime) -> dict[str, int]:
    """Re-signal every partition with pending events, every channel with due deliveries
    and every unfinished move of runs that no worker is working on, and reset the backlog
    count from SQL."""
    now = utcnow()
    with rt.database.session() as session:
        pending = dict(
            session.execute(
                select(Event.partition, func.count())
                .where(Event.status == EventStatus.pending)
                .group_by(Event.partition)
            ).all()
        )
        due = session.execute(
            select(Delivery.channel_id, Delivery.kind)
            .where(
                Delivery.status == DeliveryStatus.pending,
                Delivery.next_attempt_at <= now,
            )
            .group_by(Delivery.channel_id, Delivery.kind)
        ).all()
        unfinished = moves.unfinished(session)
    queued = 0
    for partition in pending:
        queued += signals.ensure(
            rt.redis,
            "events",
            partition,
            partial(enqueue_event_drain, rt.redis, partition),
        )
    for channel_id, kind in due:
        if kind == "webhook":
            target = delivery.WEBHOOKS
        elif channel_id is not None:
            target = channel_id
        else:
            continue
        queued += signals.ensure(
            rt.redis,
            "deliveries",
            target,
            partial(enqueue_delivery_drain, rt.redis, target),
        )
    for move_id in unfinished:
        queued += signals.ensure(
            rt.redis, "moves", move_id, partial(enqueue_move, rt.redis, move_id)
        )
    rt.redis.set(admission.BACKLOG_KEY, sum(pending.values()))
    return {"pending_events": sum(pending.values()), "drains_queued": queued}
