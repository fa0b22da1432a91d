"""Brand-wide policies on live runs: caps across journeys, quiet hours, the global holdout,
transactional sends, and the API that keeps the document."""

import json
import threading
import time
from datetime import timedelta

from sqlalchemy import event as sa_event
from sqlalchemy import func, select, update

from engine import runtime
from engine.analytics.queries import Window
from engine.analytics.reports import journey_report
from engine.execution import documents
from engine.intake.contract import partition_for
from engine.models import (
    AuditEntry,
    Channel,
    Customer,
    Delivery,
    DeliveryStatus,
    JourneyVersion,
    Role,
    Run,
    RunStatus,
    SendSlot,
    Step,
    utcnow,
)
from engine.policies import held_out, parse, store
from engine.policies.gate import LiveGate
from engine.profiles.read import timeline
from tests.channels import post_event
from tests.conftest import work_all
from tests.factories import api_client, login, make_customer, make_user

JOURNEY = "throughline.journey/v1"


def journey(name, event, channel, transactional=False, suppressed_to=None):
    send = {"channel": channel, "message": {"text": f"{name}: hello"}}
    if transactional:
        send["transactional"] = True
    nodes = [
        {"id": "start", "type": "trigger", "config": {"event": event}},
        {"id": "send", "type": "send", "config": send},
        {"id": "end", "type": "exit", "config": {}},
    ]
    edges = [{"from": "start", "to": "send"}, {"from": "send", "to": "end"}]
    if suppressed_to:
        nodes.append(
            {
                "id": "instead",
                "type": "send",
                "config": {"channel": suppressed_to, "message": {"text": "instead"}},
            }
        )
        edges.append({"from": "send", "port": "suppressed", "to": "instead"})
        edges.append({"from": "instead", "to": "end"})
    return {"schema": JOURNEY, "name": name, "nodes": nodes, "edges": edges}


def clear_of_a_minute_change():
    """Wait out the last seconds of a minute, so a test's sends all fall in one minute."""
    while utcnow().second >= 50:
        time.sleep(0.5)


def set_policies(world, document):
    store.save(world.session, document, None)
    world.session.commit()


def event(kind, customer="c-1", **traits):
    return {"type": kind, "customer": {"id": customer}, "traits": traits}


def test_a_daily_cap_of_one_email_lets_one_of_two_journeys_send(world, recorders):
    set_policies(
        world, {"frequency_caps": [{"channels": ["email"], "max": 1, "per": "P1D"}]}
    )
    world.publish(journey("Welcome", "signed_up", "email"))
    world.publish(journey("Tips", "signed_up", "email"))
    world.post(event("signed_up"))
    assert len(recorders["email"].delivered()) == 1
    deliveries = world.deliveries()
    assert sorted((d.status.value, d.reason) for d in deliveries) == [
        ("delivered", None),
        ("suppressed", "frequency_cap"),
    ]
    # A later event, in another transaction, is counted against the same cap.
    world.publish(journey("Offer", "browsed", "email"))
    world.post(event("browsed"))
    assert len(recorders["email"].delivered()) == 1
    assert [d.reason for d in world.deliveries()].count("frequency_cap") == 2
    # The customer's timeline says which send was kept back, and why.
    customer = world.session.scalars(select(Customer)).one()
    entries = timeline(world.session, customer)
    said = [str(entry) for entry in entries]
    assert any("frequency cap" in text for text in said), said
    steps = world.session.scalars(
        select(Step).where(Step.node_id == "send").order_by(Step.id)
    ).all()
    assert [s.outcome for s in steps].count("out") == 3  # no suppressed port: out
    kept = [s.detail for s in steps if s.detail.get("suppressed")]
    assert len(kept) == 2 and kept[0]["reason"] == (
        "not sent: frequency cap of 1 message on email per day reached"
    )
    # The Policies page says what the caps did lately.
    login(world.client, make_user(world.session, Role.viewer))
    page = world.client.get("/policies/").get_data(as_text=True)
    assert "2 sends kept back by a frequency cap" in page


