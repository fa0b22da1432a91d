"""Events, steps and deliveries kept by period: partitions made ahead, old periods dropped
(whole partitions on PostgreSQL, batched deletes on SQLite), unfinished work and every
figure kept."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select, text, update

from engine import partitions
from engine.analytics import overview, stats
from engine.intake import store
from engine.intake.contract import parse_event
from engine.models import (
    AuditEntry,
    Channel,
    Counter,
    Customer,
    Delivery,
    DeliveryStatus,
    Event,
    EventKey,
    EventStatus,
    Journey,
    Run,
    Step,
    utcnow,
)
from engine.partitions import Retention
from tests.channels import post_event
from tests.conftest import TEST_DATABASE_URL, work_all
from tests.integration.test_counters import play_cart_recovery
from tests.world import WELCOME

postgres_only = pytest.mark.skipif(
    not TEST_DATABASE_URL, reason="partitions are PostgreSQL's"
)

KEEP = {"events": 7, "steps": 7, "deliveries": 91}


def maintain(database, now, period="month", **days):
    retention = Retention(
        period, {table: timedelta(days=n) for table, n in (days or KEEP).items()}
    )
    return partitions.maintain(database, now, retention)


def names(database, table):
    with database.engine.connect() as connection, connection.begin():
        return [p.name for p in partitions.parts(connection, table)]


def count(session, model):
    """Rows of `model` now, read in a transaction of their own: one left open would hold
    the locks maintenance waits for."""
    session.rollback()
    found = session.scalar(select(func.count()).select_from(model))
    session.rollback()
    return found


@pytest.fixture(autouse=True)
def standard_partitions(database):
    """Partitions as the migration leaves them, before and after each test here: the tests
    make and drop periods far from now, and the database outlives them."""

    def reset():
        with database.engine.connect() as connection, connection.begin():
            for g in partitions.GROWN:
                for part in partitions.parts(connection, g.table):
                    connection.exec_driver_sql(f'DROP TABLE "{part.name}"')
                partitions.create_ahead(connection, g.table, utcnow(), "month")

    if TEST_DATABASE_URL:
        reset()
    yield
    if TEST_DATABASE_URL:
        reset()


def figures(session, journey):
    session.rollback()
    line = overview.overview(session, [journey]).lines[0]
    found = {
        "stats": stats.journey_stats(session, journey.id),
        "overview": (line.entered, line.converted, line.delivered, line.settled),
        "counted": session.scalar(select(func.sum(Counter.value))),
    }
    return {
        **found,
        "customers": count(session, Customer),
        "runs": count(session, Run),
        "audit": count(session, AuditEntry),
    }


def store_one(database, channel_id, webhook_id, now=None):
    parsed = parse_event({"type": "cart_abandoned", "customer": {"id": "p-1"}})
    with database.engine.connect() as connection, connection.begin():
        (stored,) = store.store_events(
            connection,
            channel_id,
            [store.ToStore(webhook_id, {"type": "cart_abandoned"}, parsed)],
            4,
            now or utcnow(),
        )
    return stored


def test_old_periods_go_and_every_figure_profile_and_audit_entry_stays(world, database):
    journey = play_cart_recovery(world)
    session = world.session
    before = figures(session, journey)
    assert count(session, Event) and count(session, Step) and count(session, Delivery)
    assert count(session, EventKey) == count(session, Event)

    later = utcnow() + timedelta(days=400)
    assert maintain(database, later) > 0

    assert count(session, Event) == count(session, Step) == 0
    assert count(session, Delivery) == count(session, EventKey) == 0
    assert figures(session, session.get(Journey, journey.id)) == before
    if TEST_DATABASE_URL:
        this_month = partitions.partition_name(
            "events", partitions.period_start(utcnow(), "month")
        )
        assert this_month not in names(database, "events")
        # made ahead of the later time: its period and three after it
        start = partitions.period_start(later, "month")
        assert partitions.partition_name("events", start) in names(database, "events")
    # the run still waiting goes on: what it writes now is kept
    world.later(timedelta(days=2))
    assert count(session, Step) > 0


def test_a_period_holding_unfinished_work_is_kept_until_the_work_is_done(
    world, database
):
    channel_id = world_channel(world)
    pending = store_one(database, channel_id, "still-pending")
    done = store_one(database, channel_id, "applied")
    world.session.execute(
        update(Event)
        .where(Event.id == done.event_id)
        .values(status=EventStatus.processed)
    )
    world.session.commit()

    later = utcnow() + timedelta(days=60)
    maintain(database, later, events=7)

    session = world.session
    kept = session.scalars(select(Event.id).order_by(Event.id)).all()
    keys = session.scalars(
        select(EventKey.webhook_id).order_by(EventKey.event_id)
    ).all()
    session.rollback()
    if TEST_DATABASE_URL:
        # a partition goes whole or not at all: the pending event keeps its period
        assert kept == [pending.event_id, done.event_id]
        assert keys == ["still-pending", "applied"]
        assert partitions.partition_name(
            "events", partitions.period_start(utcnow(), "month")
        ) in names(database, "events")
    else:
        assert kept == [pending.event_id]
        assert keys == ["still-pending"]
    # the kept event keeps its key: a retry of it is still a repeat
    assert store_one(database, channel_id, "still-pending").duplicate

    session.rollback()
    session.execute(update(Event).values(status=EventStatus.processed))
    session.commit()
    maintain(database, later, events=7)
    assert count(session, Event) == count(session, EventKey) == 0


def world_channel(world):
    found = world.session.scalar(select(Channel.id).where(Channel.slug == "web"))
    world.session.rollback()
    return found


def test_a_delivery_not_yet_settled_keeps_its_period(world, database):
    world.publish(WELCOME)
    world.recorders["email"].answers = [503]  # the channel is down: the delivery waits
    post_event(world.client, "web", world.secrets["web"], _signed_up("d-1"))
    work_all(world.redis)
    session = world.session
    session.rollback()
    (waiting,) = session.execute(select(Delivery.id, Delivery.status)).all()
    session.rollback()
    assert waiting.status == DeliveryStatus.pending

    maintain(database, utcnow() + timedelta(days=200), deliveries=91)
    assert session.scalars(select(Delivery.id)).all() == [waiting.id]
    session.rollback()

    session.execute(update(Delivery).values(status=DeliveryStatus.failed))
    session.commit()
    maintain(database, utcnow() + timedelta(days=200), deliveries=91)
    assert count(session, Delivery) == 0


def _signed_up(customer_id):
    return {"type": "signed_up", "customer": {"id": customer_id}}


@postgres_only
def test_partitions_are_made_ahead_once_and_rows_without_one_are_moved_in(
    world, database
):
    channel_id = world_channel(world)
    now = utcnow()
    horizon = partitions.period_start(now, "month")
    for _ in range(partitions.AHEAD + 1):
        horizon = partitions.period_after(horizon, "month")
    # an event past every partition made goes to the default partition
    far = horizon + timedelta(days=40)
    stored = store_one(database, channel_id, "far-ahead", now=far)
    with database.engine.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM events_default")) == 1

    made = maintain(database, now, events=7)
    assert made >= 1  # the far period's partitions
    with database.engine.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM events_default")) == 0
        far_part = partitions.partition_name(
            "events", partitions.period_start(far, "month")
        )
        found = connection.scalar(text(f"SELECT id FROM {far_part}"))
    assert found == stored.event_id
    assert maintain(database, now) == 0  # nothing more to make

    # a shorter period fills only what no partition covers yet
    maintain(database, horizon, period="day")
    parts = [
        p for p in _parts(database, "steps") if not p.default and p.lower >= horizon
    ]
    assert parts[0].lower == horizon
    assert parts[0].upper == horizon + timedelta(days=1)
    covered = sorted(
        (p.lower, p.upper) for p in _parts(database, "steps") if not p.default
    )
    assert all(a[1] <= b[0] for a, b in zip(covered, covered[1:], strict=False))


def _parts(database, table):
    with database.engine.connect() as connection, connection.begin():
        return partitions.parts(connection, table)


@postgres_only
def test_the_tables_are_partitioned_by_the_time_of_each_row(database):
    with database.engine.connect() as connection:
        for g in partitions.GROWN:
            assert partitions.is_partitioned(connection, g.table)
            key = connection.scalar(
                text("SELECT pg_get_partkeydef(CAST(:t AS regclass))"), {"t": g.table}
            )
            assert key == f"RANGE ({g.column})"
        # no foreign key points into them
        assert not connection.scalar(
            text(
                "SELECT count(*) FROM pg_constraint WHERE contype = 'f'"
                " AND confrelid::regclass::text IN ('events', 'steps', 'deliveries')"
            )
        )


def test_maintenance_leaves_tables_without_a_retention_alone(world, database):
    play_cart_recovery(world)
    session = world.session
    kept = (count(session, Event), count(session, Step), count(session, Delivery))
    maintain(database, utcnow() + timedelta(days=4000), events=7)
    assert count(session, Event) == 0
    assert (count(session, Step), count(session, Delivery)) == kept[1:]


SPLIT_THEN_WAIT = {
    "schema": "throughline.journey/v1",
    "name": "Split and wait",
    "entry": {"reentry": "never", "max_entries": None},
    "goal": {"event": "order_completed", "within": "P7D"},
    "nodes": [
        {"id": "start", "type": "trigger", "config": {"event": "signed_up"}},
        {
            "id": "test",
            "type": "split",
            "config": {
                "branches": [{"port": "a", "percent": 50}, {"port": "b", "percent": 50}]
            },
        },
        {
            "id": "hold",
            "type": "wait_for_event",
            "config": {"event": "never_sent", "timeout": "P30D"},
        },
        {"id": "end", "type": "exit", "config": {}},
    ],
    "edges": [
        {"from": "start", "to": "test"},
        {"from": "test", "port": "a", "to": "hold"},
        {"from": "test", "port": "b", "to": "hold"},
        {"from": "hold", "port": "event", "to": "end"},
        {"from": "hold", "port": "timeout", "to": "end"},
    ],
    "layout": {},
}


def test_a_run_converting_after_its_steps_are_dropped_counts_its_branch(
    world, database
):
    journey = world.publish(SPLIT_THEN_WAIT)
    world.post(_signed_up("s-1"))
    session = world.session
    (port,) = session.scalars(select(Step.outcome).where(Step.node_id == "test")).all()
    session.rollback()

    maintain(database, utcnow() + timedelta(days=60), steps=7)
    assert count(session, Step) == 0

    world.post({"type": "order_completed", "customer": {"id": "s-1"}})
    converted = session.execute(
        select(Counter.node_id, Counter.label, func.sum(Counter.value))
        .where(Counter.journey_id == journey.id, Counter.metric == "branch_converted")
        .group_by(Counter.node_id, Counter.label)
    ).all()
    session.rollback()
    assert converted == [("test", port, 1)]


def test_webhook_ids_of_dropped_periods_go_batch_after_batch(
    world, database, monkeypatch
):
    monkeypatch.setattr(partitions, "DELETE_BATCH", 3)
    channel_id = world_channel(world)
    stored = [store_one(database, channel_id, f"k-{n}") for n in range(10)]
    world.session.execute(update(Event).values(status=EventStatus.processed))
    world.session.commit()
    kept = store_one(
        database, channel_id, "k-pending", now=utcnow() + timedelta(days=50)
    )

    changed = maintain(database, utcnow() + timedelta(days=60), events=7)

    assert changed >= 10
    assert world.session.scalars(select(EventKey.event_id)).all() == [kept.event_id]
    world.session.rollback()
    assert kept.event_id not in [s.event_id for s in stored]


@postgres_only
def test_maintenance_gives_up_a_lock_it_cannot_have_and_goes_on_with_the_rest(
    world, database
):
    later = utcnow() + timedelta(days=200)
    with database.engine.connect() as reader:
        # a reader of events (every partition of it) in a transaction left open
        reader.execute(select(func.count()).select_from(Event))
        maintain(database, later, events=7, steps=7)
        events_now = names(database, "events")
        steps_now = names(database, "steps")
        reader.rollback()
    start = partitions.period_start(later, "month")
    assert partitions.partition_name("steps", start) in steps_now
    assert partitions.partition_name("events", start) not in events_now
    maintain(database, later, events=7, steps=7)
    assert partitions.partition_name("events", start) in names(database, "events")
