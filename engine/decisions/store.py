"""Decision tables in SQL: drafts, published versions, history and restore, each change
audited; the live tables read through a short per-process cache; decisions counted."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine import audit
from engine.analytics import counters
from engine.analytics.counters import Metric
from engine.decisions import DecisionError, Table, parse, to_dict
from engine.execution.documents import document_of
from engine.models import (
    LARGEST_ID,
    Counter,
    DecisionTable,
    DecisionVersion,
    Journey,
    JourneyStatus,
    JourneyVersion,
    User,
)

# How long a process keeps a live table it read: a publish reaches every worker and web
# process within this (the process that published sees it at once).
CACHE_SECONDS = 5.0
DECIDE = "decide"  # the node type that asks a table

_lock = threading.Lock()
_cache: dict[tuple[str, str], tuple[float, Live | None]] = {}


@dataclass(frozen=True)
class Live:
    """A table's live version: the table and the version's number."""

    table: Table
    version: int


def forget() -> None:
    """Read live tables afresh next time (after a publish in this process)."""
    with _lock:
        _cache.clear()


def _where(session: Session) -> str:
    return str(session.get_bind().engine.url)


def live(session: Session, key: str) -> Live | None:
    """The live version of table `key` (None when it has none), read at most once per
    CACHE_SECONDS per process."""
    slot, now = (_where(session), key), time.monotonic()
    with _lock:
        found = _cache.get(slot)
    if found is not None and now - found[0] < CACHE_SECONDS:
        return found[1]
    row = session.execute(
        select(DecisionVersion.document, DecisionVersion.number)
        .join(DecisionTable, DecisionTable.id == DecisionVersion.table_id)
        .where(
            DecisionTable.key == key,
            DecisionVersion.number == DecisionTable.live_version,
        )
    ).first()
    value = Live(parse(row[0]), row[1]) if row is not None else None
    with _lock:
        if len(_cache) > 1000:
            _cache.clear()
        _cache[slot] = (now, value)
    return value


def live_outcomes(session: Session) -> dict[str, tuple[str, ...]]:
    """Every table with a live version, by key: the outcomes its rules can give (the
    outputs a decide step on it has besides `default`)."""
    found: dict[str, tuple[str, ...]] = {}
    rows = session.execute(
        select(DecisionTable.key, DecisionVersion.document).join(
            DecisionVersion,
            (DecisionVersion.table_id == DecisionTable.id)
            & (DecisionVersion.number == DecisionTable.live_version),
        )
    )
    for key, document in rows:
        found[key] = parse(document).outcomes
    return found


def get(session: Session, key: str) -> DecisionTable:
    found = session.scalar(select(DecisionTable).where(DecisionTable.key == key))
    if found is None:
        raise DecisionError(404, f"there is no decision table “{key}”")
    return found


def create(session: Session, raw: Any, actor: User | None) -> DecisionTable:
    """A new table whose draft is `raw` (422 naming each problem; 409 if the key is taken)."""
    table = parse(raw)
    if session.scalar(select(DecisionTable.id).where(DecisionTable.key == table.key)):
        raise DecisionError(
            409, f"there is already a decision table “{table.key}”", field="key"
        )
    row = DecisionTable(
        key=table.key,
        name=table.name,
        draft=to_dict(table),
        draft_revision=1,
        created_by_id=actor.id if actor else None,
    )
    session.add(row)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:  # made by another request meanwhile
        raise DecisionError(
            409, f"there is already a decision table “{table.key}”", field="key"
        ) from None
    audit.record(
        session, actor, "decision.create", "decision", row.id, {"key": row.key}
    )
    return row


def replace_draft(
    session: Session,
    row: DecisionTable,
    raw: Any,
    actor: User | None,
    expected_revision: int | None = None,
) -> Table:
    """Save `raw` as the draft (422 naming each problem); with `expected_revision`, a draft
    changed since that revision is not overwritten (412). The key cannot change."""
    if expected_revision is not None and expected_revision != row.draft_revision:
        raise DecisionError(
            412,
            f"the draft changed since revision {expected_revision} (it is at "
            f"{row.draft_revision}); reload it and apply your change again",
        )
    if isinstance(raw, dict) and "key" not in raw:
        raw = {**raw, "key": row.key}
    table = parse(raw)
    if table.key != row.key:
        raise DecisionError(
            422,
            f"a table's key cannot change (it is “{row.key}”); create a new table instead",
            [("key", "a table's key cannot change")],
            "key",
        )
    row.draft, row.name = to_dict(table), table.name
    row.draft_revision += 1
    audit.record(
        session,
        actor,
        "decision.draft",
        "decision",
        row.id,
        {"key": row.key, "revision": row.draft_revision},
    )
    return table


@dataclass(frozen=True)
class Asking:
    """A decide step of a live journey's live version that asks a table."""

    journey_id: int
    journey: str
    node: str
    outputs: frozenset[str]  # the outcomes its connections leave by, `default` aside


