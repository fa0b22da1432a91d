"""What a drain batch reads up front, so applying its events one by one makes no queries.

A drain applies up to a few hundred events in one transaction. Read event by event, each would
look up its identities, lock its customer, read its runs and its entry history: a handful of
round trips per event, and a flush before each. `prefetch` reads all of that for the whole batch
in one query per table (locking the customers and runs, in id order, on PostgreSQL), and keeps
it on the session; the engine's lookups consult it first and keep it current as they create
customers, identities and runs. On PostgreSQL new rows take ids drawn from their sequences in
blocks, so nothing needs to be flushed until the batch commits and every insert is batched.

A profile merge changes rows behind the cache's back: it drops the cache, and the rest of the
batch reads as it goes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, text, tuple_
from sqlalchemy.orm import Session

from engine import transaction
from engine.models import IN_FLIGHT, Customer, Identity, Run

CHUNK = 500
ID_BLOCK = 256
TABLES = {t: t for t in ("customers", "identities", "runs", "steps")}


@dataclass
class Batch:
    """The customers, identities, runs and entry counts a batch's events concern."""

    looked_up: set[tuple[str, str]] = field(default_factory=set)
    owner: dict[tuple[str, str], int] = field(default_factory=dict)
    customers: dict[int, Customer] = field(default_factory=dict)
    runs: dict[int, list[Run]] = field(default_factory=dict)
    entries: dict[tuple[int, int], list[int]] = field(default_factory=dict)
    ids: dict[str, list[int]] = field(default_factory=dict)
    after: dict[str, int] = field(default_factory=dict)
    counted: bool = True
    # Whether `customers` are locked by this transaction (on PostgreSQL; SQLite has one
    # writer), so frequency caps may count their sends without locking each again.
    locked: bool = False

    def knows(self, pairs: Iterable[tuple[str, str]]) -> bool:
        return all(pair in self.looked_up for pair in pairs)


def current(session: Session) -> Batch | None:
    state = transaction.peek(session)
    return state.batch if state else None


def drop(session: Session) -> None:
    """Stop consulting the batch read ahead (rows changed behind its back)."""
    state = transaction.peek(session)
    if state is not None:
        state.batch = None


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def prefetch(
    session: Session,
    identifiers: Iterable[Sequence[tuple[str, str]]],
    count_entries: bool = True,
) -> Batch:
    """Read (and on PostgreSQL lock) what the events naming these identifiers will need.

    `count_entries`: read how often each customer entered each journey (only entry rules
    that limit entries need it; whether a run is under way comes from the runs read).
    """
    postgres = session.get_bind().dialect.name == "postgresql"
    batch = Batch(locked=True)
    pairs = sorted({pair for named in identifiers for pair in named})
    batch.looked_up.update(pairs)
    for chunk in _chunks(pairs):
        batch.owner.update(owners(session, chunk))
    customer_ids = sorted(set(batch.owner.values()))
    known = transaction.of(session).identifiers
    for chunk in _chunks(customer_ids):
        statement = select(Customer).where(Customer.id.in_(chunk)).order_by(Customer.id)
        for customer in session.scalars(
            statement.with_for_update() if postgres else statement
        ):
            batch.customers[customer.id] = customer
        for customer_id, kind, value in session.execute(
            select(Identity.customer_id, Identity.kind, Identity.value)
            .where(Identity.customer_id.in_(chunk))
            .order_by(Identity.id)
        ):
            known.setdefault(customer_id, {}).setdefault(kind, value)
        runs = (
            select(Run)
            .where(Run.customer_id.in_(chunk), Run.status.in_(IN_FLIGHT))
            .order_by(Run.id)
        )
        for run in session.scalars(runs.with_for_update() if postgres else runs):
            batch.runs.setdefault(run.customer_id, []).append(run)
        if not count_entries:
            continue
        for journey_id, customer_id, entries, active in session.execute(
            select(
                Run.journey_id,
                Run.customer_id,
                func.count(Run.id),
                func.count(Run.id).filter(Run.status.in_(IN_FLIGHT)),
            )
            .where(Run.customer_id.in_(chunk))
            .group_by(Run.journey_id, Run.customer_id)
        ):
            batch.entries[(journey_id, customer_id)] = [entries, active]
    for customer_id in customer_ids:
        batch.runs.setdefault(customer_id, [])
    batch.counted = count_entries
    transaction.of(session).batch = batch
    return batch


