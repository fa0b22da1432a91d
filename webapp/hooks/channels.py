"""What intake needs of a channel, cached for a few seconds per process.

The cache holds the most recently asked slugs, known or not, up to a bound, so requests for
ever new unknown slugs cannot grow the process.
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
_lock = threading.Lock()


def intake_channel(services: Services, slug: str) -> IntakeChannel | None:
    now = time.monotonic()
    with _lock:
        cached = _cache.get(slug)
        if cached and cached[0] > now:
            _cache.move_to_end(slug)
            return cached[1]
    found = None
    with services.database.session() as session:
        row = session.scalar(select(Channel).where(Channel.slug == slug))
        if row is not None:
            box = services.box
            secrets = [box.decrypt(row.inbound_secret)]
            if (
                row.previous_inbound_secret
                and row.previous_inbound_expires_at
                and row.previous_inbound_expires_at > utcnow()
            ):
                secrets.append(box.decrypt(row.previous_inbound_secret))
            found = IntakeChannel(
                row.id, row.slug, row.enabled, row.rate_limit, tuple(secrets)
            )
    with _lock:
        _cache[slug] = (now + TTL, found)
        _cache.move_to_end(slug)
        while len(_cache) > MAX_ENTRIES:
            _cache.popitem(last=False)
    return found


def forget() -> None:
    """Drop the cache (tests, and after a channel changes in this process)."""
    with _lock:
        _cache.clear()