def asking(session: Session, key: str) -> list[Asking]:
    """The decide steps of live and paused journeys (their live versions) that ask `key`."""
    rows = session.execute(
        select(Journey.id, Journey.name, JourneyVersion.id)
        .join(
            JourneyVersion,
            (JourneyVersion.journey_id == Journey.id)
            & (JourneyVersion.number == Journey.live_version),
        )
        .where(Journey.status.in_((JourneyStatus.live, JourneyStatus.paused)))
        .order_by(Journey.id)
    )
    found = []
    for journey_id, name, version_id in rows:
        document = document_of(session, version_id)
        for node in document.nodes:
            if node.type == DECIDE and node.config.get("table") == key:
                outputs = frozenset(
                    edge.port
                    for edge in document.edges_from(node.id)
                    if edge.port not in {"default", "error"}
                )
                found.append(Asking(journey_id, name, node.id, outputs))
    return found


def mismatches(session: Session, table: Table) -> list[Asking]:
    """Decide steps of live journeys whose outputs are not the outcomes of `table`."""
    outcomes = frozenset(table.outcomes)
    return [step for step in asking(session, table.key) if step.outputs != outcomes]


def publish(
    session: Session, row: DecisionTable, actor: User | None
) -> DecisionVersion:
    """Make the draft a new immutable version, the one journeys and channels are answered
    from. Refused (409, the journeys named) while a live journey's decide step on this
    table has outputs other than the new outcomes."""
    # One publish at a time per table: a second waits, then finds the first's version.
    session.execute(
        select(DecisionTable.id).where(DecisionTable.id == row.id).with_for_update()
    )
    session.refresh(row)
    table = parse(row.draft)
    current = _version(session, row, row.live_version) if row.live_version else None
    if current is not None and current.document == to_dict(table):
        return current
    wrong = mismatches(session, table)
    if wrong:
        names = ", ".join(dict.fromkeys(f"“{step.journey}”" for step in wrong))
        outcomes = ", ".join(table.outcomes) or "none"
        raise DecisionError(
            409,
            f"live journeys decide by this table with other outcomes than the draft's "
            f"({outcomes}): {names}; change their decide steps' connections in a new "
            "version, or keep the outcomes",
            field="rules",
        )
    number = (
        session.scalar(
            select(func.max(DecisionVersion.number)).where(
                DecisionVersion.table_id == row.id
            )
        )
        or 0
    ) + 1
    version = DecisionVersion(
        table_id=row.id,
        number=number,
        document=to_dict(table),
        published_by_id=actor.id if actor else None,
    )
    session.add(version)
    row.live_version = number
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:  # published at the same moment elsewhere (SQLite: no lock)
        raise DecisionError(
            409, "the table was published at the same moment; reload it"
        ) from None
    audit.record(
        session,
        actor,
        "decision.publish",
        "decision",
        row.id,
        {"key": row.key, "version": number},
    )
    forget()
    return version


def _version(
    session: Session, row: DecisionTable, number: int
) -> DecisionVersion | None:
    if not 1 <= number <= LARGEST_ID:
        return None
    return session.scalar(
        select(DecisionVersion).where(
            DecisionVersion.table_id == row.id, DecisionVersion.number == number
        )
    )


def version(session: Session, row: DecisionTable, number: int) -> DecisionVersion:
    found = _version(session, row, number)
    if found is None:
        raise DecisionError(404, f"the table “{row.key}” has no version {number}")
    return found


def versions(session: Session, row: DecisionTable) -> list[DecisionVersion]:
    """Its published versions, newest first."""
    return list(
        session.scalars(
            select(DecisionVersion)
            .where(DecisionVersion.table_id == row.id)
            .order_by(DecisionVersion.number.desc())
        )
    )


def restore_version(
    session: Session, row: DecisionTable, number: int, actor: User | None
) -> Table:
    """Make published version `number` the draft again (the live version is untouched)."""
    document = version(session, row, number).document
    table = replace_draft(session, row, document, actor)
    audit.record(
        session,
        actor,
        "decision.restore_version",
        "decision",
        row.id,
        {"key": row.key, "version": number},
    )
    return table


def count(
    session: Session,
    key: str,
    version_number: int,
    outcome: str,
    at: datetime,
    journey_id: int = 0,
) -> None:
    """Count one decision when the session's transaction commits (journey 0: asked by a
    channel through the API)."""
    counters.add(
        session,
        Metric.DECIDED,
        at,
        journey_id=journey_id,
        version_id=version_number,
        node_id=key,
        label=outcome,
    )


def counts(session: Session, key: str, since: datetime) -> dict[str, dict[str, int]]:
    """Decisions of table `key` since `since`, by outcome: asked by channels (`api`) and by
    journeys' decide steps (`journeys`)."""
    found: dict[str, dict[str, int]] = {}
    rows = session.execute(
        select(Counter.label, Counter.journey_id, func.sum(Counter.value))
        .where(
            Counter.metric == Metric.DECIDED,
            Counter.node_id == key,
            Counter.bucket >= counters.hour_of(since),
        )
        .group_by(Counter.label, Counter.journey_id)
    )
    for outcome, journey_id, value in rows:
        slot = found.setdefault(outcome, {"api": 0, "journeys": 0})
        slot["journeys" if journey_id else "api"] += int(value or 0)
    return found


def tables(session: Session, keys: Iterable[str] | None = None) -> list[DecisionTable]:
    statement = select(DecisionTable).order_by(DecisionTable.key)
    if keys is not None:
        statement = statement.where(DecisionTable.key.in_(list(keys)))
    return list(session.scalars(statement))
