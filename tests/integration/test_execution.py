"""Events in, journeys advanced, actions out: intake, drains, timers and deliveries together."""

from datetime import timedelta

from sqlalchemy import event as sa_event
from sqlalchemy import select, update

from engine.analytics import stats
from engine.execution import drains
from engine.journeys import lifecycle
from engine.models import (
    AuditEntry,
    Channel,
    Customer,
    DeliveryStatus,
    Event,
    EventStatus,
    Identity,
    Run,
    RunStatus,
    Step,
    utcnow,
)
from tests.channels import post_event
from tests.conftest import work_all
from tests.world import CART, sample


def test_a_vip_who_does_not_buy_gets_a_signed_call_task(world, recorders):
    journey = world.publish(sample())
    event_id = world.post(CART)
    run = world.session.scalars(select(Run)).one()
    assert (
        run.status is RunStatus.waiting
        and run.current_node == "wait"
        and run.awaiting_event == "order_completed"
    )
    assert run.version_id and run.trigger_event_id == event_id
    assert world.session.get(Event, event_id).status is EventStatus.processed
    world.later(timedelta(minutes=30))
    assert world.session.get(Run, run.id).status is RunStatus.waiting  # not due yet
    world.later(timedelta(hours=1, seconds=1))
    assert world.steps() == [
        ("start", "out"),
        ("wait", "waiting"),
        ("wait", "timeout"),
        ("vip", "true"),
        ("call", "out"),
        ("end", "completed"),
    ]
    [received] = recorders["support-desk"].delivered()
    [delivery] = world.deliveries()
    assert received["headers"]["webhook-id"] == delivery.id
    body = received["body"]
    assert body["delivery_id"] == delivery.id and body["message"] == {
        "task": "Call Ada"
    }
    assert (
        body["journey"] == {"id": journey.id, "name": "Cart recovery", "version": 1}
        and body["node"] == "call"
    )
    assert (
        body["customer"]["id"] == "c-42"
        and body["customer"]["email"] == "ada@example.com"
    )
    assert body["customer"]["traits"]["tier"] == "vip"
    assert recorders["support-desk"].bad_signatures == 0
    assert (
        delivery.status is DeliveryStatus.delivered and delivery.response_status == 200
    )


def test_buying_during_the_wait_ends_the_run_and_converts(world, recorders):
    world.publish(sample())
    world.post(CART)
    world.post(
        {"type": "order_completed", "customer": {"email": "ADA@example.com"}},
        slug="email",
    )
    run = world.session.scalars(select(Run)).one()
    assert run.status is RunStatus.completed and run.converted_at is not None
    assert world.steps()[-3:] == [
        ("wait", "converted"),
        ("wait", "event"),
        ("end", "completed"),
    ]
    world.later(timedelta(hours=2))
    assert not recorders["support-desk"].received


def test_events_naming_two_profiles_merge_them(world):
    world.publish(sample())
    world.post({"type": "viewed", "customer": {"id": "c-1"}, "traits": {"tier": "vip"}})
    world.post(
        {
            "type": "opened",
            "customer": {"email": "x@example.com"},
            "traits": {"first_name": "Xu"},
        },
        slug="email",
    )
    assert len(world.session.scalars(select(Customer)).all()) == 2
    world.post({**CART, "customer": {"id": "c-1", "email": "x@example.com"}})
    live = world.session.scalars(
        select(Customer).where(Customer.merged_into_id.is_(None))
    ).all()
    assert len(live) == 1
    survivor = live[0]
    assert survivor.traits == {"tier": "vip", "first_name": "Ada"}
    kinds = {(i.kind, i.value) for i in world.session.scalars(select(Identity))}
    assert kinds == {("id", "c-1"), ("email", "x@example.com")}
    assert {e.customer_id for e in world.session.scalars(select(Event))} == {
        survivor.id
    }
    merge = world.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "customer.merge")
    ).one()
    assert merge.target_id == str(survivor.id)


def test_withdrawn_consent_suppresses_and_says_why(world, recorders):
    world.publish(sample())
    world.post({"type": "hello", "customer": {"id": "c-42"}})
    customer = world.session.scalars(select(Customer)).one()
    customer.consent = {"support-desk": False}
    world.session.commit()
    world.post(CART)
    world.later(timedelta(hours=2))
    [delivery] = world.deliveries()
    assert (
        delivery.status is DeliveryStatus.suppressed
        and delivery.reason == "consent_withdrawn"
    )
    assert not recorders["support-desk"].received


