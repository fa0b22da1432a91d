"""Pre-aggregated counters agree with the records they summarise, whatever path the work took."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from engine.analytics import counters, overview, queries, reports, stats
from engine.analytics.counters import Metric
from engine.analytics.queries import Window
from engine.models import (
    Counter,
    Customer,
    Delivery,
    DeliveryStatus,
    Event,
    EventStatus,
    Run,
    RunStatus,
    Step,
    utcnow,
)
from tests.world import CART, sample


def cart(customer_id, email, tier="regular"):
    return {
        **CART,
        "customer": {"id": customer_id, "email": email},
        "traits": {"first_name": customer_id, "tier": tier},
    }


def summed(session, metric, **where):
    statement = select(func.coalesce(func.sum(Counter.value), 0)).where(
        Counter.metric == metric
    )
    for name, value in where.items():
        statement = statement.where(getattr(Counter, name) == value)
    return session.scalar(statement)


def play_cart_recovery(world):
    journey = world.publish(sample())
    world.post(cart("vip-1", "vip1@example.com", "vip"))  # times out, gets a call
    world.post(cart("reg-1", "reg1@example.com"))  # times out, gets an email
    world.post(cart("buyer", "buyer@example.com"))  # buys on another channel
    world.post(cart("quitter", "quit@example.com"))  # unsubscribes
    world.post(cart("waiter", "wait@example.com"))  # still waiting at the end
    world.post(
        {"type": "order_completed", "customer": {"email": "buyer@example.com"}},
        slug="email",
    )
    world.post({"type": "unsubscribed", "customer": {"id": "quitter"}})
    for run in world.session.scalars(
        select(Run).join(Customer).where(Run.status == RunStatus.waiting)
    ):
        if run.customer_id != _customer_of(world, "waiter"):
            run.wake_at -= timedelta(hours=2)
    world.session.commit()
    world.later(timedelta(seconds=0))
    return journey


def _customer_of(world, customer_id):
    from engine.models import Identity

    return world.session.scalar(
        select(Identity.customer_id).where(Identity.value == customer_id)
    )


def test_counters_equal_the_records_they_count(world):
    journey = play_cart_recovery(world)
    session = world.session
    session.rollback()
    runs = list(session.scalars(select(Run)))
    assert summed(session, Metric.ENTERED, journey_id=journey.id) == len(runs) == 5
    for status in (RunStatus.completed, RunStatus.exited, RunStatus.failed):
        assert summed(session, Metric.ENDED, label=status.value) == sum(
            1 for r in runs if r.status is status
        )
    assert (
        summed(session, Metric.CONVERTED) == 1 == sum(1 for r in runs if r.converted_at)
    )
    # Steps by node and outcome, exactly as written.
    written = dict(
        session.execute(
            select(Step.node_id + "/" + Step.outcome, func.count()).group_by(
                Step.node_id, Step.outcome
            )
        ).all()
    )
    merged: dict[str, int] = {}
    for row in session.scalars(select(Counter).where(Counter.metric == Metric.STEP)):
        key = f"{row.node_id}/{row.label}"
        merged[key] = merged.get(key, 0) + row.value
    assert merged == written
    # Deliveries by channel and final status.
    settled = dict(
        session.execute(
            select(Delivery.status, func.count())
            .where(Delivery.status != DeliveryStatus.pending)
            .group_by(Delivery.status)
        ).all()
    )
    assert settled[DeliveryStatus.delivered] == 2
    assert summed(session, Metric.DELIVERY, label="delivered") == 2
    processed = session.scalar(
        select(func.count())
        .select_from(Event)
        .where(Event.status == EventStatus.processed)
    )
    assert summed(session, Metric.EVENT, journey_id=0) == processed == 7


def test_the_report_reads_the_journey_from_the_counters(world, recorders):
    journey = play_cart_recovery(world)
    session = world.session
    session.rollback()
    report = reports.journey_report(session, journey, Window())
    assert (report.entered, report.active, report.completed, report.exited) == (
        5,
        1,
        3,
        1,
    )
    assert report.converted == 1 and report.conversion_rate == pytest.approx(0.2)
    # The buyer was met on the web (cart) and by email (order): a cross-channel conversion.
    assert report.cross_channel == 1
    funnel = {node.node_id: node for node in report.funnel}
    assert [node.node_id for node in report.funnel][:2] == ["start", "wait"]
    assert funnel["start"].arrived == 5
    assert funnel["wait"].arrived == 5 and funnel["wait"].here == 1
    assert funnel["wait"].outcomes == {
        "waiting": 5,
        "timeout": 2,
        "event": 1,
        "converted": 1,
        "exited": 1,
    }
    assert funnel["vip"].arrived == 2 and funnel["vip"].outcomes == {
        "true": 1,
        "false": 1,
    }
    assert funnel["end"].arrived == 3 and funnel["end"].here == 0
    by_name = {figures.name: figures for figures in report.channels}
    assert by_name["email"].delivered == 1 and by_name["support-desk"].delivered == 1
    assert by_name["email"].success_rate == 1.0
    assert by_name["email"].latency_ms(0.5) is not None
    assert sum(count for _, count in report.time_to_goal) == 1
    assert sum(point.entered for point in report.trend) == 5


def test_context_retention_counts_customers_known_from_another_channel(world):
    world.publish(sample())
    world.post(cart("c-1", "one@example.com"))  # new
    world.post(cart("c-1", "one@example.com"))  # same channel again
    world.post(  # first time on email, known from the web
        {"type": "opened", "customer": {"email": "one@example.com"}}, slug="email"
    )
    world.post(cart("c-1", "one@example.com"))  # web again, now known from email too
    world.session.rollback()
    labels: dict[str, int] = {}
    for row in world.session.scalars(
        select(Counter).where(Counter.metric == Metric.EVENT)
    ):
        labels[row.label] = labels.get(row.label, 0) + row.value
    assert labels == {"new": 1, "same": 1, "known": 2}
    report = overview.overview(world.session, [])
    assert report.context_retention == pytest.approx(0.5)


def test_a_savepoint_rolled_back_takes_its_counts_with_it(session):
    now = utcnow()
    counters.add(session, Metric.ENTERED, now, journey_id=7)
    savepoint = session.begin_nested()
    counters.add(session, Metric.ENTERED, now, journey_id=7, amount=10)
    savepoint.rollback()
    session.commit()
    assert summed(session, Metric.ENTERED, journey_id=7) == 1
    counters.add(session, Metric.ENTERED, now, journey_id=7, amount=100)
    session.rollback()  # the whole transaction: nothing of it is counted
    session.commit()
    assert summed(session, Metric.ENTERED, journey_id=7) == 1


def test_adding_to_an_existing_row_sums_it(session):
    now = utcnow()
    for amount in (2, 3):
        counters.add(session, Metric.STEP, now, journey_id=3, node_id="a", label="out")
        counters.add(
            session,
            Metric.STEP,
            now,
            journey_id=3,
            node_id="a",
            label="out",
            amount=amount,
        )
        session.commit()
    rows = session.execute(text("SELECT value FROM counters")).scalars().all()
    assert rows == [7]


def test_uplift_over_a_holdout_has_a_confidence_interval():
    uplift = reports.Uplift("split", "holdout", 1000, 120, 1000, 100)
    assert uplift.difference == pytest.approx(0.02)
    low, high = uplift.interval
    assert low == pytest.approx(-0.007412, abs=1e-5)
    assert high == pytest.approx(0.047412, abs=1e-5)
    assert uplift.relative == pytest.approx(0.2)
    assert reports.Uplift("split", "holdout", 10, 1, 0, 0).interval is None


def test_percentiles_come_from_the_latency_histogram():
    histogram = {"10": 50, "100": 40, "1000": 9, "inf": 1}
    assert queries.percentile(histogram, 0.5) == 10
    assert queries.percentile(histogram, 0.9) == 100
    assert queries.percentile(histogram, 0.99) == 1000
    assert queries.percentile(histogram, 1.0) == float("inf")
    assert queries.percentile({}, 0.5) is None


def test_compaction_folds_shards_and_old_hours_without_changing_any_sum(session):
    now = utcnow()
    moments = [now, now - timedelta(hours=3), now - timedelta(days=5, hours=7)]
    for shard in (0, 1, 2):
        counters.set_shard(session, shard)
        for moment in moments:
            counters.add(
                session, Metric.STEP, moment, journey_id=1, node_id="a", label="out"
            )
            counters.add(session, Metric.ENTERED, moment, journey_id=1, amount=2)
        session.commit()
    before = queries.totals(session, 1)
    rows_before = session.scalar(select(func.count()).select_from(Counter))
    folded = counters.compact(session, now)
    session.commit()
    assert queries.totals(session, 1) == before
    rows = list(session.scalars(select(Counter)))
    assert folded == rows_before - len(rows) == 8
    by_shard: dict[int, set] = {}
    for row in rows:
        by_shard.setdefault(row.shard, set()).add(row.bucket)
    assert by_shard[counters.DAILY] == {counters.hour_of(moments[2]).replace(hour=0)}
    assert by_shard[counters.HOURLY] == {counters.hour_of(moments[1])}
    assert {row.shard for row in rows if row.bucket == counters.hour_of(now)} == {
        0,
        1,
        2,
    }
    # A second run finds nothing left to fold; figures over a window are unchanged too.
    assert counters.compact(session, now) == 0
    week = Window(since=now - timedelta(days=7))
    assert queries.totals(session, 1, week)[(Metric.ENTERED, "", 0, "")] == 18


def test_a_released_savepoint_keeps_its_counts_for_the_commit(session):
    now = utcnow()
    counters.add(session, Metric.ENTERED, now, journey_id=9, label="x")
    outer = session.begin_nested()
    inner = session.begin_nested()
    counters.add(session, Metric.ENTERED, now, journey_id=9, label="b")
    inner.commit()  # released, still inside `outer`
    counters.add(session, Metric.ENTERED, now, journey_id=9, label="c")
    outer.rollback()  # takes b and c with it
    session.commit()
    labels = {row.label for row in session.scalars(select(Counter))}
    assert labels == {"x"}


def test_after_compaction_a_rolling_window_starts_at_its_first_days_midnight(session):
    now = utcnow()
    start = now - timedelta(days=8)
    for hour in range(8 * 24):
        counters.add(
            session, Metric.ENTERED, start + timedelta(hours=hour), journey_id=4
        )
    session.commit()
    week = Window(since=now - timedelta(days=7))
    counters.compact(session, now)
    session.commit()
    first = queries.first_bucket(week.since, now)
    assert first == counters.hour_of(week.since).replace(hour=0)
    expected = sum(
        1
        for hour in range(8 * 24)
        if counters.hour_of(start + timedelta(hours=hour)) >= first
    )
    assert queries.totals(session, 4, week)[(Metric.ENTERED, "", 0, "")] == expected
    assert queries.totals(session, 4)[(Metric.ENTERED, "", 0, "")] == 8 * 24


def test_archiving_counts_each_run_it_ends_once_with_a_step(world):
    from engine.journeys import lifecycle

    journey = world.publish(sample())
    world.post(cart("a", "a@example.com"))
    world.post(cart("b", "b@example.com"))
    lifecycle.pause(world.session, journey, None)
    ended = lifecycle.archive(world.session, journey, None, utcnow())
    world.session.commit()
    assert ended == 2
    assert summed(world.session, Metric.ENDED, label="exited") == 2
    exits = world.session.scalars(select(Step).where(Step.outcome == "exited")).all()
    assert [(s.node_id, s.node_type) for s in exits] == [("wait", "wait_for_event")] * 2
    report = reports.journey_report(world.session, journey, Window())
    assert report.active == 0
    assert {node.node_id: node.here for node in report.funnel}["wait"] == 0


def test_a_holdout_with_more_conversions_than_entries_in_a_period_does_not_break():
    uplift = reports.Uplift("split", "holdout", 10, 2, 1, 3)
    assert uplift.interval is not None


def scanned(session, journey_id):
    """A journey's stats counted from its records: runs by status, and per node the runs
    with a step there (entered), with one by a port or ending there (completed), or failed
    there. A "converted" or "exited" step is not an arrival, nor a "moved" one a way out."""
    runs = list(session.scalars(select(Run).where(Run.journey_id == journey_id)))
    kinds = {
        "entered": Step.outcome.not_in(["converted", "exited", "moved"]),
        "completed": Step.outcome.not_in(
            ["waiting", "failed", "converted", "exited", "not_entered", "moved"]
        ),
        "failed": Step.outcome == "failed",
    }
    nodes: dict[str, dict[str, int]] = {}
    for kind, where in kinds.items():
        for node_id, count in session.execute(
            select(Step.node_id, func.count(Step.run_id.distinct()))
            .join(Run, Run.id == Step.run_id)
            .where(Run.journey_id == journey_id, where)
            .group_by(Step.node_id)
        ):
            nodes.setdefault(node_id, dict.fromkeys(kinds, 0))[kind] = count
    for run in runs:
        if run.status is RunStatus.waiting:
            found = nodes.setdefault(run.current_node, dict.fromkeys(kinds, 0))
            found["waiting"] = found.get("waiting", 0) + 1
    for found in nodes.values():
        found.setdefault("waiting", 0)
    status = [run.status for run in runs]
    return {
        "entered": len(runs),
        "active": status.count(RunStatus.active) + status.count(RunStatus.waiting),
        "completed": status.count(RunStatus.completed),
        "exited": status.count(RunStatus.exited),
        "failed": status.count(RunStatus.failed),
        "converted": sum(1 for run in runs if run.converted_at),
        "nodes": nodes,
    }


def looping():
    """Cart recovery where the email leads back to the wait: a customer who never buys and
    is not a VIP goes round wait, vip and mail once an hour."""
    document = sample()
    for edge in document["edges"]:
        if edge["from"] == "mail":
            edge["to"] = "wait"
    return document


def test_the_journey_stats_from_the_counters_equal_the_records_they_count(world):
    journey = play_cart_recovery(world)
    world.session.rollback()
    assert stats.journey_stats(world.session, journey.id) == scanned(
        world.session, journey.id
    )


def test_a_run_that_comes_back_to_a_step_counts_there_once_in_the_stats(world):
    journey = world.publish(looping())
    world.post(cart("round", "round@example.com"))  # never buys: goes round
    world.post(cart("vip-1", "vip1@example.com", "vip"))  # gets a call, then ends
    world.later(timedelta(hours=2))
    world.later(timedelta(hours=2))
    session = world.session
    session.rollback()
    found = stats.journey_stats(session, journey.id)
    assert found == scanned(session, journey.id)
    assert found["nodes"]["wait"] == {
        "entered": 2,
        "waiting": 1,
        "completed": 2,
        "failed": 0,
    }
    assert found["nodes"]["mail"]["entered"] == 1
    assert found["nodes"]["vip"] == {
        "entered": 2,
        "waiting": 0,
        "completed": 2,
        "failed": 0,
    }
    # The canvas counts every arrival and every way out taken.
    canvas = stats.step_figures(session, journey)
    assert canvas["nodes"]["wait"]["entered"] == 4
    assert canvas["nodes"]["wait"]["completed"] == 3
    assert canvas["nodes"]["vip"]["entered"] == 3
    assert canvas["nodes"]["mail"]["entered"] == 2
    assert (canvas["entered"], canvas["active"], canvas["completed"]) == (2, 1, 1)
