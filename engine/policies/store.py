"""The policies document in SQL (one row), changed with its audit entry, and read by the
engine through a short cache so a drain batch does not read it again."""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine import audit
from engine.models import Channel, PolicySet, User, utcnow
from engine.policies import NONE, Policies, PolicyError, document_of, parse

ROW = 1
# How long a process keeps the policies it read: a change reaches every worker's sends
# within this (the process that made the change sees it at once).
CACHE_SECONDS = 5.0

_lock = threading.Lock()
_cache: dict[str, tuple[float, Policies]] = {}


class StaleRevision(Exception):
    """The change names a revision that is no longer the latest."""

    def __init__(self, current: int) -> None:
        super().__init__(
            f"the policies were changed meanwhile (now revision {current}); "
            "reload them and make the change again"
        )
        self.current = current


def read(session: Session) -> tuple[Policies, PolicySet | None]:
    """The policies as stored now, and their row (None before the first change)."""
    row = session.get(PolicySet, ROW)
    if row is None:
        return NONE, None
    try:
        return parse(row.document, revision=row.revision), row
    except PolicyError:  # a channel renamed since is checked on change, not here
        return NONE, row


def _where(session: Session) -> str:
    return str(session.get_bind().engine.url)


def current(session: Session) -> Policies:
    """The policies for the engine's sends, read at most once per CACHE_SECONDS."""
    key, now = _where(session), time.monotonic()
    with _lock:
        found = _cache.get(key)
    if found is not None and now - found[0] < CACHE_SECONDS:
        return found[1]
    policies = read(session)[0]
    with _lock:
        _cache[key] = (now, policies)
    return policies


def forget() -> None:
    """Read the policies afresh next time (after a change in this process)."""
    with _lock:
        _cache.clear()


def save(
    session: Session,
    document: Any,
    actor: User | None,
    revision: int | None = None,
) -> Policies:
    """Replace the policies with `document` (PolicyError naming each problem), audited; with
    `revision`, only if it is still the latest (StaleRevision). The caller commits."""
    slugs = frozenset(session.scalars(select(Channel.slug)))
    row = session.get(PolicySet, ROW, with_for_update=True)
    latest = row.revision if row is not None else 0
    if revision is not None and revision != latest:
        raise StaleRevision(latest)
    policies = parse(document, slugs, latest + 1)
    before = document_of(read(session)[0]) if row is not None else {}
    after = document_of(policies)
    if row is None:
        row = PolicySet(id=ROW, document=after, revision=0)
        session.add(row)
    row.document, row.revision = after, latest + 1
    row.updated_at, row.updated_by = utcnow(), actor.email if actor else audit.SYSTEM
    audit.record(
        session,
        actor,
        "policy.update",
        "policies",
        ROW,
        {"revision": latest + 1, "before": before, "after": after},
    )
    try:
        session.flush()
    except IntegrityError:  # another first change was written meanwhile
        raise StaleRevision(latest) from None
    forget()  # and again by the caller once committed: another thread may read meanwhile
    return policies
