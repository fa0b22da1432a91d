"""Publishing with a plan moves the customers already in a journey: once, with a step saying
so, and nothing lost or sent twice."""

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from engine import runtime, tracing
from engine.execution import drains
from engine.journeys import lifecycle
from engine.models import (
    AuditEntry,
    JourneyVersion,
    MoveStatus,
    Role,
    Run,
    RunMove,
    RunStatus,
    Step,
    utcnow,
)
from tests.channels import post_event
from tests.conftest import work_all
from tests.factories import api_client
from tests.world import World


def _document(wait="P1D", subject="Hello"):
    return {
        "schema": "throughline.journey/v1",
        "name": "Welcome",
        "entry": {"reentry": "never"},
        "nodes": [
            {"id": "start", "type": "trigger", "config": {"event": "signed_up"}},
            {"id": "hold", "type": "wait", "config": {"duration": wait}},
            {
                "id": "mail",
                "type": "send",
                "config": {"channel": "email", "message": {"subject": subject}},
            },
            {"id": "end", "type": "exit", "config": {}},
        ],
        "edges": [
            {"from": "start", "to": "hold"},
            {"from": "hold", "to": "mail"},
            {"from": "mail", "to": "end"},
        ],
        "layout": {},
    }


@pytest.fixture
def live(client, session, settings, redis_client, engine_runtime):
    from tests.channels import Recorder

    with Recorder() as email:
        yield World(client, session, settings, redis_client, {"email": email})


def _sign_up(world: World, count: int, start: int = 0) -> None:
    for first in range(start, start + count, 500):
        events = [
            {
                "id": f"signup-{n}",
                "type": "signed_up",
                "customer": {"id": f"c-{n}", "email": f"c{n}@example.com"},
            }
            for n in range(first, min(first + 500, start + count))
        ]
        response = post_event(
            world.client, "web", world.secrets["web"], {"events": events}, path="/batch"
        )
        assert response.status_code == 200
        assert response.get_json()["accepted"] == len(events)
    work_all(world.redis)
    world.session.rollback()


def _publish(world: World, journey, document, choices=None):
    ctx = lifecycle.check_context(world.session, world.settings.webhook_allowed_hosts)
    lifecycle.replace_draft(world.session, journey, document, ctx, None)
    version, move = lifecycle.publish_with_plan(
        world.session, journey, ctx, None, choices
    )
    world.session.commit()
    if move is not None:
        drains.enqueue_move(world.redis, move.id)
    work_all(world.redis)
    world.session.rollback()
    world.session.expire_all()  # the session read these rows before the workers changed them
    return version, move


def _runs(world: World):
    return list(world.session.scalars(select(Run).order_by(Run.id)))


def test_a_thousand_waiting_runs_move_once_and_their_timers_fire_once(
    live, monkeypatch
):
    monkeypatch.setattr(drains, "MOVE_BATCH", 300)  # several batches
    journey = live.publish(_document("P1D"))
    _sign_up(live, 1000)
    assert {(r.status, r.current_node) for r in _runs(live)} == {
        (RunStatus.waiting, "hold")
    }

    before = utcnow()
    version, move = _publish(live, journey, _document("PT2H", "Hello again"))

    runs = _runs(live)
    assert len(runs) == 1000
    assert {r.version_id for r in runs} == {version.id}
    # a changed wait starts anew at the move
    assert all(
        before + timedelta(hours=2) <= r.wake_at <= utcnow() + timedelta(hours=2)
        for r in runs
    )
    moved_steps = live.session.scalars(
        select(Step).where(Step.outcome == "moved")
    ).all()
    assert len(moved_steps) == 1000
    assert len({s.run_id for s in moved_steps}) == 1000
    # a moved run's steps stay in the trace of the event that started it
    traces = {r.id: tracing.trace_id(r.traceparent) for r in runs}
    assert all(s.trace_id and s.trace_id == traces[s.run_id] for s in moved_steps)
    assert moved_steps[0].detail["reason"] == (
        "moved from v1 'Wait' to v2 'Wait' when version 2 was published"
    )
    finished = live.session.get(RunMove, move.id)
    assert finished.status is MoveStatus.done
    assert finished.moved == finished.planned == {f"{_v1(live, journey)}:hold": 1000}

    live.later(timedelta(hours=2, seconds=1))
    live.later(timedelta(0))  # a sweep fires up to 500 runs
    live.later(timedelta(0))
    deliveries = live.deliveries()
    assert len(deliveries) == 1000
    assert {d.payload["body"]["message"]["subject"] for d in deliveries} == {
        "Hello again"
    }
    assert {d.payload["body"]["journey"]["version"] for d in deliveries} == {2}
    received = live.recorders["email"].delivered()
    assert len(received) == 1000
    assert len({r["headers"]["webhook-id"] for r in received}) == 1000
    live.session.expire_all()
    assert {r.status for r in _runs(live)} == {RunStatus.completed}


