"""Pre-aggregated figures: counted in the transaction that does the work, read by analytics.

Engine code adds to a session's tally (`add`); the tally is written as one upsert per
transaction just before it commits, so a figure is counted exactly when the work it counts is
committed. A savepoint rolled back takes its additions with it. Readers (engine.analytics.queries) sum
rows over shards and hours.
"""

from __future__ import annotations

from collections import Counter as Tallied
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, delete
from sqlalchemy.orm import Session, SessionTransaction

from engine import bulk, transaction
from engine.models import Counter


class Metric:
    """What a counter row counts. Labels are given per metric."""

    ENTERED = "entered"  # runs started; channel: the trigger event's channel
    ENDED = "ended"  # runs ended; label: completed, exited or failed
    CONVERTED = "converted"  # runs that reached the goal
    CROSS_CHANNEL = (
        "converted_cross"  # converted runs that touched two or more channels
    )
    TIME_TO_GOAL = "time_to_goal"  # label: upper bound of the bucket, in seconds
    BRANCH_ENTERED = "branch_entered"  # node: a split; label: its port
    BRANCH_CONVERTED = "branch_converted"  # node: a split; label: the port taken
    STEP = "step"  # steps written at a node; label: the outcome (a port, waiting, ...)
    ARRIVED = (
        "arrived"  # runs arriving at a node (a wait's later steps are not arrivals)
    )
    VISITED = "visited"  # runs, once per node; label: entered, completed or failed
    DELIVERY = "delivery"  # settled deliveries; label: delivered, failed or suppressed
    REASON = "delivery_reason"  # failed or suppressed deliveries; label: the reason
    LATENCY = "latency"  # answered attempts; label: upper bound of the bucket, in ms
    EVENT = "event"  # journey 0; label: known (from another channel), same or new
    EMPTY = "empty_name"  # node: a send; label: a name its message printed empty
    HELD = "held"  # sends a policy held back for later; label: quiet_hours or throttle
    HELD_OUT = "held_out"  # runs entered by customers in the global holdout
    HELD_OUT_CONVERTED = "held_out_converted"  # those runs that reached the goal
    # Decisions of a table (node: its key; version: the table's version; label: the
    # outcome); journey 0 holds those asked by channels through the API.
    DECIDED = "decided"
    # Events that broke their schema (journey 0; node: the event type; channel: where it
    # came from; label: refused, flagged or stripped).
    SCHEMA = "schema"


LATENCY_BOUNDS_MS = (10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000)


TIME_TO_GOAL_BOUNDS = (60, 300, 900, 3600, 6 * 3600, 86400, 3 * 86400, 7 * 86400)


TIME_TO_GOAL_NAMES = {
    "60": "under 1 minute",
    "300": "1-5 minutes",
    "900": "5-15 minutes",
    "3600": "15-60 minutes",
    "21600": "1-6 hours",
    "86400": "6-24 hours",
    "259200": "1-3 days",
    "604800": "3-7 days",
    "inf": "over 7 days",
}


OVER = "inf"


Key = tuple[int, str, datetime, int, str, int, str]


KEY_COLUMNS = [
    "journey_id",
    "metric",
    "bucket",
    "version_id",
    "node_id",
    "channel_id",
    "label",
    "shard",
]


_last_hour: tuple[datetime | None, datetime | None] = (None, None)


def hour_of(moment: datetime) -> datetime:
    """The start of `moment`'s hour (a batch counts many figures at one moment: the last
    answer is kept)."""
    global _last_hour
    asked, hour = _last_hour
    if asked is moment and hour is not None:
        return hour
    hour = moment.replace(minute=0, second=0, microsecond=0)
    _last_hour = (moment, hour)
    return hour


def bucket_label(value: float, bounds: tuple[int, ...]) -> str:
    """The smallest bound `value` does not exceed, as text; `inf` past the last."""
    for bound in bounds:
        if value <= bound:
            return str(bound)
    return OVER


@dataclass
class Tally:
    """Additions waiting for their transaction to commit."""

    items: list[tuple[Key, int]] = field(default_factory=list)
    marks: dict[int, int] = field(default_factory=dict)

    def totals(self) -> Tallied[Key]:
        summed: Tallied[Key] = Tallied()
        for key, amount in self.items:
            summed[key] += amount
        return summed


def tally_of(session: Session) -> Tally:
    state = transaction.of(session)
    if state.tally is None:
        state.tally = Tally()
    return state.tally


def add(
    session: Session,
    metric: str,
    at: datetime,
    *,
    journey_id: int = 0,
    version_id: int = 0,
    node_id: str = "",
    channel_id: int | None = 0,
    label: str = "",
    amount: int = 1,
) -> None:
    """Count `amount` of `metric` when the session's transaction commits."""
    key = (
        journey_id,
        metric,
        hour_of(at),
        version_id,
        node_id[:100],
        channel_id or 0,
        label[:64],
    )
    tally_of(session).items.append((key, amount))


