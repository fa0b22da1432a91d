"""Tables that grow for years, kept by period.

On PostgreSQL, events, steps and deliveries are partitioned by the time each row was written
(declarative range partitioning, one partition per month by default). The leading scheduler
creates partitions a few periods ahead and, where a retention is set, drops whole periods
older than it: dropping a partition is instant and leaves no dead rows to vacuum. A period
still holding work (an event not yet applied, a delivery not yet settled) is kept until that
work is done. A default partition takes any row no partition covers (the scheduler stopped for
long); the next run moves its rows into partitions of their own.

SQLite is not partitioned: there a retention deletes old rows in bounded batches.

Profiles, runs, counters and the audit log are never dropped: the analytics read counters,
which keep the figures of every period (engine.analytics.counters).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import OperationalError

if TYPE_CHECKING:
    from engine.db import Database

log = logging.getLogger(__name__)


PERIODS = ("day", "week", "month")

# Partitions made ahead of now, in periods: the scheduler may be down that long before rows
# go to the default partition.
AHEAD = 3

# The shortest retentions allowed, in days. Frequency caps count the deliveries of up to 90
# days back (engine.policies.LONGEST_WINDOW); a channel's health reads a day of events.
SHORTEST_KEEP = {"events": 7, "steps": 7, "deliveries": 91}

# Rows deleted per transaction where rows are deleted one by one (a retention on SQLite, the
# webhook ids of dropped periods): each holds its locks for a moment only.
DELETE_BATCH = 5000

# How long one run may spend deleting rows, in seconds (its job may take 600).
DELETE_BUDGET = 240.0

# How long a statement of maintenance waits for a lock before it gives up until the next run:
# the writes queued behind a DROP or an ATTACH wait at most this long.
LOCK_TIMEOUT = "1s"


@dataclass(frozen=True)
class Grown:
    """A table partitioned by time: the column it is partitioned by, and the rows of a
    period that keep the period from being dropped."""

    table: str
    column: str
    unfinished: str | None = None


GROWN = (
    Grown("events", "received_at", "status = 'pending'"),
    Grown("steps", "at"),
    Grown("deliveries", "created_at", "status = 'pending'"),
)


def grown(table: str) -> Grown:
    return next(g for g in GROWN if g.table == table)


@dataclass(frozen=True)
class Retention:
    """How partitions are cut, and how long each table is kept (None: forever)."""

    period: str = "month"
    keep: dict[str, timedelta | None] = field(default_factory=dict)


def period_start(at: datetime, period: str) -> datetime:
    """The start of the period (UTC) that holds `at`."""
    day = at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    raise ValueError(f"unknown period {period!r}; expected one of {', '.join(PERIODS)}")


def period_after(start: datetime, period: str) -> datetime:
    """The start of the period after the one starting at `start`."""
    if period == "day":
        return start + timedelta(days=1)
    if period == "week":
        return start + timedelta(days=7)
    if start.month == 12:
        return start.replace(year=start.year + 1, month=1)
    return start.replace(month=start.month + 1)


def periods(lower: datetime, upper: datetime, period: str) -> Iterator[datetime]:
    """The starts of the periods that cover [lower, upper)."""
    start = period_start(lower, period)
    while start < upper:
        yield start
        start = period_after(start, period)


@dataclass(frozen=True)
class Part:
    """A partition and its range; None for an unbounded end. `default`: the catch-all."""

    name: str
    lower: datetime | None
    upper: datetime | None
    default: bool = False

    def overlaps(self, lower: datetime, upper: datetime) -> bool:
        return not self.default and (
            (self.lower is None or self.lower < upper)
            and (self.upper is None or lower < self.upper)
        )


def is_partition(name: str) -> bool:
    """Whether a table's name is that of a partition (the models do not describe them)."""
    return any(
        re.fullmatch(rf"{g.table}_(p\d{{8}}|default)", name) is not None for g in GROWN
    )


