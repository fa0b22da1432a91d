"""Sign-in attempts, counted in Redis per account and address and per address.

An attempt is counted as a failure before its password is checked, and the count and the
decision are one Lua script, so parallel attempts cannot all pass on the same count. A correct
password takes its count back. Past a few failures for one account from one address, each
further attempt from there waits twice as long as the one before; the account itself is never
locked, so its owner still signs in from an address that has not been failing.
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import Any

from webapp.services import services

PREFIX = "throughline:login"
# Past the free failures, the first wait; each further failure doubles it, up to the window.
FIRST_WAIT_SECONDS = 15

# KEYS: the address's count, the account+address failures, the time they may try again (ms).
# ARGV: now (ms), window (s), attempts per address, free failures, first wait (ms).
# Answers 0 when the attempt may go ahead (and counts it), else the milliseconds to wait.
_ADMIT = """
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local per_address, free = tonumber(ARGV[3]), tonumber(ARGV[4])
local first_wait = tonumber(ARGV[5])
local not_before = tonumber(redis.call('GET', KEYS[3]) or '0')
if not_before > now then
  return not_before - now
end
local used = redis.call('INCR', KEYS[1])
if used == 1 then
  redis.call('EXPIRE', KEYS[1], window)
end
if used > per_address then
  redis.call('DECR', KEYS[1])
  return math.max(redis.call('PTTL', KEYS[1]), 1)
end
local failed = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], 2 * window)
if failed >= free then
  local wait = math.floor(math.min(first_wait * 2 ^ (failed - free), window * 1000))
  redis.call('SET', KEYS[3], now + wait, 'PX', wait)
end
return 0
"""

# KEYS as above. The attempt succeeded: forget the pair's failures, give the address its count back.
_SUCCEEDED = """
redis.call('DEL', KEYS[2], KEYS[3])
if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then
  redis.call('DECR', KEYS[1])
end
return 0
"""


def _keys(email: str, address: str) -> list[str]:
    # Hashed, so an address or a typed email of any length or content makes a short key.
    pair = hashlib.sha256(f"{email}\0{address}".encode()).hexdigest()
    return [
        f"{PREFIX}:address:{hashlib.sha256(address.encode()).hexdigest()}",
        f"{PREFIX}:pair:{pair}:failed",
        f"{PREFIX}:pair:{pair}:not-before",
    ]


def _run(script: str, keys: list[str], *args: Any) -> int:
    redis = services().redis
    return int(redis.eval(script, len(keys), *keys, *args))  # type: ignore[arg-type]


def _now_ms() -> int:
    return int(time.time() * 1000)


def admit(email: str, address: str) -> int:
    """Count an attempt to sign in as `email` from `address`.

    Returns 0 when it may go ahead (counted as a failure until `succeeded`), else the seconds
    to wait before the next one.
    """
    settings = services().settings
    wait_ms = _run(
        _ADMIT,
        _keys(email, address),
        _now_ms(),
        settings.login_window_seconds,
        settings.login_attempts_per_address,
        settings.login_attempts_per_account,
        FIRST_WAIT_SECONDS * 1000,
    )
    return math.ceil(wait_ms / 1000)


def succeeded(email: str, address: str) -> None:
    """The attempt `admit` let through had the right password: it was no failure."""
    _run(_SUCCEEDED, _keys(email, address))
