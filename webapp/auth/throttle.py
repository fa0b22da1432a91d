"""Failed sign-in attempts, counted per account and per address in Redis."""

from __future__ import annotations

import math
import time

from limits import RateLimitItemPerSecond
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

from webapp.services import services


def _limiter() -> MovingWindowRateLimiter:
    found = services()
    storage = RedisStorage(
        "redis://",
        connection_pool=found.redis.connection_pool,
        key_prefix="throughline:login",
    )
    return MovingWindowRateLimiter(storage)


def _items(email: str, address: str) -> list[tuple[RateLimitItemPerSecond, str]]:
    settings = services().settings
    window = settings.login_window_seconds
    return [
        (
            RateLimitItemPerSecond(settings.login_attempts_per_account, window),
            f"account:{email}",
        ),
        (
            RateLimitItemPerSecond(settings.login_attempts_per_address, window),
            f"address:{address}",
        ),
    ]


def seconds_blocked(email: str, address: str) -> int:
    """0 when another attempt is allowed, else how many seconds until one is."""
    limiter = _limiter()
    wait = 0.0
    for item, key in _items(email, address):
        if not limiter.test(item, key):
            reset_at, _remaining = limiter.get_window_stats(item, key)
            wait = max(wait, reset_at - time.time(), 1)
    return math.ceil(wait)


def record_failure(email: str, address: str) -> None:
    limiter = _limiter()
    for item, key in _items(email, address):
        limiter.hit(item, key)


def clear_account(email: str) -> None:
    limiter = _limiter()
    item, key = _items(email, "")[0]
    limiter.clear(item, key)