def partition_name(table: str, lower: datetime) -> str:
    return f"{table}_p{lower:%Y%m%d}"


def default_name(table: str) -> str:
    return f"{table}_default"


_BOUNDS = re.compile(r"FOR VALUES FROM \((.+)\) TO \((.+)\)")


def _bound(value: str) -> datetime | None:
    value = value.strip()
    if value in ("MINVALUE", "MAXVALUE"):
        return None
    return datetime.fromisoformat(value.strip("'")).astimezone(UTC)


def parts(connection: Connection, table: str) -> list[Part]:
    """The partitions of `table`, oldest first (the default last)."""
    # Bounds are shown in the session's time zone; read them in UTC.
    connection.exec_driver_sql("SET LOCAL TIME ZONE 'UTC'")
    found = []
    for name, bound in connection.execute(
        text(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid)"
            " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = CAST(:table AS regclass)"
        ),
        {"table": table},
    ):
        if bound == "DEFAULT":
            found.append(Part(name, None, None, default=True))
            continue
        matched = _BOUNDS.fullmatch(bound)
        if matched is None:
            raise ValueError(f"partition {name} has bounds {bound!r}")
        found.append(Part(name, _bound(matched[1]), _bound(matched[2])))
    oldest = datetime.min.replace(tzinfo=UTC)
    return sorted(found, key=lambda p: (p.default, p.lower or oldest))


def is_partitioned(connection: Connection, table: str) -> bool:
    return connection.dialect.name == "postgresql" and bool(
        connection.scalar(
            text(
                "SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(:t)"
            ),
            {"t": table},
        )
    )


def gaps(
    lower: datetime, upper: datetime, existing: list[Part]
) -> list[tuple[datetime, datetime]]:
    """The pieces of [lower, upper) that no existing partition covers."""
    pieces = [(lower, upper)]
    for part in existing:
        if part.default:
            continue
        cut = []
        for lo, hi in pieces:
            if not part.overlaps(lo, hi):
                cut.append((lo, hi))
                continue
            if part.lower is not None and lo < part.lower:
                cut.append((lo, part.lower))
            if part.upper is not None and part.upper < hi:
                cut.append((part.upper, hi))
        pieces = cut
    return pieces


def _create(connection: Connection, g: Grown, lower: datetime, upper: datetime) -> str:
    """Make the partition of [lower, upper), moving into it the rows the default partition
    holds for that range. It is made as a table and then attached, which takes a lighter
    lock on the parent than CREATE ... PARTITION OF; the default partition is locked first,
    so no row for the range reaches it between the move and the attach."""
    name = partition_name(g.table, lower)
    default = default_name(g.table)
    bounds = f"FROM ('{lower.isoformat()}') TO ('{upper.isoformat()}')"
    has_default = connection.scalar(text("SELECT to_regclass(:t)"), {"t": default})
    if has_default:
        connection.exec_driver_sql(
            f'LOCK TABLE "{g.table}" IN SHARE UPDATE EXCLUSIVE MODE;'
            f' LOCK TABLE "{default}" IN ACCESS EXCLUSIVE MODE'
        )
    connection.exec_driver_sql(
        f'CREATE TABLE "{name}" (LIKE "{g.table}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)'
    )
    if has_default:
        within = f"{g.column} >= %(lower)s AND {g.column} < %(upper)s"
        moved = connection.exec_driver_sql(
            f'WITH moved AS (DELETE FROM "{default}" WHERE {within}'
            f' RETURNING *) INSERT INTO "{name}" SELECT * FROM moved',
            {"lower": lower, "upper": upper},
        ).rowcount
        if moved:
            log.warning(
                "moved %d rows of %s from its default partition into %s",
                moved,
                g.table,
                name,
            )
    connection.exec_driver_sql(
        f'ALTER TABLE "{g.table}" ATTACH PARTITION "{name}" FOR VALUES {bounds}'
    )
    return name


