"""Step records, written in bulk: plain rows gathered during a transaction, not ORM objects.

A drain writes four or more steps per event; as ORM objects they cost more to build and flush
than everything else the event writes. Steps are only ever inserted by the engine, so they are
kept as rows on the session and inserted with one statement (engine.bulk) before the session
queries and before it commits. A rollback forgets the unwritten steps recorded
within what it rolls back; what was written goes with the transaction or savepoint.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction

from engine import bulk, transaction
from engine.execution import batch
from engine.models import Run, Step

_TABLE = cast(Table, Step.__table__)


def add(
    session: Session,
    run: Run,
    node_id: str,
    node_type: str,
    outcome: str,
    detail: dict[str, Any],
    at: datetime,
) -> None:
    """Record a step of `run` (whose id may not be known until the session flushes)."""
    row = {
        "node_id": node_id,
        "node_type": node_type,
        "outcome": outcome,
        "detail": detail,
        "at": at,
    }
    step_id = batch.next_id(session, "steps")
    if step_id is not None:
        row["id"] = step_id
    within = session.get_nested_transaction() or session.get_transaction()
    transaction.of(session).steps.append((run, row, within))


def write(session: Session) -> int:
    """Insert the steps recorded so far; returns how many."""
    state = transaction.peek(session)
    if state is None or not state.steps:
        return 0
    pending, state.steps = state.steps, []
    session.flush()  # the runs they name are written first (and get their ids)
    with_id = [{**row, "run_id": run.id} for run, row, _tx in pending if "id" in row]
    without_id = [
        {**row, "run_id": run.id} for run, row, _tx in pending if "id" not in row
    ]
    connection = session.connection()
    for rows in (with_id, without_id):
        bulk.insert_rows(connection, _TABLE, rows)
    return len(pending)


def _within(transaction: SessionTransaction | None, ended: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ended:
            return True
        transaction = transaction.parent
    return False


def discard(session: Session, ended: SessionTransaction | None = None) -> None:
    """Forget the unwritten steps recorded within `ended` (a savepoint), or all of them."""
    state = transaction.peek(session)
    if state is None or not state.steps:
        return
    if ended is None or ended.parent is None:
        state.steps = []
    else:
        state.steps = [p for p in state.steps if not _within(p[2], ended)]


def write_before_query(execute: ORMExecuteState) -> None:
    """Insert the steps recorded so far before an ORM query, so it sees them."""
    # As autoflush shows new objects (and, as with autoflush, not inside `no_autoflush`,
    # where the engine draws ids mid-construction).
    state = transaction.peek(execute.session)
    if execute.session.autoflush and state is not None and state.steps:
        write(execute.session)