def _v1(world: World, journey) -> int:
    return world.session.scalar(
        select(JourneyVersion.id).where(
            JourneyVersion.journey_id == journey.id, JourneyVersion.number == 1
        )
    )


def test_an_unchanged_step_keeps_its_wait_and_a_plan_can_send_customers_out(live):
    journey = live.publish(_document("P1D"))
    _sign_up(live, 6)
    wakes = {r.id: r.wake_at for r in _runs(live)}

    _publish(live, journey, _document("P1D", "Hello v2"))
    runs = _runs(live)
    assert {r.id: r.wake_at for r in runs} == wakes  # the same wait goes on
    assert {r.version_id for r in runs} != {_v1(live, journey)}

    _publish(live, journey, _document("P1D", "Hello v3"), {"hold": "exit"})
    runs = _runs(live)
    assert {r.status for r in runs} == {RunStatus.exited}
    exited = live.session.scalars(select(Step).where(Step.outcome == "exited")).all()
    assert len(exited) == 6
    assert exited[0].detail["reason"] == (
        "moved out of the journey from v2 'Wait' when version 3 was published"
    )
    live.later(timedelta(days=2))
    assert live.deliveries() == []
    audit = live.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "journey.move_runs")
    ).all()
    assert [a.detail["plan"] for a in audit] == [
        {"v1:hold": "hold"},
        {"v2:hold": "exit"},
    ]


def test_a_run_moved_to_an_action_step_performs_it_once(live):
    journey = live.publish(_document("P1D"))
    _sign_up(live, 3)
    _publish(live, journey, _document("P1D", "Moved straight on"), {"hold": "mail"})
    assert {r.status for r in _runs(live)} == {RunStatus.completed}
    deliveries = live.deliveries()
    assert len(deliveries) == 3
    assert {d.payload["body"]["message"]["subject"] for d in deliveries} == {
        "Moved straight on"
    }
    drains.recover(runtime.current())
    work_all(live.redis)
    assert len(live.recorders["email"].delivered()) == 3


def test_stay_keeps_runs_on_their_version(live):
    journey = live.publish(_document("P1D"))
    _sign_up(live, 2)
    v1 = _v1(live, journey)
    _, move = _publish(live, journey, _document("PT5H"), {"hold": "stay"})
    assert move is None
    assert {r.version_id for r in _runs(live)} == {v1}
    live.later(timedelta(days=1, seconds=1))
    assert {d.payload["body"]["journey"]["version"] for d in live.deliveries()} == {1}


