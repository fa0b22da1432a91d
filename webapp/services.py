"""The app's services: settings, database (one session per request), Redis, secret box."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from flask import Flask, current_app, g, has_request_context, request
from redis import Redis
from sqlalchemy.orm import Session

from engine.crypto import SecretBox
from engine.db import Database
from engine.execution.drains import enqueue_event_drain
from engine.intake.commit import GroupCommitter
from engine.queues import connect
from engine.settings import Settings


@dataclass
class Services:
    settings: Settings
    database: Database
    redis: Redis
    box: SecretBox
    intake: GroupCommitter
    # What must be written before the database is let go (counts gathered in memory).
    on_close: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        """Write what waits, then let go of the database and Redis."""
        for finish in self.on_close:
            finish()
        self.database.dispose()
        self.redis.close()


def init_app(app: Flask, settings: Settings) -> None:
    database = Database(settings.database_url)
    redis = connect(settings.redis_url)
    app.extensions["throughline"] = Services(
        settings=settings,
        database=database,
        redis=redis,
        box=SecretBox(settings.encryption_key),
        intake=GroupCommitter(
            database,
            redis,
            settings.partitions,
            settings.backlog_limit,
            partial(enqueue_event_drain, redis),
        ),
    )
    app.teardown_appcontext(_close_session)


def services() -> Services:
    found: Services = current_app.extensions["throughline"]
    return found


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def db() -> Session:
    """The request's SQL session, opened on first use and closed at teardown.

    A request that may write (not GET, HEAD or OPTIONS) gets a writer session: on SQLite it
    takes the write lock when it begins and waits its turn, where a transaction that read
    first would fail with "database is locked" if a worker wrote in between.
    """
    if "db_session" not in g:
        database = services().database
        writes = has_request_context() and request.method not in SAFE_METHODS
        g.db_session = (
            database.writer_sessionmaker() if writes else database.sessionmaker()
        )
    session: Session = g.db_session
    return session


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()
