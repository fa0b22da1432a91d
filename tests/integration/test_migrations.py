from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, make_url, select, text

from engine import migrate
from engine.analytics import stats
from engine.analytics.counters import Metric
from engine.db import Database, create_db_engine
from engine.execution import writes
from engine.journeys import starters
from engine.migrate import current_revision, heads
from engine.models import (
    Base,
    Counter,
    Customer,
    Journey,
    JourneyVersion,
    Run,
    RunStatus,
    Step,
    utcnow,
)
from tests.conftest import TEST_DATABASE_URL, _postgres_database


def test_there_is_one_migration_head():
    assert len(heads()) == 1


def test_upgrade_head_on_an_empty_database_matches_the_models(database_url):
    """The fixture built this database with `alembic upgrade head` (SQLite or PostgreSQL)."""
    engine = create_db_engine(database_url)
    with engine.connect() as connection:
        assert current_revision(connection) == heads()[0]
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert differences == []


@pytest.fixture
def old_database(tmp_path, worker_id):
    """An empty database of its own, for a migration to meet rows written before it."""
    if not TEST_DATABASE_URL:
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    url = _postgres_database(f"{worker_id}_old")
    yield url
    admin = create_db_engine(TEST_DATABASE_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        name = make_url(url).database
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_runs_counted_per_node_are_filled_in_from_the_steps_before_them(old_database):
    migrate.upgrade(old_database, "0008")
    database = Database(old_database)
    at = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    paths = {
        RunStatus.completed: [
            ("start", "out"),
            ("wait", "waiting"),
            ("wait", "timeout"),
            ("vip", "true"),
            ("call", "out"),
            ("end", "completed"),
        ],
        RunStatus.waiting: [("start", "out"), ("wait", "waiting")],
    }
    with database.session() as session:
        document = starters.document("cart_recovery")
        journey = Journey(name="Cart", draft=document)
        session.add(journey)
        session.flush()
        version = JourneyVersion(journey_id=journey.id, number=1, document=document)
        session.add(version)
        session.flush()
        runs = {}
        for status, path in paths.items():
            customer = Customer(traits={})
            session.add(customer)
            session.flush()
            # Core inserts name only the columns given: the schema of 0008 lacks some of
            # the models' later ones.
            run_id = session.execute(
                insert(Run.__table__)
                .values(
                    journey_id=journey.id,
                    version_id=version.id,
                    customer_id=customer.id,
                    status=status,
                    current_node=path[-1][0],
                    state={"channels": ["web"]},
                    started_at=at,
                )
                .returning(Run.__table__.c.id)
            ).scalar_one()
            session.execute(
                insert(Step.__table__),
                [
                    {
                        "run_id": run_id,
                        "node_id": node,
                        "node_type": "x",
                        "outcome": outcome,
                        "at": at,
                    }
                    for node, outcome in path
                ],
            )
            runs[status] = run_id
        session.commit()
        journey_id = journey.id
    database.dispose()

    migrate.upgrade(old_database)
    database = Database(old_database)
    once = {"entered": 1, "waiting": 0, "completed": 1, "failed": 0}
    with database.session() as session:
        nodes = stats.journey_stats(session, journey_id)["nodes"]
        assert nodes == {
            "start": {**once, "entered": 2, "completed": 2},
            "wait": {**once, "entered": 2, "waiting": 1},
            "vip": once,
            "call": once,
            "end": once,
        }
        buckets = session.scalars(
            select(Counter.bucket).where(Counter.metric == Metric.VISITED).distinct()
        ).all()
        assert buckets == [datetime(2026, 12, 1, 9, tzinfo=UTC)]
        waiting = session.get(Run, runs[RunStatus.waiting])
        counted = {k: sorted(v) for k, v in waiting.state["counted"].items()}
        assert counted == {
            "entered": ["start", "wait"],
            "completed": ["start"],
            "failed": [],
        }
        assert waiting.state["channels"] == ["web"]
        assert "counted" not in session.get(Run, runs[RunStatus.completed]).state
        # The waiting run goes on: counted as gone on from the wait, not as entering it again.
        writes.add_step(
            session, waiting, "wait", "wait_for_event", "timeout", {}, utcnow(), False
        )
        session.commit()
        nodes = stats.journey_stats(session, journey_id)["nodes"]
        assert nodes["wait"] == {**once, "entered": 2, "completed": 2, "waiting": 1}
    database.dispose()
