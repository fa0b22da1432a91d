from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import delete, func, insert, inspect, make_url, select, text, update

from engine import migrate, partitions
from engine.analytics import stats
from engine.analytics.counters import Metric
from engine.db import Database, create_db_engine
from engine.execution import writes
from engine.intake import store
from engine.intake.contract import parse_event
from engine.journeys import starters
from engine.migrate import current_revision, heads
from engine.models import (
    Base,
    Channel,
    Counter,
    Customer,
    Delivery,
    Event,
    EventKey,
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
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "include_name": lambda name, kind, _parents: (
                    not (kind == "table" and partitions.is_partition(name))
                ),
            },
        )
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


def _inserted(session, model, **values):
    """Insert one row through Core, which names only the columns given (an older schema
    lacks some of the models' later ones); its id."""
    table = model.__table__
    return session.execute(
        insert(table).values(**values).returning(table.c.id)
    ).scalar_one()


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
            run_id = _inserted(
                session,
                Run,
                journey_id=journey.id,
                version_id=version.id,
                customer_id=customer.id,
                status=status,
                current_node=path[-1][0],
                state={"channels": ["web"]},
                started_at=at,
            )
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


def _seeded(session, at):
    """A channel (its id), a profile, a journey and its first version, written at `at`."""
    channel_id = _inserted(
        session,
        Channel,
        slug="web",
        name="Web",
        kind="web",
        inbound_secret="x",
        outbound_secret="y",
        enabled=True,
        rate_limit=100,
        created_at=at,
        updated_at=at,
    )
    customer = Customer(traits={})
    journey = Journey(name="Cart", draft=starters.document("cart_recovery"))
    session.add_all([customer, journey])
    session.flush()
    version = JourneyVersion(journey_id=journey.id, number=1, document=journey.draft)
    session.add(version)
    session.flush()
    return channel_id, customer, journey, version


def test_rows_written_before_partitioning_keep_their_ids_keys_and_periods(old_database):
    migrate.upgrade(old_database, "0015")
    database = Database(old_database)
    october = datetime(2026, 10, 15, 8, tzinfo=UTC)
    now = utcnow()
    with database.session() as session:
        channel_id, customer, journey, version = _seeded(session, october)
        events = [
            _inserted(
                session,
                Event,
                channel_id=channel_id,
                webhook_id=f"msg_{n}",
                type="cart_abandoned",
                partition=0,
                payload={},
                status="processed",
                attempts=1,
                occurred_at=at,
                received_at=at,
            )
            for n, at in enumerate((october, now))
        ]
        run_id = _inserted(
            session,
            Run,
            journey_id=journey.id,
            version_id=version.id,
            customer_id=customer.id,
            status="completed",
            state={},
            context={},
            trigger_event_id=events[0],
            started_at=october,
            updated_at=october,
        )
        waiting_id = _inserted(
            session,
            Run,
            journey_id=journey.id,
            version_id=version.id,
            customer_id=customer.id,
            status="waiting",
            state={"channels": ["web"]},
            context={},
            started_at=now,
            updated_at=now,
        )
        session.execute(
            insert(Step.__table__),
            [
                {
                    "run_id": run,
                    "node_id": node,
                    "node_type": kind,
                    "outcome": "a",
                    "at": at,
                }
                for run, node, kind, at in (
                    (run_id, "start", "trigger", october),
                    (run_id, "test", "split", october),
                    (waiting_id, "test", "split", october),
                    (waiting_id, "test", "split", now),
                )
            ],
        )
        for delivery_id, fallback_of in (
            ("dlv_first", None),
            ("dlv_second", "dlv_first"),
        ):
            session.execute(
                insert(Delivery.__table__).values(
                    id=delivery_id,
                    run_id=run_id,
                    customer_id=customer.id,
                    channel_id=channel_id,
                    fallback_of_id=fallback_of,
                    kind="send",
                    holds_run=False,
                    transactional=False,
                    payload={},
                    status="delivered",
                    attempts=1,
                    created_at=october,
                )
            )
        session.commit()
    database.dispose()

    migrate.upgrade(old_database)
    database = Database(old_database)
    with database.session() as session:
        assert session.scalars(select(Event.id).order_by(Event.id)).all() == events
        assert session.scalar(select(Run.trigger_event_id)) == events[0]
        assert session.get(Delivery, "dlv_second").fallback_of_id == "dlv_first"
        assert session.scalar(select(func.count()).select_from(Step)) == 4
        # a run still going keeps the branches it took; one that ended needs none
        assert session.get(Run, waiting_id).state == {
            "channels": ["web"],
            "branches": [["test", "a"]],
        }
        assert "branches" not in session.get(Run, run_id).state
        assert session.execute(
            select(EventKey.webhook_id, EventKey.event_id).order_by(EventKey.event_id)
        ).all() == [("msg_0", events[0]), ("msg_1", events[1])]
        if TEST_DATABASE_URL:
            older = session.scalar(text("SELECT id FROM events_p20261001"))
            assert older == events[0]
            assert session.scalar(text("SELECT count(*) FROM steps_p20261001")) == 3
        session.rollback()
    parsed = parse_event({"type": "cart_abandoned", "customer": {"id": "c-1"}})
    with database.engine.connect() as connection, connection.begin():
        repeat, new = store.store_events(
            connection,
            channel_id,
            [store.ToStore(w, {}, parsed) for w in ("msg_0", "msg_new")],
            4,
            utcnow(),
        )
    assert (repeat.duplicate, repeat.event_id) == (True, events[0])
    assert not new.duplicate and new.event_id > events[1]
    database.dispose()