def test_a_suppressed_send_takes_its_suppressed_port(world, recorders):
    set_policies(
        world, {"frequency_caps": [{"channels": ["email"], "max": 1, "per": "PT1H"}]}
    )
    world.publish(journey("Welcome", "signed_up", "email"))
    world.publish(journey("Tips", "browsed", "email", suppressed_to="sms"))
    world.post(event("signed_up"))
    world.post(event("browsed"))
    assert len(recorders["email"].delivered()) == 1
    assert [r["body"]["message"] for r in recorders["sms"].delivered()] == [
        {"text": "instead"}
    ]


def test_transactional_sends_meet_no_policy_and_are_not_counted(world, recorders):
    set_policies(
        world,
        {
            "frequency_caps": [{"channels": ["email"], "max": 1, "per": "P1D"}],
            "global_holdout": {"percent": 50},
        },
    )
    world.publish(journey("Receipt", "paid", "email", transactional=True))
    for number in range(6):
        world.post(event("paid", customer=f"buyer-{number}"))
        world.post(event("paid", customer=f"buyer-{number}"))
    assert len(recorders["email"].delivered()) == 12
    assert all(d.transactional for d in world.deliveries())
    # Transactional sends did not use up the cap: a marketing email still goes out to
    # each customer outside the holdout.
    world.publish(journey("News", "browsed", "email"))
    for number in range(6):
        world.post(event("browsed", customer=f"buyer-{number}"))
    news = [d for d in world.deliveries() if not d.transactional]
    ids = {c.id for c in world.session.scalars(select(Customer))}
    holdout = parse({"global_holdout": {"percent": 50}})
    expected = {
        cid: ("suppressed" if held_out(holdout, cid) else "delivered") for cid in ids
    }
    assert {d.customer_id: d.status.value for d in news} == expected
    assert {d.reason for d in news if d.status is DeliveryStatus.suppressed} <= {
        "global_holdout"
    }


def test_an_sms_inside_quiet_hours_waits_until_they_end(world, recorders):
    now = utcnow()
    start = (now - timedelta(hours=1)).strftime("%H:%M")
    end = (now + timedelta(hours=1)).strftime("%H:%M")
    set_policies(
        world, {"quiet_hours": {"start": start, "end": end, "channels": ["sms"]}}
    )
    reminder = world.publish(journey("Reminder", "signed_up", "sms"))
    world.post(event("signed_up"))
    assert not recorders["sms"].received
    run = world.session.scalars(select(Run)).one()
    assert run.status is RunStatus.waiting and run.current_node == "send"
    assert run.wake_at.strftime("%H:%M") == end
    assert run.wake_at > utcnow()
    [held] = world.session.scalars(select(Step).where(Step.node_id == "send")).all()
    assert held.outcome == "waiting"
    assert held.detail["reason"] == f"held for quiet hours until {end} UTC"
    assert not world.deliveries()
    customer = world.session.scalars(select(Customer)).one()
    reasons = [entry.get("reason") for entry in timeline(world.session, customer)]
    assert f"held for quiet hours until {end} UTC" in reasons
    # The journey's analytics count the send held back, by channel and reason.
    report = journey_report(world.session, reminder, Window())
    [sms] = [c for c in report.channels if c.name == "sms"]
    assert sms.held == {"quiet_hours": 1} and sms.settled == 0
    # The policies go away before the hours end; the run's timer still fires at the end.
    set_policies(world, {})
    world.later(timedelta(hours=1, minutes=1))
    world.session.expire_all()  # the run read above is held in this session
    assert len(recorders["sms"].delivered()) == 1
    assert world.session.scalars(select(Run)).one().status is RunStatus.completed


def test_the_holdout_follows_the_profile_that_survives_a_merge(world, recorders):
    set_policies(world, {"global_holdout": {"percent": 50}})
    world.publish(journey("News", "browsed", "email"))
    world.post({"type": "hello", "customer": {"id": "m-1"}})
    world.post({"type": "hello", "customer": {"email": "m@example.com"}}, slug="email")
    world.post({"type": "browsed", "customer": {"id": "m-1", "email": "m@example.com"}})
    survivor = world.session.scalars(
        select(Customer).where(Customer.merged_into_id.is_(None))
    ).one()
    [delivery] = world.deliveries()
    held = held_out(parse({"global_holdout": {"percent": 50}}), survivor.id)
    assert delivery.customer_id == survivor.id
    assert delivery.status is (
        DeliveryStatus.suppressed if held else DeliveryStatus.delivered
    )