def run_left(
    session: Session,
    at: datetime,
    journey_id: int,
    version_id: int,
    node_id: str | None,
    how: str,
) -> None:
    """Count a run that left its journey outside the runner (archived, erased) at a node."""
    where: dict[str, Any] = {"journey_id": journey_id, "version_id": version_id}
    add(session, Metric.ENDED, at, label=how, **where)
    add(session, Metric.STEP, at, node_id=node_id or "", label=how, **where)


# Shards below zero hold folded rows: one per hour (recent) or per day (older).
HOURLY = -1


DAILY = -2


HOURLY_FOR = timedelta(days=2)


def set_shard(session: Session, shard: int) -> None:
    """Name the rows this session writes to (one per drain partition avoids row waits)."""
    transaction.of(session).counter_shard = shard


def flush(session: Session) -> int:
    """Write the tally as one upsert (rows in key order, so writers never deadlock)."""
    rows = _take(session)
    _upsert(session, rows)
    return len(rows)


def take(session: Session) -> bulk.Write:
    """The tally as an upsert to write with other rows (engine.bulk.write_all); the tally
    is then empty."""
    return bulk.Write(_TABLE, _take(session), on_conflict=_ADD)


def _take(session: Session) -> list[dict[str, Any]]:
    state = transaction.peek(session)
    tally = state.tally if state else None
    if state is None or tally is None or not tally.items:
        return []
    shard = state.counter_shard
    totals = tally.totals()
    tally.items.clear()
    rows = [
        {
            "journey_id": key[0],
            "metric": key[1],
            "bucket": key[2],
            "version_id": key[3],
            "node_id": key[4],
            "channel_id": key[5],
            "label": key[6],
            "shard": shard,
            "value": amount,
        }
        for key, amount in sorted(totals.items())
        if amount
    ]
    return rows


_TABLE = cast(Table, Counter.__table__)
# Each row's value is added to its counter's (the row is created at that value if new).
_ADD = (KEY_COLUMNS, {"value": "counters.value + excluded.value"})


def _upsert(session: Session, rows: list[dict[str, Any]]) -> None:
    """Add the rows' values to their counters (rows have distinct keys, in key order)."""
    if not rows:
        return
    bulk.insert_rows(session.connection(), _TABLE, rows, on_conflict=_ADD)


def compact(session: Session, now: datetime) -> int:
    """Fold the shards of finished hours into one row per hour, and hours older than two
    days into one row per day, so reading a long period sums few rows. Returns the number
    of rows folded away. Rows are taken with DELETE ... RETURNING, so an addition made
    meanwhile is either folded or left for the next run, never lost."""
    finished = hour_of(now) - timedelta(hours=1)
    daily_before = (hour_of(now) - HOURLY_FOR).replace(hour=0)
    columns = [getattr(Counter, name) for name in (*KEY_COLUMNS, "value")]
    taken = list(
        session.execute(
            delete(Counter)
            .where(Counter.shard >= 0, Counter.bucket < finished)
            .returning(*columns)
        )
    )
    taken += session.execute(
        delete(Counter)
        .where(Counter.shard == HOURLY, Counter.bucket < daily_before)
        .returning(*columns)
    )
    folded: Tallied[tuple[Any, ...]] = Tallied()
    for journey, metric, bucket, version, node, channel, label, _shard, value in taken:
        if bucket < daily_before:
            key = (
                journey,
                metric,
                bucket.replace(hour=0),
                version,
                node,
                channel,
                label,
                DAILY,
            )
        else:
            key = (journey, metric, bucket, version, node, channel, label, HOURLY)
        folded[key] += value
    _upsert(
        session,
        [
            dict(zip([*KEY_COLUMNS, "value"], (*key, value), strict=True))
            for key, value in sorted(folded.items())
        ],
    )
    return len(taken) - len(folded)


def write_before_commit(session: Session) -> None:
    """Write the tally as the transaction commits."""
    if session.in_nested_transaction():
        return  # a savepoint released: its additions stay in the tally for the real commit
    flush(session)


def mark_savepoint(session: Session, begun: SessionTransaction) -> None:
    """Remember where a savepoint began in the tally, to forget what it adds if rolled back."""
    if begun.nested:
        tally = tally_of(session)
        tally.marks[id(begun)] = len(tally.items)


def forget_rolled_back(session: Session, previous: SessionTransaction) -> None:
    """Forget the additions made within a rolled-back savepoint (or transaction)."""
    state = transaction.peek(session)
    tally = state.tally if state else None
    if tally is None:
        return
    if previous.nested:
        mark = tally.marks.pop(id(previous), None)
        if mark is not None:
            del tally.items[mark:]
    elif previous.parent is None:
        tally.items.clear()
        tally.marks.clear()