def _named(connection, table):
    """The tables `table`'s foreign keys name, by column."""
    return {
        key["constrained_columns"][0]: key["referred_table"]
        for key in inspect(connection).get_foreign_keys(table)
    }


def test_log_rows_lose_their_foreign_keys_but_those_to_profiles(old_database):
    migrate.upgrade(old_database, "0016")
    database = Database(old_database)
    now = utcnow()
    with database.session() as session:
        channel_id, customer, journey, version = _seeded(session, now)
        runs = [
            _inserted(
                session,
                Run,
                journey_id=journey.id,
                version_id=version.id,
                customer_id=customer.id,
                status="completed",
                state={},
                context={},
                started_at=now,
                updated_at=now,
            )
            for _ in range(2)
        ]
        session.execute(
            insert(Step.__table__),
            [
                {"run_id": run, "node_id": "start", "node_type": "trigger"}
                | {"outcome": "entered", "detail": {}, "at": now}
                for run in runs
            ],
        )
        for delivery_id, run in (("dlv_kept", runs[0]), ("dlv_of_gone_run", runs[1])):
            session.execute(
                insert(Delivery.__table__).values(
                    id=delivery_id,
                    run_id=run,
                    customer_id=customer.id,
                    journey_id=journey.id,
                    channel_id=channel_id,
                    kind="send",
                    holds_run=False,
                    transactional=False,
                    payload={},
                    status="delivered",
                    attempts=1,
                    created_at=now,
                )
            )
        session.commit()
    database.dispose()

    migrate.upgrade(old_database)
    database = Database(old_database)
    with database.engine.connect() as connection:
        assert _named(connection, "steps") == {}
        assert _named(connection, "deliveries") == {"customer_id": "customers"}
        assert _named(connection, "events") == {"customer_id": "customers"}
        assert _named(connection, "event_keys") == {}
        assert _named(connection, "runs")["customer_id"] == "customers"
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(Step)) == 2
        # a run deleted without its steps (as only an erasure deletes runs, then steps)
        session.execute(delete(Run).where(Run.id == runs[1]))
        # a delivery naming a channel that is not there
        session.execute(
            update(Delivery).where(Delivery.id == "dlv_kept").values(channel_id=9999)
        )
        session.commit()
    database.dispose()

    command.downgrade(migrate.alembic_config(old_database), "0016")
    database = Database(old_database)
    with database.engine.connect() as connection:
        assert _named(connection, "steps") == {"run_id": "runs"}
        assert _named(connection, "deliveries") == {
            "run_id": "runs",
            "customer_id": "customers",
            "journey_id": "journeys",
            "channel_id": "channels",
        }
        assert _named(connection, "event_keys") == {"channel_id": "channels"}
        assert connection.execute(select(Step.run_id)).scalars().all() == [runs[0]]
        # as the keys would have left them: cascaded, or set to NULL
        assert connection.execute(select(Delivery.id, Delivery.channel_id)).all() == [
            ("dlv_kept", None)
        ]
    database.dispose()
