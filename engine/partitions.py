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
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)


PERIODS = ("day", "week", "month")

# Partitions made ahead of now, in periods: the scheduler may be down that long before rows
# go to the default partition.
AHEAD = 3

# The shortest retentions allowed, in days. Frequency caps count the deliveries of up to 90
# days back (engine.policies.LONGEST_WINDOW); a channel's health reads a day of events.
SHORTEST_KEEP = {"events": 7, "steps": 7, "deliveries": 91}

# Rows deleted per statement, and statements per table per run, where deleting is how a
# retention is kept (SQLite): a run holds the single writer for a short while only.
DELETE_BATCH = 2000
DELETE_BATCHES = 10


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


def _gaps(
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


def _create(
    connection: Connection, g: Grown, lower: datetime, upper: datetime, default: bool
) -> str:
    """Make the partition of [lower, upper) and move into it the rows the default partition
    holds for that range. It is made as a table and then attached, which takes a lighter
    lock on the parent than CREATE ... PARTITION OF: reads and writes of the table go on."""
    name = partition_name(g.table, lower)
    bounds = f"FROM ('{lower.isoformat()}') TO ('{upper.isoformat()}')"
    connection.exec_driver_sql(
        f'CREATE TABLE "{name}" (LIKE "{g.table}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)'
    )
    if default:
        within = f"{g.column} >= %(lower)s AND {g.column} < %(upper)s"
        moved = connection.exec_driver_sql(
            f'WITH moved AS (DELETE FROM "{default_name(g.table)}" WHERE {within}'
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


def create_ahead(
    connection: Connection, table: str, now: datetime, period: str, ahead: int = AHEAD
) -> list[str]:
    """Make the partitions that cover from the period of `now` to `ahead` periods after it,
    and those the rows in the default partition need; returns the names made."""
    g = grown(table)
    existing = parts(connection, table)
    default = any(p.default for p in existing)
    start = period_start(now, period)
    horizon = start
    for _ in range(ahead + 1):
        horizon = period_after(horizon, period)
    wanted = list(periods(start, horizon, period))
    if default:
        oldest, newest = connection.execute(
            text(
                f'SELECT min({g.column}), max({g.column}) FROM "{default_name(table)}"'
            )
        ).one()
        if oldest is not None:
            wanted = sorted(
                {*wanted, *periods(oldest, newest + timedelta(microseconds=1), period)}
            )
    made = []
    for lower in wanted:
        for lo, hi in _gaps(lower, period_after(lower, period), existing):
            made.append(_create(connection, g, lo, hi, default))
            existing.append(Part(made[-1], lo, hi))
    if not default:
        connection.exec_driver_sql(
            f'CREATE TABLE "{default_name(table)}" PARTITION OF "{table}" DEFAULT'
        )
        made.append(default_name(table))
    return made


def drop_expired(
    connection: Connection, table: str, now: datetime, keep: timedelta
) -> tuple[list[str], list[str]]:
    """Drop the partitions whose whole period is older than `keep`; returns the names
    dropped and those held back because they still hold unfinished work."""
    g = grown(table)
    dropped, held = [], []
    for part in parts(connection, table):
        if part.default or part.upper is None or part.upper > now - keep:
            continue
        if g.unfinished and connection.scalar(
            text(f'SELECT 1 FROM "{part.name}" WHERE {g.unfinished} LIMIT 1')
        ):
            held.append(part.name)
            continue
        connection.exec_driver_sql(f'DROP TABLE "{part.name}"')
        dropped.append(part.name)
    if held:
        log.warning(
            "kept %s past the retention of %s: they still hold unfinished work",
            ", ".join(held),
            table,
        )
    return dropped, held


def _delete_old(connection: Connection, g: Grown, cutoff: datetime) -> int:
    """Delete rows older than `cutoff` in bounded batches (where tables are not
    partitioned); unfinished rows stay."""
    finished = f" AND NOT ({g.unfinished})" if g.unfinished else ""
    statement = text(
        f"DELETE FROM {g.table} WHERE id IN (SELECT id FROM {g.table}"
        f" WHERE {g.column} < :cutoff{finished} LIMIT {DELETE_BATCH})"
    )
    deleted = 0
    for _ in range(DELETE_BATCHES):
        count = connection.execute(statement, {"cutoff": cutoff}).rowcount
        deleted += count
        if count < DELETE_BATCH:
            break
    return deleted


def trim_keys(connection: Connection, cutoff: datetime, partitioned: bool) -> int:
    """Forget the webhook ids of events older than `cutoff` that are no longer kept: an
    event held back past its retention keeps its key."""
    if partitioned:
        # Keys older than the oldest partition left name no event; the default partition
        # holds none that old once maintenance has moved its rows.
        kept = [p.lower for p in parts(connection, "events") if not p.default]
        if not kept or kept[0] is None:
            return 0
        cutoff = min(cutoff, kept[0])
        gone = ""
    else:
        gone = (
            " AND NOT EXISTS (SELECT 1 FROM events e WHERE e.id = event_keys.event_id)"
        )
    statement = text(
        "DELETE FROM event_keys WHERE (channel_id, webhook_id) IN ("
        " SELECT channel_id, webhook_id FROM event_keys"
        f" WHERE received_at < :cutoff{gone} LIMIT {DELETE_BATCH})"
    )
    deleted = 0
    for _ in range(DELETE_BATCHES * 5):
        count = connection.execute(statement, {"cutoff": cutoff}).rowcount
        deleted += count
        if count < DELETE_BATCH:
            break
    return deleted


# How long maintenance waits for a lock on a table before it gives up until its next run:
# never long enough to hold up the writes queued behind it.
LOCK_TIMEOUT = "3s"


def maintain(session: Session, now: datetime, retention: Retention) -> int:
    """Make partitions ahead and keep each table's retention; returns the number of
    partitions made or dropped and rows deleted."""
    connection = session.connection()
    changed = 0
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    for g in GROWN:
        keep = retention.keep.get(g.table)
        if is_partitioned(connection, g.table):
            made = create_ahead(connection, g.table, now, retention.period)
            if made:
                log.info("made partitions %s", ", ".join(made))
            changed += len(made)
            if keep is not None:
                dropped, _held = drop_expired(connection, g.table, now, keep)
                if dropped:
                    log.info("dropped partitions %s", ", ".join(dropped))
                changed += len(dropped)
        elif keep is not None:
            changed += _delete_old(connection, g, now - keep)
    keep_events = retention.keep.get("events")
    if keep_events is not None:
        partitioned = is_partitioned(connection, "events")
        changed += trim_keys(connection, now - keep_events, partitioned)
    return changed
