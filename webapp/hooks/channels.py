"""What intake needs of a channel, cached for a few seconds per process.

The cache holds the most recently asked slugs, known or not, up to a bound, so requests for
ever new unknown slugs cannot grow the process. When a slug's entry runs out, one thread
reads it again while the process's other requests for it wait for that answer (or its
error): a busy channel's expiry is one query, not one per waiting thread, each on a
connection of its own.
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


class _Read:
    """A read of one slug under way: its waiters are told when it ends, and its error."""

    def __init__(self, generation: int) -> None:
        self.generation = generation
        self.ended = threading.Event()
        self.error: BaseException | None = None


_cache: OrderedDict[str, tuple[float, IntakeChannel | None]] = OrderedDict()
_reading: dict[str, _Read] = {}
_generation = 0  # one more at each forget(): a read begun before it is not kept
_lock = threading.Lock()


def intake_channel(services: Services, slug: str) -> IntakeChannel | None:
    while True:
        with _lock:
            cached = _cache.get(slug)
            if cached and cached[0] > time.monotonic():
                _cache.move_to_end(slug)
                return cached[1]
            read = _reading.get(slug)
            if read is None or read.generation != _generation:
                read = _reading[slug] = _Read(_generation)
                break
        # Another request is reading it: its answer is this one's, and so is its error.
        if not read.ended.wait(TTL):
            return _read(services, slug)  # that read is stuck: this one goes on its own
        if read.error is not None:
            raise read.error
    try:
        found = _read(services, slug)
    except BaseException as error:
        read.error = error
        raise
    else:
        with _lock:
            if read.generation == _generation:
                _cache[slug] = (time.monotonic() + TTL, found)
                _cache.move_to_end(slug)
                while len(_cache) > MAX_ENTRIES:
                    _cache.popitem(last=False)
    finally:
        with _lock:
            if _reading.get(slug) is read:
                del _reading[slug]
        read.ended.set()
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
    global _generation
    with _lock:
        _cache.clear()
        _generation += 1