def plan_ahead(
    connection: Connection, table: str, now: datetime, period: str, ahead: int = AHEAD
) -> list[tuple[datetime, datetime]]:
    """The ranges to make partitions for: from the period of `now` to `ahead` periods after
    it, and those the rows in the default partition need, less what partitions cover."""
    g = grown(table)
    existing = parts(connection, table)
    start = period_start(now, period)
    horizon = start
    for _ in range(ahead + 1):
        horizon = period_after(horizon, period)
    wanted = set(periods(start, horizon, period))
    if any(p.default for p in existing):
        oldest, newest = connection.execute(
            text(
                f'SELECT min({g.column}), max({g.column}) FROM "{default_name(table)}"'
            )
        ).one()
        if oldest is not None:
            wanted |= set(periods(oldest, newest + timedelta(microseconds=1), period))
    ranges: list[tuple[datetime, datetime]] = []
    for lower in sorted(wanted):
        for piece in gaps(lower, period_after(lower, period), existing):
            ranges.append(piece)
            existing.append(Part("", *piece))
    return ranges


def create_ahead(
    connection: Connection, table: str, now: datetime, period: str
) -> list[str]:
    """Make, in this transaction, the partitions `plan_ahead` names and the default
    partition if there is none; returns the names made."""
    g = grown(table)
    made = [
        _create(connection, g, lo, hi)
        for lo, hi in plan_ahead(connection, table, now, period)
    ]
    if _make_default(connection, table):
        made.append(default_name(table))
    return made


def _make_default(connection: Connection, table: str) -> bool:
    if connection.scalar(text("SELECT to_regclass(:t)"), {"t": default_name(table)}):
        return False
    connection.exec_driver_sql(
        f'CREATE TABLE "{default_name(table)}" PARTITION OF "{table}" DEFAULT'
    )
    return True


def expired(
    connection: Connection, table: str, now: datetime, keep: timedelta
) -> list[str]:
    """The partitions whose whole period is older than `keep`."""
    return [
        part.name
        for part in parts(connection, table)
        if not part.default and part.upper is not None and part.upper <= now - keep
    ]


def drop_if_finished(connection: Connection, table: str, name: str) -> bool:
    """Drop partition `name` unless it still holds unfinished work; whether it was."""
    g = grown(table)
    if g.unfinished and connection.scalar(
        text(f'SELECT 1 FROM "{name}" WHERE {g.unfinished} LIMIT 1')
    ):
        log.warning(
            "kept %s past the retention of %s: it still holds unfinished work",
            name,
            table,
        )
        return False
    connection.exec_driver_sql(f'DROP TABLE "{name}"')
    return True


class _Steps:
    """Maintenance as a series of short transactions, each waiting at most LOCK_TIMEOUT
    for its locks on PostgreSQL. A step that could not have its lock in time is given up
    until the next run; the others go on."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.gave_up = 0

    @contextmanager
    def step(self) -> Iterator[Connection]:
        with self.database.session(writer=True) as session:
            connection = session.connection()
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            yield connection
            session.commit()

    def attempt(self, what: str, work: Callable[[Connection], object]) -> int:
        """Do `work` in a step; 1 if it made or dropped something, else 0."""
        try:
            with self.step() as connection:
                return 1 if work(connection) else 0
        except OperationalError as error:
            if getattr(error.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
                raise
            self.gave_up += 1
            log.warning(
                "%s waited too long for a lock; it is tried again next run", what
            )
            return 0


LOCK_NOT_AVAILABLE = "55P03"


def _delete_batches(steps: _Steps, statement: Any, params: dict[str, Any]) -> int:
    """Run a DELETE of at most DELETE_BATCH rows, each in its own transaction, until one
    deletes fewer or the run's time is up; returns the rows deleted."""
    deleted = 0
    started = time.monotonic()
    while time.monotonic() - started < DELETE_BUDGET:
        with steps.step() as connection:
            count = connection.execute(statement, params).rowcount
        deleted += count
        if count < DELETE_BATCH:
            break
    return deleted