def test_a_disabled_channel_falls_back_to_the_fallback_channel(world, recorders):
    world.publish(sample())
    world.session.execute(
        update(Channel).where(Channel.slug == "email").values(enabled=False)
    )
    world.session.commit()
    world.post({**CART, "traits": {"tier": "standard"}})
    world.later(timedelta(hours=2))
    primary, fallback = world.deliveries()
    assert (
        primary.status is DeliveryStatus.suppressed
        and primary.reason == "channel_disabled"
    )
    assert (
        fallback.fallback_of_id == primary.id
        and fallback.status is DeliveryStatus.delivered
    )
    [received] = recorders["sms"].delivered()
    assert received["body"]["message"] == {"subject": "Still thinking?"}


def test_server_errors_are_retried_with_the_same_delivery_id(world, recorders):
    world.publish(sample())
    recorders["support-desk"].answers = [500, 503]
    world.post(CART)
    world.later(timedelta(hours=2))
    [delivery] = world.deliveries()
    assert (
        delivery.status is DeliveryStatus.pending
        and delivery.attempts == 1
        and delivery.last_error == "HTTP 500"
    )
    world.retry_now()
    world.retry_now()
    world.session.refresh(delivery)
    assert delivery.status is DeliveryStatus.delivered and delivery.attempts == 3
    ids = {r["headers"]["webhook-id"] for r in recorders["support-desk"].received}
    assert ids == {delivery.id} and len(recorders["support-desk"].received) == 3


def test_a_permanent_4xx_fails_and_falls_back(world, recorders):
    world.publish(sample())
    recorders["email"].answers = [422]
    world.post({**CART, "traits": {"tier": "standard"}})
    world.later(timedelta(hours=2))
    primary, fallback = world.deliveries()
    assert (
        primary.status is DeliveryStatus.failed
        and primary.reason == "permanent_4xx"
        and primary.response_status == 422
    )
    assert fallback.status is DeliveryStatus.delivered and recorders["sms"].delivered()


def test_a_failed_send_takes_the_error_port(world, recorders):
    document = sample()
    document["nodes"].append(
        {
            "id": "sorry",
            "type": "update_profile",
            "config": {"set": {"call_failed": True}},
        }
    )
    document["edges"] += [
        {"from": "call", "port": "error", "to": "sorry"},
        {"from": "sorry", "to": "end"},
    ]
    world.publish(document)
    recorders["support-desk"].answers = [400]
    world.post(CART)
    world.later(timedelta(hours=2))
    assert world.steps()[-4:] == [
        ("call", "waiting"),
        ("call", "error"),
        ("sorry", "out"),
        ("end", "completed"),
    ]
    assert world.session.scalars(select(Customer)).one().traits["call_failed"] is True


def test_exit_on_ends_a_waiting_run_and_pause_holds_entries(world):
    journey = world.publish(sample())
    world.post(CART)
    world.post({"type": "unsubscribed", "customer": {"id": "c-42"}})
    run = world.session.scalars(select(Run)).one()
    assert run.status is RunStatus.exited and world.steps()[-1] == ("wait", "exited")
    lifecycle.pause(world.session, journey, None)
    world.session.commit()
    world.post({**CART, "customer": {"id": "c-43"}})
    assert (
        len(world.session.scalars(select(Run)).all()) == 1
    )  # a paused journey takes no one in


def test_a_bad_stored_event_fails_alone_and_its_batch_is_applied_once(world):
    """The fast path of a batch fails on the bad event; the batch is redone event by event."""
    from engine import runtime
    from engine.execution import apply

    world.publish(sample())
    web = world.session.scalars(select(Channel).where(Channel.slug == "web")).one()
    bodies = [
        {**CART, "customer": {"id": "c-1"}},
        {"type": "cart_abandoned", "customer": {}},  # no identifier: cannot be applied
        {**CART, "customer": {"id": "c-2"}},
    ]
    for n, body in enumerate(bodies):
        world.session.add(
            Event(
                channel_id=web.id,
                webhook_id=f"stored-{n}",
                type=body["type"],
                partition=0,
                payload=body,
                occurred_at=utcnow(),
            )
        )
    world.session.commit()

    result = apply.drain_partition(
        runtime.current().database, 0, lambda effects, result: None
    )

    world.session.rollback()
    assert (result.processed, result.failed) == (2, 1)
    statuses = dict(world.session.execute(select(Event.webhook_id, Event.status)).all())
    assert statuses == {
        "stored-0": EventStatus.processed,
        "stored-1": EventStatus.failed,
        "stored-2": EventStatus.processed,
    }
    failed = world.session.scalars(select(Event).where(Event.webhook_id == "stored-1"))
    assert "customer" in failed.one().error
    assert len(world.session.scalars(select(Run)).all()) == 2
    assert {i.value for i in world.session.scalars(select(Identity))} == {"c-1", "c-2"}


