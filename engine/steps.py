"""Step records, written in bulk: plain rows gathered during a transaction, not ORM objects.

A drain writes four or more steps per event; as ORM objects they cost more to build and flush
than everything else the event writes. Steps are only ever inserted by the engine, so they are
kept as rows on the session and inserted with one Core statement (many parameter sets) before
the session queries and before it commits. A rollback forgets the unwritten steps recorded
within what it rolls back; what was written goes with the transaction or savepoint.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, event, insert
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction

from engine import batch
from engine.models import Run, Step

KEY = "steps_pending"
# A step's run, its row, and the transaction (or savepoint) it was recorded in.
_Pending = tuple[Run, dict[str, Any], SessionTransaction | None]
_INSERT = insert(cast(Table, Step.__table__))


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
    pending: list[_Pending] = session.info.setdefault(KEY, [])
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
    pending.append((run, row, within))


def write(session: Session) -> int:
    """Insert the steps recorded so far; returns how many."""
    pending: list[_Pending] | None = session.info.get(KEY)
    if not pending:
        return 0
    session.info[KEY] = []
    session.flush()  # the runs they name are written first (and get their ids)
    with_id = [{**row, "run_id": run.id} for run, row, _tx in pending if "id" in row]
    without_id = [
        {**row, "run_id": run.id} for run, row, _tx in pending if "id" not in row
    ]
    connection = session.connection()
    for rows in (with_id, without_id):
        if rows:
            connection.execute(_INSERT, rows[0] if len(rows) == 1 else rows)
    return len(pending)


def _within(transaction: SessionTransaction | None, ended: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ended:
            return True
        transaction = transaction.parent
    return False


def discard(session: Session, ended: SessionTransaction | None = None) -> None:
    """Forget the unwritten steps recorded within `ended` (a savepoint), or all of them."""
    pending: list[_Pending] | None = session.info.get(KEY)
    if not pending:
        return
    if ended is None or ended.parent is None:
        session.info[KEY] = []
    else:
        session.info[KEY] = [p for p in pending if not _within(p[2], ended)]


@event.listens_for(Session, "do_orm_execute")
def _before_query(state: ORMExecuteState) -> None:
    # A query sees the steps recorded so far, as autoflush shows new objects (and, as with
    # autoflush, not inside `no_autoflush`, where the engine draws ids mid-construction).
    if state.session.autoflush and state.session.info.get(KEY):
        write(state.session)


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    write(session)


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, previous: SessionTransaction) -> None:
    discard(session, previous)
