"""Admission: whether a request's events are taken, by their channel's rate this second and the
backlog of events stored but not yet applied (Redis; a lost count only loosens admission)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis import Redis

from engine.queues import PREFIX

BACKLOG_KEY = f"{PREFIX}:backlog"


# One round trip before events are stored: count each request's events against its channel's
# rate for this second, and refuse those past the rate or past the backlog bound (the events
# admitted earlier in the same call count towards the backlog).
# KEYS: backlog key, then one rate key per request. ARGV: backlog bound, then cost and rate
# limit per request. Returns one verdict per request.
_ADMIT = """
local backlog = tonumber(redis.call('GET', KEYS[1]) or '0')
local bound = tonumber(ARGV[1])
local taken = 0
local verdicts = {}
for i = 2, #KEYS do
  local cost = tonumber(ARGV[2 * i - 2])
  local used = redis.call('INCRBY', KEYS[i], cost)
  if used == cost then redis.call('EXPIRE', KEYS[i], 2) end
  if used > tonumber(ARGV[2 * i - 1]) then
    verdicts[i - 1] = 1
  elseif backlog + taken + cost > bound then
    verdicts[i - 1] = 2
  else
    verdicts[i - 1] = 0
    taken = taken + cost
  end
end
return verdicts
"""


ADMITTED, OVER_RATE, OVER_BACKLOG = 0, 1, 2


@dataclass(frozen=True)
class Ask:
    """A request's events to admit: how many, for which channel, at what rate limit."""

    channel_id: int
    cost: int
    rate_limit: int


def admit_many(redis: Redis, asks: Sequence[Ask], backlog_bound: int) -> list[int]:
    """ADMITTED, OVER_RATE or OVER_BACKLOG for each ask, in one round trip."""
    if not asks:
        return []
    second = int(time.time())
    keys = [BACKLOG_KEY] + [f"{PREFIX}:rate:{a.channel_id}:{second}" for a in asks]
    args: list[int] = [backlog_bound]
    for ask in asks:
        args += [ask.cost, ask.rate_limit]
    verdicts: Any = redis.eval(
        _ADMIT, len(keys), *keys, *args
    )  # typed per redis-py version
    return [int(v) for v in verdicts]


def admit(
    redis: Redis, channel_id: int, cost: int, rate_limit: int, backlog_bound: int
) -> int:
    """ADMITTED, OVER_RATE or OVER_BACKLOG for `cost` events of a channel, this second."""
    return admit_many(redis, [Ask(channel_id, cost, rate_limit)], backlog_bound)[0]


def reduce_backlog(redis: Redis, count: int) -> None:
    if count:
        remaining: Any = redis.decrby(BACKLOG_KEY, count)  # typed per redis-py version
        left = int(remaining)
        if left < 0:
            redis.set(BACKLOG_KEY, 0)