# One lookup of the (kind, value) index per pair: a list of pairs is a filter PostgreSQL may
# apply to every row of a table it believes small (a cached generic plan of a table grown
# since costs a scan of it per batch); a LIMIT in a LATERAL subquery keeps it from being
# flattened into a join the planner could turn into one scan.
_OWNERS = text(
    """
    SELECT p.kind, p.value, i.customer_id
    FROM unnest(CAST(:kinds AS text[]), CAST(:values AS text[])) AS p(kind, value)
    CROSS JOIN LATERAL (
        SELECT customer_id FROM identities
        WHERE identities.kind = p.kind AND identities.value = p.value
        LIMIT 1
    ) AS i
    """
)


def owners(
    session: Session, pairs: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    """The profile that owns each of these (kind, value) identifiers that has one."""
    if not pairs:
        return {}
    if session.get_bind().dialect.name == "postgresql":
        if session.autoflush:
            session.flush()  # as a query of the ORM would: identities added are seen
        found = session.execute(
            _OWNERS,
            {"kinds": [k for k, _ in pairs], "values": [v for _, v in pairs]},
        )
    else:
        found = session.execute(
            select(Identity.kind, Identity.value, Identity.customer_id).where(
                tuple_(Identity.kind, Identity.value).in_(pairs)
            )
        )
    return {(kind, value): customer_id for kind, value, customer_id in found}


# The same text whatever the tables and counts, so the driver prepares it once. Each table's
# sequence is looked up once (OFFSET 0 keeps the subquery from being merged into the outer
# query): pg_get_serial_sequence reads the catalog, which per id cost more than the id.
_DRAW_IDS = text(
    """
    SELECT t.name, nextval(t.sequence)
    FROM (
        SELECT u.name, u.n,
               CAST(pg_get_serial_sequence(u.name, 'id') AS regclass) AS sequence
        FROM unnest(CAST(:tables AS text[]), CAST(:counts AS integer[])) AS u(name, n)
        OFFSET 0
    ) AS t,
    generate_series(1, t.n)
    """
)


def reserve(session: Session, counts: dict[str, int]) -> None:
    """Draw ids for the rows a batch is expected to write, one round trip for every table
    (PostgreSQL; SQLite counts up from the largest id when asked)."""
    batch = current(session)
    if batch is None or session.get_bind().dialect.name != "postgresql":
        return
    wanted = [(table, int(count)) for table, count in counts.items() if count > 0]
    if not wanted:
        return
    with session.no_autoflush:
        drawn = session.execute(
            _DRAW_IDS,
            {
                "tables": [TABLES[table] for table, _ in wanted],
                "counts": [count for _, count in wanted],
            },
        ).all()
    for table, value in sorted(drawn, key=lambda row: -row[1]):
        batch.ids.setdefault(table, []).append(int(value))


def customers_of(
    session: Session, customer_ids: Iterable[int], skip_locked: bool = False
) -> Batch:
    """Read these customers and their identifiers in one query each (for timer sweeps).

    `skip_locked` (on PostgreSQL): lock them, leaving out those another transaction holds.
    A sweep holds its runs already; waiting for a customer that an event drain holds (which
    waits for the customer's runs in turn) would deadlock, so their runs wait for the next
    sweep instead."""
    postgres = session.get_bind().dialect.name == "postgresql"
    lock = skip_locked and postgres
    batch = Batch(locked=lock or not postgres)
    wanted = sorted(set(customer_ids))
    known = transaction.of(session).identifiers
    for chunk in _chunks(wanted):
        read = select(Customer).where(Customer.id.in_(chunk)).order_by(Customer.id)
        if lock:
            read = read.with_for_update(key_share=True, skip_locked=True)
        for customer in session.scalars(read):
            batch.customers[customer.id] = customer
            known.setdefault(customer.id, {})  # read: no identifiers is an answer too
        for customer_id, kind, value in session.execute(
            select(Identity.customer_id, Identity.kind, Identity.value)
            .where(Identity.customer_id.in_(chunk))
            .order_by(Identity.id)
        ):
            known.setdefault(customer_id, {}).setdefault(kind, value)
    transaction.of(session).batch = batch
    return batch


def next_id(session: Session, table: str) -> int | None:
    """A fresh primary key for `table`, or None: flush to get one.

    PostgreSQL: drawn from the table's sequence in blocks. SQLite: the next after the largest
    (or, for an AUTOINCREMENT table, the largest ever given), which is safe because a writer
    session holds the database's write lock from its start.
    """
    batch = current(session)
    if batch is None:
        return None
    pool = batch.ids.setdefault(table, [])
    if pool:
        return pool.pop()
    dialect = session.get_bind().dialect.name
    with session.no_autoflush:  # nothing pending needs writing to draw ids
        if dialect == "postgresql":
            pool.extend(
                int(value)
                for _table, value in session.execute(
                    _DRAW_IDS, {"tables": [TABLES[table]], "counts": [ID_BLOCK]}
                )
            )
            pool.sort(reverse=True)  # handed out smallest first
            return pool.pop()
        writer = session.connection().get_execution_options().get("sqlite_immediate")
        if dialect != "sqlite" or not writer:
            return None
        if table not in batch.after:
            largest = session.execute(
                text(f"SELECT max(id) FROM {TABLES[table]}")
            ).scalar()
            batch.after[table] = max(int(largest or 0), _given(session, TABLES[table]))
    batch.after[table] += 1  # ids handed out are not in the table until the flush
    return batch.after[table]


def _given(session: Session, table: str) -> int:
    """The largest id an AUTOINCREMENT table of SQLite ever gave (rows since deleted too),
    so an erased profile's id is never handed out again; 0 for other tables."""
    has_sequences = session.execute(
        text(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'"
        )
    ).scalar()
    if not has_sequences:
        return 0
    given = session.execute(
        text("SELECT seq FROM sqlite_sequence WHERE name = :table"), {"table": table}
    ).scalar()
    return int(given or 0)


def runs_of(session: Session, customer_id: int) -> list[Run] | None:
    """The customer's runs under way, if the batch read them; None means read them now."""
    batch = current(session)
    if batch is None or customer_id not in batch.runs:
        return None
    return [run for run in batch.runs[customer_id] if run.status in IN_FLIGHT]


def started(session: Session, run: Run) -> None:
    """Keep the batch current after a run starts."""
    batch = current(session)
    if batch is None:
        return
    batch.runs.setdefault(run.customer_id, []).append(run)
    counts = batch.entries.setdefault((run.journey_id, run.customer_id), [0, 0])
    counts[0] += 1
    counts[1] += 1


def entries_of(
    session: Session, journey_id: int, customer_id: int, need_count: bool = True
) -> tuple[int, bool] | None:
    """How many times the customer entered the journey (0 when not `need_count` and not
    read), and whether a run of it is under way; None: not read, ask the database."""
    batch = current(session)
    if batch is None or customer_id not in batch.runs:
        return None
    if need_count and not batch.counted:
        return None
    entries, _ = batch.entries.get((journey_id, customer_id), [0, 0])
    active = any(
        run.journey_id == journey_id for run in runs_of(session, customer_id) or []
    )
    return entries, active