def test_a_cap_holds_under_eight_concurrent_workers(world):
    """Eight transactions at once ask to send to the same customer under a cap of three:
    exactly three may."""
    set_policies(
        world, {"frequency_caps": [{"channels": ["email"], "max": 3, "per": "P1D"}]}
    )
    journey_row = world.publish(journey("News", "browsed", "email"))
    customer = make_customer(world.session)
    version_id = world.session.scalar(
        select(JourneyVersion.id).where(JourneyVersion.journey_id == journey_row.id)
    )
    world.session.commit()
    database = runtime.current().database
    # On PostgreSQL all eight are inside their transactions before any counts; SQLite lets
    # one writer in at a time, so there they queue for the write lock instead.
    postgres = database.engine.dialect.name == "postgresql"
    barrier = threading.Barrier(8 if postgres else 1)
    verdicts, errors = [], []

    def worker():
        try:
            with database.session(writer=True) as session:
                run = Run(
                    journey_id=journey_row.id,
                    version_id=version_id,
                    customer_id=customer.id,
                    status=RunStatus.active,
                    current_node="send",
                    context={},
                    state={},
                    started_at=utcnow(),
                )
                session.add(run)
                session.flush()
                barrier.wait(timeout=10)
                verdict = LiveGate(session, run, {}).decide("email", utcnow())
                verdicts.append(verdict)
                if verdict is None:
                    email = documents.channels_by_slug(session)["email"]
                    session.add(
                        Delivery(
                            run_id=run.id,
                            customer_id=customer.id,
                            channel_id=email.id,
                            payload={},
                            next_attempt_at=utcnow(),
                        )
                    )
        except Exception as error:  # reported below, with the thread's error
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert sum(1 for v in verdicts if v is None) == 3
    assert len(verdicts) == 8
    assert world.session.scalar(select(func.count()).select_from(Delivery)) == 3


def test_the_policies_api_validates_audits_and_guards_the_revision(
    client, session, world
):
    api = api_client(client, session, Role.marketer)
    empty = api.get("/api/v1/policies").get_json()
    assert empty == {
        "policies": {},
        "revision": 0,
        "updated_at": None,
        "updated_by": None,
    }
    document = {
        "frequency_caps": [{"channels": ["email", "sms"], "max": 3, "per": "P7D"}],
        "quiet_hours": {"start": "21:00", "end": "08:00", "channels": ["sms"]},
        "global_holdout": {"percent": 5},
    }
    saved = api.put("/api/v1/policies", json=document)
    assert saved.status_code == 200, saved.get_json()
    body = saved.get_json()
    assert body["revision"] == 1 and body["updated_by"].endswith("@example.com")
    assert body["policies"]["quiet_hours"]["timezone_trait"] == "timezone"
    bad = api.put(
        "/api/v1/policies",
        json={"frequency_caps": [{"channels": ["fax"], "max": 3, "per": "P7D"}]},
    )
    assert bad.status_code == 422
    error = bad.get_json()
    assert error["error"]["field"] == "frequency_caps[0].channels[0]"
    assert error["problems"][0]["message"] == "there is no channel 'fax'"
    stale = api.put("/api/v1/policies", json={}, headers={"If-Match": "0"})
    assert stale.status_code == 412
    assert (
        api.put("/api/v1/policies", json={}, headers={"If-Match": "1"}).status_code
        == 200
    )
    entries = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "policy.update")
    ).all()
    assert [e.detail["revision"] for e in entries] == [1, 2]
    assert entries[1].detail["before"]["global_holdout"] == {"percent": 5}
    assert entries[1].detail["after"] == {}
    viewer = api_client(client, session, Role.viewer)
    assert viewer.put("/api/v1/policies", json={}).status_code == 403
    assert viewer.get("/api/v1/policies").get_json()["revision"] == 2


