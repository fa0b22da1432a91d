"""Per-channel circuit breakers, their state in Redis and shared by every worker.

A channel's breaker is closed while its calls succeed. A call that fails (a 5xx, 408 or 429
answer, a timeout, a refused connection) counts; `fail_max` failures in a row open it, and
while it is open no worker calls the channel. Once `reset_seconds` have passed, one worker
makes a trial call (half-open): success closes the breaker, failure opens it again.

A drain reads the breaker once per batch (`Gate`) and calls the channel from several threads
at once; only the trial call of a half-open breaker is made alone. A success writes to Redis
only when there were failures to forget.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from redis import Redis
from redis.exceptions import RedisError

log = logging.getLogger("throughline.breaker")
CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"
T = TypeVar("T")
_FIELDS = ("state", "failures", "opened_at")  # what `_parse` reads, in this order


class BreakerOpen(Exception):
    """The channel was not called: its breaker is open (or another worker makes the trial)."""


def namespace(channel_id: int) -> str:
    """Where a channel's breaker keeps its state in Redis."""
    return f"throughline:breaker:{channel_id}"


@dataclass(frozen=True)
class BreakerState:
    """A channel breaker as stored: closed, open, half-open, or unknown (Redis unreachable)."""

    state: str
    failures: int = 0
    opened_at: datetime | None = None


def _parse(values: list[bytes | None]) -> BreakerState:
    state, failures, opened = values
    return BreakerState(
        state.decode() if state else CLOSED,
        int(failures or 0),
        datetime.fromtimestamp(float(opened), UTC) if opened else None,
    )


def breaker_states(redis: Redis, channel_ids: list[int]) -> dict[int, BreakerState]:
    """Read the breakers' stored state in one round trip; a breaker never used is closed."""
    keys = [
        f"{namespace(channel_id)}:{name}"
        for channel_id in channel_ids
        for name in _FIELDS
    ]
    try:
        values = cast(list[bytes | None], redis.mget(keys)) if keys else []
    except RedisError:
        return {channel_id: BreakerState("unknown") for channel_id in channel_ids}
    return {
        channel_id: _parse(values[index * 3 : index * 3 + 3])
        for index, channel_id in enumerate(channel_ids)
    }


class Breaker:
    """One channel's breaker."""

    def __init__(
        self, redis: Redis, channel_id: int, fail_max: int, reset_seconds: float
    ) -> None:
        self.redis, self.fail_max, self.reset_seconds = redis, fail_max, reset_seconds
        self.prefix = namespace(channel_id)

    def _key(self, name: str) -> str:
        return f"{self.prefix}:{name}"

    def read(self) -> BreakerState:
        keys = [self._key(name) for name in _FIELDS]
        return _parse(cast(list[bytes | None], self.redis.mget(keys)))

    def take_trial(self) -> bool:
        """Become the one worker that tries the channel again; False if another one is."""
        ttl = max(1, int(self.reset_seconds))
        if not self.redis.set(self._key("trial"), "1", nx=True, ex=ttl):
            return False
        self.redis.set(self._key("state"), HALF_OPEN)
        return True

    def open(self, now: float | None = None) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(self._key("state"), OPEN)
        pipe.set(self._key("opened_at"), repr(time.time() if now is None else now))
        pipe.delete(self._key("trial"))
        pipe.execute()

    def close(self) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(self._key("state"), CLOSED)
        pipe.delete(self._key("failures"), self._key("opened_at"), self._key("trial"))
        pipe.execute()

    def failed(self) -> bool:
        """Count a failed call; True when it opened the breaker."""
        failures: Any = self.redis.incr(
            self._key("failures")
        )  # typed per redis-py version
        if int(failures) >= self.fail_max:
            self.open()
            return True
        return False


def _quietly(change: Callable[[], T], otherwise: T) -> T:
    """A breaker change that cannot reach Redis is lost, not an error of the delivery."""
    try:
        return change()
    except RedisError:
        log.warning("a circuit breaker could not be updated in Redis")
        return otherwise


class Gate:
    """A batch's view of its channel's breaker: read once, then guarding each call.

    Closed: calls go ahead, from any number of threads. Open, with the reset time not yet
    passed (or another worker making the trial): every call is refused with `BreakerOpen`.
    Half-open and this batch won the trial: the first call goes alone; its success lets the
    others through, its failure refuses them.
    """

    def __init__(self, breaker: Breaker, now: float | None = None) -> None:
        self.breaker = breaker
        self._lock = threading.Lock()
        now = time.time() if now is None else now
        try:
            known = breaker.read()
        except RedisError:
            # The breaker cannot be read: the channel is called as if it were closed.
            log.warning("breaker %s unreadable; calling the channel", breaker.prefix)
            known = BreakerState(CLOSED)
        self._failures = known.failures
        if known.state == CLOSED:
            self.mode = CLOSED
        elif (
            known.state == OPEN
            and known.opened_at is not None
            and now < known.opened_at.timestamp() + breaker.reset_seconds
        ):
            self.mode = OPEN
        else:
            self.mode = HALF_OPEN if _quietly(breaker.take_trial, True) else OPEN

    def call(self, guarded: Callable[[], T]) -> T:
        if self.mode == HALF_OPEN:
            with self._lock:
                if self.mode == HALF_OPEN:
                    return self._trial(guarded)
        if self.mode == OPEN:
            raise BreakerOpen("the channel's circuit breaker is open")
        try:
            result = guarded()
        except Exception:
            with self._lock:
                self._failures += 1
            if _quietly(self.breaker.failed, False):
                self.mode = OPEN
            raise
        if self._failures:
            with self._lock:
                forget, self._failures = self._failures, 0
            if forget:
                _quietly(self.breaker.close, None)
        return result

    def _trial(self, guarded: Callable[[], T]) -> T:
        try:
            result = guarded()
        except Exception:
            _quietly(self.breaker.open, None)
            self.mode = OPEN
            raise
        _quietly(self.breaker.close, None)
        self.mode, self._failures = CLOSED, 0
        return result
