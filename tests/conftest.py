"""Fixtures: real SQL (SQLite, or PostgreSQL from TEST_DATABASE_URL) and real Redis (the
embedded redis-server, or TEST_REDIS_URL), a clean database and Redis db for each test."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import make_url, text
from sqlalchemy.orm import Session

from engine.db import Database, create_db_engine
from engine.embedded_redis import EmbeddedRedis
from engine.migrate import upgrade
from engine.models import Base
from engine.queues import connect
from engine.settings import Settings, load_settings
from webapp import create_app

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "")
# The suite's recording channels listen on 127.0.0.1; a deployment refuses loopback unless
# it lists it. Tests of that refusal set the variable to "".
LOCAL_CHANNELS = {"THROUGHLINE_OUTBOUND_ALLOWED_NETWORKS": "127.0.0.1/32"}


def _worker_number(worker_id: str) -> int:
    return int(worker_id[2:]) if worker_id.startswith("gw") else 0


@pytest.fixture(scope="session")
def redis_url(
    tmp_path_factory: pytest.TempPathFactory, worker_id: str
) -> Iterator[str]:
    """A Redis database of this test process's own (db 1-15 on a shared server)."""
    if TEST_REDIS_URL:
        parts = urlsplit(TEST_REDIS_URL)
        number = 1 + _worker_number(worker_id) % 15
        yield f"{parts.scheme}://{parts.netloc}/{number}"
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server.url
    server.stop()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[Redis]:
    client = connect(redis_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def _postgres_database(worker_id: str) -> str:
    """Create (again) this test process's own PostgreSQL database; return its URL."""
    base = make_url(TEST_DATABASE_URL).set(drivername="postgresql+psycopg")
    name = f"throughline_test_{worker_id}"
    admin = create_db_engine(
        base.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> str:
    """A database migrated to head once per test process: a URL (PostgreSQL) or a file."""
    if TEST_DATABASE_URL:
        url = _postgres_database(worker_id)
        upgrade(url)
        return url
    template = tmp_path_factory.mktemp("sql") / "template.db"
    upgrade(f"sqlite:///{template}")
    return str(template)


def truncate_all(url: str) -> None:
    engine = create_db_engine(url)
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def database_url(migrated_database: str, tmp_path: Path) -> Iterator[str]:
    """A clean migrated database: a copy of the template file, or PostgreSQL truncated after."""
    if TEST_DATABASE_URL:
        yield migrated_database
        truncate_all(migrated_database)
        return
    copy = tmp_path / "test.db"
    shutil.copyfile(migrated_database, copy)
    yield f"sqlite:///{copy}"


def make_settings(
    home: Path, database_url: str, redis_url: str, **extra: str
) -> Settings:
    env = {
        "THROUGHLINE_HOME": str(home),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        **LOCAL_CHANNELS,
        # A drain settles what it sent before its job ends, however loaded the machine
        # (test_drain_sends covers settling in the background).
        "THROUGHLINE_DRAIN_SENDS_WAIT_MS": "60000",
    }
    env.update(extra)
    return load_settings(env)


@pytest.fixture
def settings(tmp_path: Path, database_url: str, redis_url: str) -> Settings:
    return make_settings(tmp_path / "home", database_url, redis_url)


@pytest.fixture
def database(settings: Settings) -> Iterator[Database]:
    db = Database(settings.database_url)
    yield db
    db.dispose()


@pytest.fixture
def session(database: Database) -> Iterator[Session]:
    with database.sessionmaker() as s:
        yield s


@pytest.fixture
def app(settings: Settings, redis_client: Redis) -> Iterator[Flask]:
    application = create_app(settings, TESTING=True)
    yield application
    application.extensions["throughline"].close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def engine_runtime(settings: Settings, redis_client: Redis) -> Iterator[object]:
    """The worker-side runtime for jobs run in this process, against the test services."""
    from engine import runtime

    rt = runtime.Runtime.from_settings(settings)
    runtime.install(rt)
    yield rt
    rt.close()
    runtime.install(None)  # type: ignore[arg-type]


def work_all(redis_client: Redis, rounds: int = 20) -> int:
    """Run every queued job in this process (RQ SimpleWorker, burst) until none are left."""
    from rq import SimpleWorker
    from rq.serializers import JSONSerializer

    from engine.queues import all_queues

    done = 0
    for _ in range(rounds):
        queues = all_queues(redis_client)
        if not any(q.count for q in queues):
            return done
        worker = SimpleWorker(
            queues, connection=redis_client, serializer=JSONSerializer
        )
        worker.work(burst=True, with_scheduler=False, logging_level="WARNING")
        done += 1
    return done


@pytest.fixture(autouse=True)
def _fresh_document_cache() -> None:
    """Version ids restart with every test database, and the policies, event schemas and
    channels are empty in each: the per-process caches must not carry over."""
    from engine.decisions import store as decision_store
    from engine.execution import documents
    from engine.policies import store
    from engine.schemas import store as schema_store
    from webapp.hooks import channels as intake_channels

    documents.forget_documents()
    store.forget()
    decision_store.forget()
    schema_store.forget()
    intake_channels.forget()


@pytest.fixture
def app_factory() -> Iterator[Any]:
    """create_app for tests that need their own settings; its pools are closed afterwards."""
    made: list[Flask] = []

    def build(settings: Settings) -> Flask:
        application = create_app(settings, TESTING=True)
        made.append(application)
        return application

    yield build
    for application in made:
        application.extensions["throughline"].close()