def _delete_old(steps: _Steps, g: Grown, cutoff: datetime) -> int:
    """Delete rows older than `cutoff` where tables are not partitioned; unfinished rows
    stay."""
    finished = f" AND NOT ({g.unfinished})" if g.unfinished else ""
    statement = text(
        f"DELETE FROM {g.table} WHERE id IN (SELECT id FROM {g.table}"
        f" WHERE {g.column} < :cutoff{finished} LIMIT {DELETE_BATCH})"
    )
    return _delete_batches(steps, statement, {"cutoff": cutoff})


# The webhook ids of a dropped period, a batch at a time, from where the last batch ended:
# keys are written in time order, so the BRIN index leads each batch to the pages after the
# previous one instead of through the rows it deleted.
_TRIM_PARTITIONED = text(
    """
    WITH gone AS (
        DELETE FROM event_keys WHERE ctid = ANY(ARRAY(
            SELECT ctid FROM event_keys
            WHERE received_at < :cutoff AND received_at >= :since
            LIMIT :batch))
        RETURNING received_at
    )
    SELECT count(*), max(received_at) FROM gone
    """
)


def trim_keys(steps: _Steps, cutoff: datetime, partitioned: bool) -> int:
    """Forget the webhook ids of events older than `cutoff` that are no longer kept: an
    event held back past its retention keeps its key."""
    if not partitioned:
        statement = text(
            "DELETE FROM event_keys WHERE rowid IN (SELECT rowid FROM event_keys"
            " WHERE received_at < :cutoff AND NOT EXISTS (SELECT 1 FROM events e"
            f" WHERE e.id = event_keys.event_id) LIMIT {DELETE_BATCH})"
        )
        return _delete_batches(steps, statement, {"cutoff": cutoff})
    with steps.step() as connection:
        # Keys older than the oldest partition left name no event; the default partition
        # holds none that old once maintenance has moved its rows.
        kept = [p.lower for p in parts(connection, "events") if not p.default]
    if not kept or kept[0] is None:
        return 0
    cutoff = min(cutoff, kept[0])
    since = datetime.min.replace(tzinfo=UTC)
    deleted = 0
    started = time.monotonic()
    while time.monotonic() - started < DELETE_BUDGET:
        with steps.step() as connection:
            count, newest = connection.execute(
                _TRIM_PARTITIONED,
                {"cutoff": cutoff, "since": since, "batch": DELETE_BATCH},
            ).one()
        deleted += count
        if count < DELETE_BATCH:
            break
        since = newest
    return deleted


def maintain(database: Database, now: datetime, retention: Retention) -> int:
    """Make partitions ahead and keep each table's retention, in short transactions;
    returns the number of partitions made or dropped and rows deleted."""
    steps = _Steps(database)
    changed = 0
    with steps.step() as connection:
        partitioned = {g.table: is_partitioned(connection, g.table) for g in GROWN}
    for g in GROWN:
        keep = retention.keep.get(g.table)
        if not partitioned[g.table]:
            if keep is not None:
                changed += _delete_old(steps, g, now - keep)
            continue
        with steps.step() as connection:
            ranges = plan_ahead(connection, g.table, now, retention.period)
        for lo, hi in ranges:
            changed += steps.attempt(
                f"making the partition of {g.table} from {lo:%Y-%m-%d}",
                partial(_create, g=g, lower=lo, upper=hi),
            )
        changed += steps.attempt(
            f"making the default partition of {g.table}",
            partial(_make_default, table=g.table),
        )
        if keep is None:
            continue
        with steps.step() as connection:
            old = expired(connection, g.table, now, keep)
        for name in old:
            changed += steps.attempt(
                f"dropping {name}", partial(drop_if_finished, table=g.table, name=name)
            )
    keep_events = retention.keep.get("events")
    if keep_events is not None:
        changed += trim_keys(steps, now - keep_events, partitioned["events"])
    return changed
