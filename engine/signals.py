"""Redis coordination: admission (rate and backlog), drain flags and locks.

Everything here may vanish with Redis; SQL keeps the work (pending events and deliveries)
and the sweeper rebuilds the signals from it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from redis import Redis
from rq import Queue

from engine.queues import queue

PREFIX = "throughline"
BACKLOG_KEY = f"{PREFIX}:backlog"
TIMER_STATS_KEY = f"{PREFIX}:timers"
# A drain refreshes its lock after every batch (well under a second); if its worker dies,
# the lock lapses and the sweeper queues the partition again.
FLAG_TTL = 20
LOCK_TTL = 20

# One round trip before an event is stored: count it against its channel's rate for this
# second, and refuse it if the backlog of unapplied events is past the bound.
# KEYS: rate key, backlog key. ARGV: cost, rate limit, backlog bound.
_ADMIT = """
local used = redis.call('INCRBY', KEYS[1], ARGV[1])
if used == tonumber(ARGV[1]) then redis.call('EXPIRE', KEYS[1], 2) end
if used > tonumber(ARGV[2]) then return 1 end
local backlog = tonumber(redis.call('GET', KEYS[2]) or '0')
if backlog + tonumber(ARGV[1]) > tonumber(ARGV[3]) then return 2 end
return 0
"""

# One round trip after events are stored: add them to the backlog and raise the drain flag
# of their partition; returns 1 when the flag was down (the caller then enqueues the drain).
_SIGNAL = """
redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[2]) then return 1 end
return 0
"""

ADMITTED, OVER_RATE, OVER_BACKLOG = 0, 1, 2


def flag_key(kind: str, partition: int) -> str:
    return f"{PREFIX}:drain:{kind}:{partition}"


def lock_key(kind: str, partition: int) -> str:
    return f"{PREFIX}:drain-lock:{kind}:{partition}"


def admit(
    redis: Redis, channel_id: int, cost: int, rate_limit: int, backlog_bound: int
) -> int:
    """ADMITTED, OVER_RATE or OVER_BACKLOG for `cost` events of a channel, this second."""
    key = f"{PREFIX}:rate:{channel_id}:{int(time.time())}"
    return int(redis.eval(_ADMIT, 2, key, BACKLOG_KEY, cost, rate_limit, backlog_bound))  # type: ignore[arg-type]


def signal_events(
    redis: Redis, partition: int, count: int, enqueue: Callable[[], object]
) -> None:
    """Count stored events into the backlog; make sure their partition's drain is queued."""
    raised = redis.eval(
        _SIGNAL, 2, BACKLOG_KEY, flag_key("events", partition), count, FLAG_TTL
    )
    if int(raised):  # type: ignore[arg-type]
        enqueue()


def raise_flag(
    redis: Redis, kind: str, partition: int, enqueue: Callable[[], object]
) -> bool:
    """After a commit that made work: enqueue a drain unless one is queued (the flag is up).

    A running drain lowers the flag before each batch and, once it lets go of the lock,
    queues one more drain if the flag went up meanwhile; so work committed while it runs is
    either in one of its batches or left to a drain that starts after it."""
    if redis.set(flag_key(kind, partition), "1", nx=True, ex=FLAG_TTL):
        enqueue()
        return True
    return False


def ensure(
    redis: Redis, kind: str, partition: int, enqueue: Callable[[], object]
) -> bool:
    """The sweeper's call: enqueue a drain unless one is queued (flag) or running (lock)."""
    if redis.exists(lock_key(kind, partition)):
        return False
    if redis.set(flag_key(kind, partition), "1", nx=True, ex=FLAG_TTL):
        enqueue()
        return True
    return False


class DrainLock:
    """Held by the one drain of a partition at a time; expires if its worker dies."""

    def __init__(self, redis: Redis, kind: str, partition: int) -> None:
        self.redis, self.key = redis, lock_key(kind, partition)
        self.flag = flag_key(kind, partition)
        self.token = f"{time.time_ns()}"

    def acquire(self) -> bool:
        """Take the partition; a drain that cannot leaves the flag up for the holder to see."""
        return bool(self.redis.set(self.key, self.token, nx=True, ex=LOCK_TTL))

    def lower_flag(self) -> None:
        """Before reading a batch: work signalled from now on raises the flag again."""
        self.redis.delete(self.flag)

    def hand_over(self, more: bool, enqueue: Callable[[], object]) -> None:
        """After release: queue the next drain if work came in unseen (flag up) or is left."""
        if more or self.redis.exists(self.flag):
            self.redis.set(self.flag, "1", ex=FLAG_TTL)
            enqueue()

    def refresh(self) -> None:
        self.redis.expire(self.key, LOCK_TTL)

    def release(self) -> None:
        if self.redis.get(self.key) == self.token.encode():
            self.redis.delete(self.key)


def reduce_backlog(redis: Redis, count: int) -> None:
    if count:
        left = int(redis.decrby(BACKLOG_KEY, count))  # type: ignore[arg-type]
        if left < 0:
            redis.set(BACKLOG_KEY, 0)


def events_queue(redis: Redis) -> Queue:
    return queue("events", redis)


def deliveries_queue(redis: Redis) -> Queue:
    return queue("deliveries", redis)