def test_when_the_scheduler_cannot_sweep_every_due_run_the_workers_help(
    world, monkeypatch
):
    from engine import runtime
    from engine.queues import all_queues
    from tests.conftest import work_all

    world.publish(sample())
    for number in range(5):
        world.post({**CART, "customer": {"id": f"t-{number}"}})
    for run in world.session.scalars(select(Run)):
        run.wake_at -= timedelta(hours=2)
    world.session.commit()
    monkeypatch.setattr(drains, "TIMER_BATCH", 2)
    advanced = drains.sweep_timers(runtime.current(), budget=0)
    assert advanced == 2  # one batch, then out of time
    queued = [job.func_name for q in all_queues(world.redis) for job in q.jobs]
    assert queued.count("engine.jobs.sweep_due_timers") == drains.TIMER_HELPERS
    assert drains.ask_for_timer_help(world.redis) == 0  # asked once per two seconds
    work_all(world.redis)
    world.session.rollback()
    world.session.expire_all()
    statuses = [run.status for run in world.session.scalars(select(Run))]
    assert RunStatus.waiting not in statuses, statuses


def test_a_batch_of_deliveries_is_settled_without_reading_each_row_again(
    world, engine_runtime
):
    world.publish(
        {
            "schema": "throughline.journey/v1",
            "name": "Welcome call",
            "nodes": [
                {"id": "start", "type": "trigger", "config": {"event": "signed_up"}},
                {
                    "id": "call",
                    "type": "send",
                    "config": {"channel": "support-desk", "message": {"task": "Hi"}},
                },
                {"id": "end", "type": "exit", "config": {}},
            ],
            "edges": [
                {"from": "start", "to": "call"},
                {"from": "call", "to": "end"},
                {"from": "call", "port": "error", "to": "end"},
            ],
        }
    )
    for number in range(20):
        answer = post_event(
            world.client,
            "web",
            world.secrets["web"],
            {"type": "signed_up", "customer": {"id": f"c-{number}"}},
        )
        assert answer.status_code == 202
    statements: list[str] = []
    sa_event.listen(
        engine_runtime.database.engine,
        "before_cursor_execute",
        lambda *args: statements.append(args[2]),
    )
    work_all(world.redis)
    world.session.rollback()

    assert [
        (d.status, d.last_error)
        for d in world.deliveries()
        if d.status != DeliveryStatus.delivered
    ] == []
    assert len(world.recorders["support-desk"].received) == 20
    assert {d.status for d in world.deliveries()} == {DeliveryStatus.delivered}
    runs = world.session.scalars(select(Run)).all()
    assert len(runs) == 20 and {r.status for r in runs} == {RunStatus.completed}
    # The delivery drain reads its batch (and the runs it resumes) in one query each.
    one_by_one = [
        s
        for s in statements
        if ("FROM deliveries" in s and "WHERE deliveries.id = " in s)
        or ("FROM runs" in s and "WHERE runs.id = " in s)
    ]
    assert one_by_one == []


def test_a_name_printed_empty_in_a_real_send_is_counted_on_its_step(world, recorders):
    document = sample()
    for node in document["nodes"]:
        if node["id"] == "call":
            node["config"]["message"] = {
                "task": "Call {{ customer.first_name }} about {{ event.properties.x }}",
                "note": "{{ customer.traits.nickname | default: 'them' }}",
            }
    journey = world.publish(document)
    world.post(CART)
    world.post({**CART, "customer": {"id": "c-43"}, "traits": {"tier": "vip"}})
    world.later(timedelta(hours=1, seconds=1))
    assert len(recorders["support-desk"].delivered()) == 2
    counted = stats.empty_names(world.session, journey.id)
    # The typo is empty for both customers; a default is never empty.
    assert counted == {"call": {"customer.first_name": 2, "event.properties.x": 2}}
    step = world.session.scalars(select(Step).where(Step.node_id == "call")).first()
    assert step.detail["empty"] == ["customer.first_name", "event.properties.x"]
    figures = stats.step_figures(world.session, journey)
    assert figures["nodes"]["call"]["empty"] == counted["call"]
    # Counted in SQL: the week's figure does not depend on Redis.
    world.redis.flushdb()
    assert stats.empty_names(world.session, journey.id) == counted
    later = utcnow() + timedelta(days=8)
    assert stats.empty_names(world.session, journey.id, now=later) == {}
