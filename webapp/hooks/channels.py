"""What intake needs of a channel, cached for a few seconds per process.

The cache holds the most recently asked slugs, known or not, up to a bound, so requests for
ever new unknown slugs cannot grow the process. When a slug's entry runs out, one thread
reads it again while the process's other requests for it wait for that answer: a busy
channel's expiry is one query, not one per waiting thread, each on a connection of its own.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from sqlalchemy import select

from engine.models import Channel, utcnow
from webapp.services import Services

TTL = 5.0
MAX_ENTRIES = 1024


@dataclass(frozen=True)
class IntakeChannel:
    id: int
    slug: str
    enabled: bool
    rate_limit: int
    secrets: tuple[
        str, ...
    ]  # the current inbound secret, then the previous one in its grace period


_cache: OrderedDict[str, tuple[float, IntakeChannel | None]] = OrderedDict()
_reading: dict[str, threading.Event] = {}  # slugs being read, and their readers' signal
_lock = threading.Lock()


def intake_channel(services: Services, slug: str) -> IntakeChannel | None:
    while True:
        with _lock:
            cached = _cache.get(slug)
            if cached and cached[0] > time.monotonic():
                _cache.move_to_end(slug)
                return cached[1]
            reading = _reading.get(slug)
            if reading is None:
                reading = _reading[slug] = threading.Event()
                break
        # Another request is reading it. If that read failed, this one tries in turn.
        reading.wait(TTL)
    try:
        found = _read(services, slug)
        with _lock:
            _cache[slug] = (time.monotonic() + TTL, found)
            _cache.move_to_end(slug)
            while len(_cache) > MAX_ENTRIES:
                _cache.popitem(last=False)
    finally:
        with _lock:
            del _reading[slug]
        reading.set()
    return found


def _read(services: Services, slug: str) -> IntakeChannel | None:
    with services.database.session() as session:
        row = session.scalar(select(Channel).where(Channel.slug == slug))
        if row is None:
            return None
        box = services.box
        secrets = [box.decrypt(row.inbound_secret)]
        if (
            row.previous_inbound_secret
            and row.previous_inbound_expires_at
            and row.previous_inbound_expires_at > utcnow()
        ):
            secrets.append(box.decrypt(row.previous_inbound_secret))
        return IntakeChannel(
            row.id, row.slug, row.enabled, row.rate_limit, tuple(secrets)
        )


def forget() -> None:
    """Drop the cache (tests, and after a channel changes in this process)."""
    with _lock:
        _cache.clear()