def test_a_plan_applied_while_events_arrive_moves_or_advances_each_run_once(
    live, monkeypatch
):
    monkeypatch.setattr(drains, "MOVE_BATCH", 20)  # many transactions, between events
    document = _document("P1D")
    document["nodes"][1] = {
        "id": "hold",
        "type": "wait_for_event",
        "config": {"event": "app_opened", "timeout": "P3D"},
    }
    document["edges"] = [
        {"from": "start", "to": "hold"},
        {"from": "hold", "port": "event", "to": "mail"},
        {"from": "hold", "port": "timeout", "to": "end"},
        {"from": "mail", "to": "end"},
    ]
    journey = live.publish(document)
    _sign_up(live, 300)
    changed = {**document, "nodes": [dict(n) for n in document["nodes"]]}
    changed["nodes"][1] = {
        "id": "hold",
        "type": "wait_for_event",
        "config": {"event": "app_opened", "timeout": "P5D"},
    }
    rt = runtime.current()
    with rt.database.session(writer=True) as session:
        ctx = lifecycle.check_context(session, live.settings.webhook_allowed_hosts)
        mine = session.get(type(journey), journey.id)
        lifecycle.replace_draft(session, mine, changed, ctx, None)
        _version, move = lifecycle.publish_with_plan(session, mine, ctx, None)
        move_id = move.id
    mover = threading.Thread(target=drains.move_runs, args=(rt, move_id))
    mover.start()
    for first in range(0, 300, 30):  # customers with an even number open the app
        for n in range(first, first + 30, 2):
            post_event(
                live.client,
                "web",
                live.secrets["web"],
                {"type": "app_opened", "customer": {"id": f"c-{n}"}},
            )
        work_all(live.redis)
    mover.join()
    work_all(live.redis)
    live.session.rollback()
    live.session.expire_all()
    move = live.session.get(RunMove, move_id)

    deliveries = live.deliveries()
    assert (
        len(deliveries) == 150
    )  # one per customer who opened the app, on either version
    assert len({d.customer_id for d in deliveries}) == 150
    runs = _runs(live)
    waiting = [r for r in runs if r.status is RunStatus.waiting]
    assert len(waiting) == 150
    assert {r.current_node for r in waiting} == {"hold"}
    v2 = live.session.scalar(
        select(JourneyVersion.id).where(
            JourneyVersion.journey_id == journey.id, JourneyVersion.number == 2
        )
    )
    assert {r.version_id for r in waiting} == {v2}
    moved = live.session.scalar(
        select(func.count()).select_from(Step).where(Step.outcome == "moved")
    )
    assert 150 <= moved <= 300  # those who opened before their turn were not moved
    assert live.session.get(RunMove, move.id).status is MoveStatus.done


def test_the_api_shows_the_plan_and_refuses_a_bad_one(live, client, session):
    journey = live.publish(_document("P1D"))
    _sign_up(live, 4)
    api = api_client(client, session, Role.marketer)
    draft = _document("PT3H")
    draft["nodes"].insert(
        2, {"id": "pause", "type": "wait", "config": {"duration": "PT1H"}}
    )
    draft["edges"] = [
        {"from": "start", "to": "hold"},
        {"from": "hold", "to": "pause"},
        {"from": "pause", "to": "mail"},
        {"from": "mail", "to": "end"},
    ]
    assert (
        api.put(f"/api/v1/journeys/{journey.id}/draft", json=draft).status_code == 200
    )
    plan = api.get(f"/api/v1/journeys/{journey.id}/publish-plan").get_json()
    assert plan["from_versions"] == [1]
    assert plan["targets"] == ["hold", "pause", "mail", "end"]
    assert plan["steps"] == [
        {
            "version": 1,
            "node": "hold",
            "type": "wait",
            "label": "Wait",
            "summary": "Wait 1 day",
            "waiting": 4,
            "default": "hold",
        }
    ]
    assert plan["moving"] is None

    unknown = api.post(
        f"/api/v1/journeys/{journey.id}/publish", json={"migrate": {"nope": "pause"}}
    )
    assert unknown.status_code == 422
    assert unknown.get_json()["error"]["field"] == "migrate.nope"
    trigger = api.post(
        f"/api/v1/journeys/{journey.id}/publish", json={"migrate": {"hold": "start"}}
    )
    assert trigger.status_code == 422
    assert trigger.get_json()["error"]["field"] == "migrate.hold"
    assert session.scalar(select(func.count()).select_from(JourneyVersion)) == 1

    published = api.post(
        f"/api/v1/journeys/{journey.id}/publish", json={"migrate": {"v1:hold": "pause"}}
    )
    assert published.status_code == 200
    body = published.get_json()
    assert body["version"] == 2 and body["migrated"] == {"hold": 4}
    work_all(live.redis)
    session.rollback()
    customer = api.get("/api/v1/customers/id:c-1").get_json()
    assert [(r["version"], r["node"]) for r in customer["runs"]] == [(2, "pause")]