def test_a_new_profile_is_counted_from_the_rows_its_batch_has_not_written(world):
    set_policies(
        world, {"frequency_caps": [{"channels": ["email"], "max": 1, "per": "P1D"}]}
    )
    world.publish(journey("One", "signed_up", "email"))
    world.publish(journey("Two", "signed_up", "email"))
    world.publish(journey("Three", "signed_up", "email"))
    world.post(event("signed_up", customer="brand-new"))
    statuses = sorted(d.status.value for d in world.deliveries())
    assert statuses == ["delivered", "suppressed", "suppressed"]


def test_analytics_compare_the_global_holdout_with_everyone_else(
    world, client, session
):
    set_policies(world, {"global_holdout": {"percent": 50}})
    document = journey("News", "signed_up", "email")
    document["goal"] = {"event": "purchased", "within": "P7D"}
    nodes = document["nodes"]
    nodes.insert(2, {"id": "pause", "type": "wait", "config": {"duration": "P1D"}})
    document["edges"] = [
        {"from": "start", "to": "send"},
        {"from": "send", "to": "pause"},
        {"from": "pause", "to": "end"},
    ]
    news = world.publish(document)
    for number in range(12):
        world.post(event("signed_up", customer=f"h-{number}"))
    for number in range(0, 12, 2):  # every other customer buys
        world.post(event("purchased", customer=f"h-{number}"))
    holdout = parse({"global_holdout": {"percent": 50}})
    runs = world.session.scalars(select(Run)).all()
    held = [r for r in runs if held_out(holdout, r.customer_id)]
    assert held and len(held) < 12  # both groups have customers
    held_converted = sum(1 for r in held if r.converted_at is not None)
    others_converted = sum(
        1 for r in runs if r not in held and r.converted_at is not None
    )
    report = journey_report(world.session, news, Window())
    comparison = report.global_holdout
    assert (comparison.held, comparison.held_converted) == (len(held), held_converted)
    assert (comparison.treated, comparison.treated_converted) == (
        12 - len(held),
        others_converted,
    )
    assert comparison.interval is not None
    # Held-out customers were sent nothing; everyone else got the email.
    assert {d.customer_id for d in world.deliveries() if d.reason is None} == {
        r.customer_id for r in runs if r not in held
    }
    # Shown on the journey's analytics page and on the overview, across journeys.
    login(client, make_user(session, Role.viewer))
    page = client.get(f"/journeys/{news.id}/analytics").get_data(as_text=True)
    assert "Against the global holdout" in page
    assert "The global holdout (sent nothing)" in page
    overview = client.get("/analytics/").get_data(as_text=True)
    assert "Against the global holdout" in overview


def test_a_journeys_send_limit_spreads_its_sends_in_order(world, recorders):
    document = journey("Launch", "signed_up", "email")
    document["throttle"] = {"max_sends_per_minute": 2}
    world.publish(document)
    world.publish(journey("Receipt", "signed_up", "sms", transactional=True))
    clear_of_a_minute_change()
    for number in range(5):
        world.post(event("signed_up", customer=f"t-{number}"))
    assert len(recorders["email"].delivered()) == 2
    assert len(recorders["sms"].delivered()) == 5  # another journey, not limited
    waiting = world.session.scalars(
        select(Run).where(Run.status == RunStatus.waiting).order_by(Run.id)
    ).all()
    assert len(waiting) == 3
    # Two a minute, in the order the customers came: the third and fourth the next minute,
    # the fifth the one after.
    wakes = [run.wake_at for run in waiting]
    assert wakes[0] == wakes[1] and wakes[2] == wakes[0] + timedelta(minutes=1)
    assert wakes[0].second == 0 and wakes[0] > waiting[0].started_at
    assert [run.customer_id for run in waiting] == sorted(
        run.customer_id for run in waiting
    )
    [step] = world.session.scalars(
        select(Step).where(Step.run_id == waiting[-1].id, Step.node_id == "send")
    ).all()
    assert step.detail["held"] == "throttle"
    assert step.detail["reason"].startswith(
        "held by the journey's send limit (2 a minute)"
    )
    # Each woken in its minute goes out then, with the minute it was given.
    world.later(timedelta(minutes=1))
    assert len(recorders["email"].delivered()) == 4
    world.later(timedelta(minutes=1))
    world.session.expire_all()
    assert len(recorders["email"].delivered()) == 5
    assert {d.reason for d in world.deliveries()} == {None}


