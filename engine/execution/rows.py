"""Rows the engine writes in bulk: the profiles and identities a batch creates, the runs it
starts, the deliveries it asks for and the steps taken, gathered during a transaction and
written together (engine.bulk.write_all: one statement on PostgreSQL) before the session
queries and before it commits.

A drain writes a profile, its identities, a run, a delivery and four or more steps per new
customer's event; as ORM objects, built, tracked and flushed one by one, they cost more than
everything else the event writes. Identities, steps and deliveries are only ever inserted by
the engine's work, so they are kept as rows. A new profile or run is still an ORM object (the
engine reads and changes it as the batch goes on), but it stays out of the session's unit of
work until it is written: then it is inserted from its attributes as they are and joins the
session as a persistent object, so later changes are updates. Such an object is made by
`fresh`, its values put in place without the constructor's per-attribute events (nothing
listens to them before the object joins a session).

What the ORM holds (profiles and runs read) is flushed first, then the new rows are written.
A rollback forgets the unwritten rows recorded within what it rolls back; what was written
goes with the transaction or savepoint. Inside a savepoint (a careful drain) runs and deliveries go through the ORM as
before: a savepoint rolled back must take its new objects with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import Table
from sqlalchemy.orm import (
    ORMExecuteState,
    Session,
    SessionTransaction,
    configure_mappers,
    make_transient_to_detached,
)

from engine import bulk, tracing, transaction
from engine.execution import batch
from engine.models import Customer, Delivery, Identity, Run, Step

_CUSTOMERS = cast(Table, Customer.__table__)
_IDENTITIES = cast(Table, Identity.__table__)
_RUNS = cast(Table, Run.__table__)
_DELIVERIES = cast(Table, Delivery.__table__)
_STEPS = cast(Table, Step.__table__)

New = TypeVar("New", Customer, Run)


def _within(session: Session) -> SessionTransaction | None:
    return session.get_nested_transaction() or session.get_transaction()


def add_step(
    session: Session,
    run: Run,
    node_id: str,
    node_type: str,
    outcome: str,
    detail: dict[str, Any],
    at: datetime,
) -> None:
    """Record a step of `run` (whose id may not be known until the session flushes)."""
    state = transaction.of(session)
    parent = state.trace
    if parent is not None and tracing.enabled():
        tracing.record(
            f"step {node_type}",
            parent,
            {"throughline.node": node_id, "throughline.outcome": outcome},
        )
    row = {
        "node_id": node_id,
        "node_type": node_type,
        "outcome": outcome,
        "detail": detail,
        "at": at,
        "trace_id": tracing.trace_id(parent),
    }
    step_id = batch.next_id(session, "steps")
    if step_id is not None:
        row["id"] = step_id
    state.steps.append((run, row, _within(session)))


@contextmanager
def in_trace(
    session: Session, name: str, parent: str | None, attributes: dict[str, Any]
) -> Iterator[None]:
    """The runs, steps and deliveries made in the block belong to trace `parent` (under a
    span `name` when spans are recorded)."""
    state = transaction.of(session)
    before = state.trace
    with tracing.span(name, parent, attributes=attributes) as span:
        state.trace = tracing.traceparent_of(span) if span else parent
        try:
            yield
        finally:
            state.trace = before


def in_trace_of(session: Session, run: Run, name: str) -> AbstractContextManager[None]:
    """What `run` does in the block belongs to the trace it started in: the steps after a
    wait ends, a delivery answers or a move, and the deliveries they ask for."""
    return in_trace(session, name, run.traceparent, {"throughline.run_id": run.id or 0})


def _in_bulk(session: Session) -> bool:
    """Whether new rows may wait for a bulk write: not inside a savepoint (whose rollback
    must take its new objects with it), and only within a transaction."""
    return session.in_transaction() and not session.in_nested_transaction()


def add_customer(session: Session, customer: Customer) -> bool:
    """Have a new profile (its id known) written in bulk; False: add it to the session."""
    if customer.id is None or not _in_bulk(session):
        return False
    transaction.of(session).customers.append((customer, _within(session)))
    return True


def add_identity(session: Session, identity: dict[str, Any], bulk_ok: bool) -> None:
    """Have an identity written (every column of its row given, its profile's id known):
    in bulk when `bulk_ok` and no savepoint is open, else through the session."""
    if not bulk_ok or identity["id"] is None or not _in_bulk(session):
        session.add(Identity(**{k: v for k, v in identity.items() if v is not None}))
        return
    transaction.of(session).identities.append((identity, _within(session)))


def add_run(session: Session, run: Run) -> None:
    """Have a new run written: in bulk when its keys are known and no savepoint is open,
    else through the session."""
    if run.id is None or run.customer_id is None or not _in_bulk(session):
        session.add(run)
        return
    transaction.of(session).runs.append((run, _within(session)))


def add_delivery(session: Session, delivery: dict[str, Any]) -> None:
    """Have a delivery written (every column of its row given): in bulk unless a savepoint
    is open."""
    if not _in_bulk(session):
        session.add(Delivery(**delivery))
        return
    transaction.of(session).deliveries.append((delivery, _within(session)))


def unwritten_deliveries(session: Session) -> list[dict[str, Any]]:
    """The rows of the deliveries recorded and not yet written (to lease them before)."""
    state = transaction.peek(session)
    return [row for row, _tx in state.deliveries] if state else []


def fresh(model: type[New], **values: Any) -> New:
    """A new (transient) `model` holding `values`, as its constructor would make it."""
    manager = model._sa_class_manager  # type: ignore[attr-defined]
    if not manager.mapper.configured:
        configure_mappers()
    item = cast(New, manager.new_instance())
    item.__dict__.update(values)
    return item


def _python_default(column: Any) -> Callable[[], Any] | None:
    default = column.default
    if default is None:
        return None
    if default.is_callable:
        return lambda: default.arg(None)
    if default.is_scalar:
        return lambda: default.arg
    return None


_columns: dict[Table, list[tuple[str, Callable[[], Any] | None]]] = {}


def _row_of(table: Table, item: Customer | Run) -> dict[str, Any]:
    """A new object's row: its attributes, and the model's default where one was never set
    (as the session's insert would fill it). The object then holds the row's every value,
    so none is read back once it is persistent."""
    columns = _columns.get(table)
    if columns is None:
        columns = _columns[table] = [
            (column.key, _python_default(column)) for column in table.columns
        ]
    values = item.__dict__
    row = {}
    for key, default in columns:
        value = values.get(key)
        if value is None and default is not None:
            value = default()
        row[key] = value
    values.update(row)
    return row


def _persistent(session: Session, items: list[Any]) -> None:
    """New objects just written from their attributes join the session as persistent."""
    for item in items:
        make_transient_to_detached(item)
        session.add(item)  # a later change is an update


def _pending(state: transaction.TransactionState) -> bool:
    return bool(
        state.customers
        or state.identities
        or state.runs
        or state.deliveries
        or state.steps
    )


def write(session: Session, also: Sequence[bulk.Write] = ()) -> int:
    """Write the rows recorded so far, and `also` these, in one statement on PostgreSQL;
    returns how many rows were recorded."""
    state = transaction.peek(session)
    if (state is None or not _pending(state)) and not any(w.rows for w in also):
        return 0
    state = transaction.of(session)
    customers = [c for c, _tx in state.customers]
    identities = [row for row, _tx in state.identities]
    runs = [run for run, _tx in state.runs]
    deliveries = [row for row, _tx in state.deliveries]
    pending = state.steps
    state.customers, state.identities, state.runs = [], [], []
    state.deliveries, state.steps = [], []
    session.flush()  # what the new rows name is written first (and gets its ids)
    with_id = [{**row, "run_id": run.id} for run, row, _tx in pending if "id" in row]
    without_id = [
        {**row, "run_id": run.id} for run, row, _tx in pending if "id" not in row
    ]
    bulk.write_all(
        session.connection(),
        [
            bulk.Write(_CUSTOMERS, [_row_of(_CUSTOMERS, c) for c in customers]),
            bulk.Write(_IDENTITIES, identities),
            bulk.Write(_RUNS, [_row_of(_RUNS, run) for run in runs]),
            bulk.Write(_DELIVERIES, deliveries),
            bulk.Write(_STEPS, with_id),
            bulk.Write(_STEPS, without_id),
            *also,
        ],
    )
    _persistent(session, customers)
    _persistent(session, runs)
    return len(customers) + len(identities) + len(runs) + len(deliveries) + len(pending)


def _inside(transaction: SessionTransaction | None, ended: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ended:
            return True
        transaction = transaction.parent
    return False


def discard(session: Session, ended: SessionTransaction | None = None) -> None:
    """Forget the unwritten rows recorded within `ended` (a savepoint), or all of them."""
    state = transaction.peek(session)
    if state is None:
        return
    if ended is None or ended.parent is None:
        state.customers, state.identities = [], []
        state.steps, state.runs, state.deliveries = [], [], []
        return
    state.customers = [p for p in state.customers if not _inside(p[1], ended)]
    state.identities = [p for p in state.identities if not _inside(p[1], ended)]
    state.steps = [p for p in state.steps if not _inside(p[2], ended)]
    state.runs = [p for p in state.runs if not _inside(p[1], ended)]
    state.deliveries = [p for p in state.deliveries if not _inside(p[1], ended)]


def write_before_query(execute: ORMExecuteState) -> None:
    """Write the rows recorded so far before an ORM query, so it sees them."""
    # As autoflush shows new objects (and, as with autoflush, not inside `no_autoflush`,
    # where the engine draws ids mid-construction).
    state = transaction.peek(execute.session)
    if execute.session.autoflush and state is not None and _pending(state):
        write(execute.session)
