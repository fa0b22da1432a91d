"""Database engine and session factory shared by web, worker and scheduler."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from engine import transaction
from engine.analytics import counters
from engine.execution import batch, rows
from engine.settings import behind_pgbouncer

BUSY_TIMEOUT_MS = 10_000
SCRUB_WAIT_MS = 2_000


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the driver, begin transactions (see _sqlite_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # Deleted rows are overwritten with zeros, so an erased customer does not linger in
    # free pages until they happen to be reused.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    """Begin a transaction; a writer's takes SQLite's write lock at once.

    A deferred transaction that reads and then writes while another process writes can fail
    with "database is locked" instead of waiting; an immediate one waits its turn (up to the
    busy timeout). Engine work (jobs, sweeps) runs in writer sessions, so it is serialised the
    way row locks serialise it on PostgreSQL; short web requests keep concurrent reads.
    """
    options = connection.get_execution_options()
    if options.get("isolation_level") == "AUTOCOMMIT":
        return  # each statement on its own (a migration's autocommit block)
    immediate = options.get("sqlite_immediate", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _create_private(url: str) -> None:
    """Create a SQLite database file readable by its owner alone, before SQLite creates it
    with the process's umask (its -wal and -shm files take the same mode)."""
    path = make_url(url).database
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError:
        pass  # it exists, or SQLite will say what is wrong when it opens it


def create_db_engine(url: str, pgbouncer: bool | None = None, **options: Any) -> Engine:
    """Create an Engine; SQLite gets a private file, WAL mode, secure delete, foreign keys,
    a busy timeout and immediate transactions.

    `pgbouncer` (by default THROUGHLINE_PGBOUNCER from the environment): PostgreSQL is reached
    through a pooler in transaction mode, where consecutive transactions of one connection
    may run on different server sessions. psycopg then prepares no statement on the server
    (it would prepare on one session and execute on another); nothing else here keeps state
    in a session beyond its transaction (advisory locks are transaction-scoped).
    """
    if url.startswith("sqlite"):
        _create_private(url)
        engine = create_engine(url, connect_args={"timeout": 10}, **options)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    options.setdefault("pool_pre_ping", True)
    if behind_pgbouncer() if pgbouncer is None else pgbouncer:
        options["connect_args"] = {
            **options.get("connect_args", {}),
            "prepare_threshold": None,
        }
    return create_engine(url, **options)


def _before_commit(session: Session) -> None:
    rows.write(session)  # first: writing the rows flushes what they name
    counters.write_before_commit(session)


def _after_rollback(session: Session, previous: SessionTransaction) -> None:
    if previous.parent is None:
        transaction.reset(session)
        return
    # A savepoint: what was recorded within it goes, and the batch read ahead may be stale.
    rows.discard(session, previous)
    counters.forget_rolled_back(session, previous)
    batch.drop(session)
    transaction.of(session).cap_counts = {}  # counted again from what remains


def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint released: its work belongs to the transaction around it
    transaction.reset(session)  # locks are released: the next transaction reads afresh


def bind_transaction_state(factory: sessionmaker[Session]) -> None:
    """Have the sessions `factory` makes keep their engine state as engine.transaction says."""
    event.listen(factory, "do_orm_execute", rows.write_before_query)
    event.listen(factory, "before_commit", _before_commit)
    event.listen(factory, "after_transaction_create", counters.mark_savepoint)
    event.listen(factory, "after_soft_rollback", _after_rollback)
    event.listen(factory, "after_commit", _after_commit)


class Database:
    """One Engine and its session factories, whose sessions keep engine state per
    transaction (engine.transaction)."""

    def __init__(self, url: str, **options: Any) -> None:
        self.url = url
        self.engine = create_db_engine(url, **options)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        self.writer_sessionmaker = sessionmaker(
            self.engine.execution_options(sqlite_immediate=True), expire_on_commit=False
        )
        for factory in (self.sessionmaker, self.writer_sessionmaker):
            bind_transaction_state(factory)

    @contextmanager
    def session(self, writer: bool = False) -> Iterator[Session]:
        """A session committed on success and rolled back on error.

        `writer` sessions of engine work take SQLite's write lock when they begin.
        """
        session = (self.writer_sessionmaker if writer else self.sessionmaker)()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def scrub_log(self) -> None:
        """On SQLite, after rows were deleted: copy the write-ahead log into the database
        and empty it. The deleted rows' pages are already zeroed (secure_delete); this
        removes the older copies of those pages that the log still holds. If readers keep
        the log busy beyond a moment it stops short: the next checkpoints finish the job.
        """
        if self.engine.dialect.name != "sqlite":
            return
        raw = self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute(f"PRAGMA busy_timeout={SCRUB_WAIT_MS}")
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cursor.close()
        finally:
            raw.close()

    def dispose(self) -> None:
        self.engine.dispose()
