"""Redis coordination of the drains: flags that say work is waiting, locks that keep one drain
per partition, and counting stored events into the backlog.

Everything here may vanish with Redis; SQL keeps the work (pending events and deliveries)
and the sweeper rebuilds the signals from it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import cast

from redis import Redis
from rq import Queue

from engine.intake.admission import BACKLOG_KEY
from engine.queues import PREFIX, queue

TIMER_STATS_KEY = f"{PREFIX}:timers"


# A drain refreshes its lock after every batch (well under a second); if its worker dies,
# the lock lapses and the sweeper queues the partition again.
FLAG_TTL = 20
LOCK_TTL = 20


# One call after events are stored: add them to the backlog and raise the drain flag of each
# of their partitions; answers, per partition, 1 when the flag was down and no drain holds the
# partition (the caller then enqueues the drain). A drain that holds it sees the flag when it
# lets go, and queues the next drain itself: enqueueing one here too would make one of the two
# empty. KEYS: backlog, then each partition's flag and lock. ARGV: flag TTL, then the events
# stored in each partition.
_SIGNAL = """
local stored = 0
for i = 2, #ARGV do stored = stored + tonumber(ARGV[i]) end
redis.call('INCRBY', KEYS[1], stored)
local raised = {}
for i = 1, #ARGV - 1 do
  if redis.call('SET', KEYS[2 * i], '1', 'NX', 'EX', ARGV[1])
     and redis.call('EXISTS', KEYS[2 * i + 1]) == 0 then
    raised[i] = 1
  else
    raised[i] = 0
  end
end
return raised
"""


# The same for other work (deliveries): KEYS: flag, lock. ARGV: flag TTL.
_RAISE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1])
   and redis.call('EXISTS', KEYS[2]) == 0 then return 1 end
return 0
"""


def flag_key(kind: str, partition: int) -> str:
    return f"{PREFIX}:drain:{kind}:{partition}"


def lock_key(kind: str, partition: int) -> str:
    return f"{PREFIX}:drain-lock:{kind}:{partition}"


def signal_events(
    redis: Redis, counts: Mapping[int, int], enqueue: Callable[[int], object]
) -> None:
    """Count stored events (per partition) into the backlog, in one call; make sure each
    partition's drain is queued (`enqueue(partition)` where its flag was down)."""
    if not counts:
        return
    partitions = list(counts)
    keys = [BACKLOG_KEY]
    for partition in partitions:
        keys += [flag_key("events", partition), lock_key("events", partition)]
    raised = redis.eval(
        _SIGNAL, len(keys), *keys, FLAG_TTL, *(counts[p] for p in partitions)
    )
    for partition, up in zip(partitions, cast(list[int], raised), strict=True):
        if int(up):
            enqueue(partition)


def raise_flag(
    redis: Redis, kind: str, partition: int, enqueue: Callable[[], object]
) -> bool:
    """After a commit that made work: enqueue a drain unless one is queued (the flag is up)
    or running (it holds the lock).

    A running drain lowers the flag before each batch and, once it lets go of the lock,
    queues one more drain if the flag went up meanwhile; so work committed while it runs is
    either in one of its batches or left to a drain that starts after it."""
    raised = redis.eval(
        _RAISE, 2, flag_key(kind, partition), lock_key(kind, partition), FLAG_TTL
    )
    if int(cast(int, raised)):
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


def events_queue(redis: Redis) -> Queue:
    return queue("events", redis)


def deliveries_queue(redis: Redis) -> Queue:
    return queue("deliveries", redis)