def test_a_fallback_send_meets_the_cap_of_its_own_channel(world, recorders):
    set_policies(
        world, {"frequency_caps": [{"channels": ["sms"], "max": 1, "per": "P1D"}]}
    )
    world.publish(journey("Text", "signed_up", "sms"))
    world.post(event("signed_up"))
    assert len(recorders["sms"].delivered()) == 1
    document = journey("Mail", "browsed", "email")
    document["nodes"][1]["config"]["fallback_channel"] = "sms"
    world.publish(document)
    world.session.execute(
        update(Channel).where(Channel.slug == "email").values(enabled=False)
    )
    world.session.commit()
    world.post(event("browsed"))
    primary, fallback = [d for d in world.deliveries() if d.node_id == "send"][1:]
    assert primary.reason == "channel_disabled"
    assert fallback.fallback_of_id == primary.id
    assert (fallback.status, fallback.reason) == (
        DeliveryStatus.suppressed,
        "frequency_cap",
    )
    assert len(recorders["sms"].delivered()) == 1


def test_runs_held_for_the_send_limit_and_woken_late_queue_again(world, recorders):
    document = journey("Launch", "signed_up", "email")
    document["throttle"] = {"max_sends_per_minute": 1}
    world.publish(document)
    clear_of_a_minute_change()
    for number in range(3):
        world.post(event("signed_up", customer=f"late-{number}"))
    assert len(recorders["email"].delivered()) == 1
    # Ten minutes pass (the minutes given, too) and both held runs wake long after theirs:
    # they do not go out together, each takes a new minute in turn.
    for slot in world.session.scalars(select(SendSlot)).all():
        world.session.delete(slot)
        world.session.flush()
        world.session.add(
            SendSlot(
                journey_id=slot.journey_id,
                minute=slot.minute - timedelta(minutes=10),
                used=slot.used,
            )
        )
    world.session.commit()
    world.later(timedelta(minutes=10))
    world.session.expire_all()
    assert len(recorders["email"].delivered()) == 2
    [still] = world.session.scalars(
        select(Run).where(Run.status == RunStatus.waiting)
    ).all()
    assert still.state["held"] == "throttle" and still.wake_at > utcnow()
    world.later(timedelta(minutes=1))
    assert len(recorders["email"].delivered()) == 3


def test_a_batch_of_returning_customers_is_counted_in_one_query(world, recorders):
    """Three known customers, each sent an email already: one batch of their events counts
    all three against the cap at once, and none gets a second email."""
    set_policies(
        world, {"frequency_caps": [{"channels": ["email"], "max": 1, "per": "P1D"}]}
    )
    world.publish(journey("Welcome", "signed_up", "email"))
    world.publish(journey("Offer", "browsed", "email"))
    # Three customers of one partition, so their events are drained in one batch.
    names = [
        name
        for name in (f"r-{n}" for n in range(200))
        if partition_for((("id", name),), world.settings.partitions) == 0
    ][:3]
    for name in names:
        world.post(event("signed_up", customer=name))
    assert len(recorders["email"].delivered()) == 3
    counted = []
    listen = lambda *args: counted.append(args[2])  # noqa: E731
    engine = runtime.current().database.engine
    sa_event.listen(engine, "before_cursor_execute", listen)
    try:
        body = json.dumps(
            {
                "events": [
                    {**event("browsed", customer=name), "id": f"browse-{name}"}
                    for name in names
                ]
            }
        )
        answer = post_event(
            world.client, "web", world.secrets["web"], body, path="/batch"
        )
        assert answer.get_json()["accepted"] == 3, answer.get_json()
        work_all(world.redis)
    finally:
        sa_event.remove(engine, "before_cursor_execute", listen)
    world.session.rollback()
    assert len(recorders["email"].delivered()) == 3
    kept = [d for d in world.deliveries() if d.reason == "frequency_cap"]
    assert len(kept) == 3
    counts = [s for s in counted if "count(" in s.lower() and "deliveries" in s.lower()]
    assert len(counts) == 1, counts