def test_the_publish_page_offers_a_choice_per_step_and_publishes_the_plan(
    live, client, session
):
    from tests.factories import csrf_token, login, make_user

    journey = live.publish(_document("P1D"))
    _sign_up(live, 5)
    ctx = lifecycle.check_context(session, live.settings.webhook_allowed_hosts)
    lifecycle.replace_draft(session, journey, _document("PT2H", "New words"), ctx, None)
    session.commit()
    login(client, make_user(session, Role.marketer, email="m@example.com"))
    page = client.get(f"/journeys/{journey.id}/publish").get_data(as_text=True)
    key = f"{_v1(live, journey)}:hold"
    assert f'name="move-{key}"' in page
    assert (
        '<option value="hold" data-sentence="5 customers waiting at &#39;Wait&#39; (version 1) will wait 2 hours, counted from now, at &#39;Wait&#39; in version 2." selected>'
        in page
    )
    assert (
        "5 customers waiting at &#39;Wait&#39; (version 1) leave the journey now."
        in page
    )

    answer = client.post(
        f"/journeys/{journey.id}/publish",
        data={
            "csrf_token": csrf_token(client, f"/journeys/{journey.id}/publish"),
            f"move-{key}": "exit",
        },
    )
    assert answer.status_code == 302
    shown = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "Moving 5 customers already in it as planned." in shown
    assert "Moving customers to the new version: 0 of 5 so far." in shown
    work_all(live.redis)
    session.rollback()
    session.expire_all()
    assert {r.status for r in _runs(live)} == {RunStatus.exited}
    progress = client.get(f"/journeys/{journey.id}/moving").get_data(as_text=True)
    assert "Moved 5 customers to the new version." in progress
    assert "hx-trigger" not in progress


def test_rolling_back_is_restoring_an_older_version_and_publishing_it_with_a_plan(live):
    journey = live.publish(_document("P1D", "First words"))
    _sign_up(live, 4)
    _publish(live, journey, _document("PT2H", "Wrong words"))
    assert {r.wake_at <= utcnow() + timedelta(hours=2) for r in _runs(live)} == {True}

    ctx = lifecycle.check_context(live.session, live.settings.webhook_allowed_hosts)
    lifecycle.restore_version(live.session, journey, 1, ctx, None)
    version, move = lifecycle.publish_with_plan(live.session, journey, ctx, None)
    live.session.commit()
    drains.enqueue_move(live.redis, move.id)
    work_all(live.redis)
    live.session.rollback()
    live.session.expire_all()

    assert version.number == 3
    runs = _runs(live)
    assert {r.version_id for r in runs} == {version.id}
    assert all(r.wake_at > utcnow() + timedelta(hours=23) for r in runs)  # P1D again
    reasons = live.session.scalars(
        select(Step.detail).where(Step.outcome == "moved").order_by(Step.id)
    ).all()
    assert [d["from_version"] for d in reasons] == [1] * 4 + [2] * 4
    live.later(timedelta(days=1, seconds=1))
    assert {d.payload["body"]["message"]["subject"] for d in live.deliveries()} == {
        "First words"
    }
