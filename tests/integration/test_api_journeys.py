import copy
import json

import pytest
from sqlalchemy import select

from engine.crypto import SecretBox
from engine.journeys.starters import FOLDER as STARTERS
from engine.models import AuditEntry, JourneyVersion, Role
from tests.factories import api_client, make_channels
from tests.world import CART

DATA = STARTERS


def sample(name="cart_recovery"):
    return json.loads((DATA / f"{name}.json").read_text())


@pytest.fixture
def api(client, session, settings):
    make_channels(
        session,
        SecretBox(settings.encryption_key),
        "email",
        "sms",
        "support-desk",
        "app",
    )
    return api_client(client, session, Role.marketer)


def test_create_get_publish_pause_resume(api, session):
    created = api.post("/api/v1/journeys", json=sample())
    assert created.status_code == 201
    journey_id = created.get_json()["id"]
    assert created.get_json()["draft"] == sample()
    assert created.headers["Location"].endswith(f"/api/v1/journeys/{journey_id}")

    shown = api.get(f"/api/v1/journeys/{journey_id}").get_json()
    assert (
        shown["status"] == "draft" and shown["live"] is None and shown["problems"] == []
    )

    published = api.post(f"/api/v1/journeys/{journey_id}/publish")
    assert published.status_code == 200 and published.get_json() == {
        "version": 1,
        "status": "live",
        "migrated": {},
    }
    live = api.get(f"/api/v1/journeys/{journey_id}").get_json()["live"]
    assert live["version"] == 1 and live["document"] == sample()

    assert api.post(f"/api/v1/journeys/{journey_id}/publish").get_json() == {
        "version": 1,
        "status": "live",
        "migrated": {},
    }  # unchanged

    changed = sample()
    changed["nodes"][1]["config"]["timeout"] = "PT2H"
    assert (
        api.put(f"/api/v1/journeys/{journey_id}/draft", json=changed).status_code == 200
    )
    assert api.post(f"/api/v1/journeys/{journey_id}/publish").get_json()["version"] == 2
    versions = session.scalars(
        select(JourneyVersion).order_by(JourneyVersion.number)
    ).all()
    assert [v.document["nodes"][1]["config"]["timeout"] for v in versions] == [
        "PT1H",
        "PT2H",
    ]  # v1 untouched

    assert api.post(f"/api/v1/journeys/{journey_id}/pause").get_json() == {
        "version": 2,
        "status": "paused",
    }
    assert api.post(f"/api/v1/journeys/{journey_id}/pause").status_code == 409
    assert (
        api.post(f"/api/v1/journeys/{journey_id}/resume").get_json()["status"] == "live"
    )
    assert api.post(f"/api/v1/journeys/{journey_id}/resume").status_code == 409
    session.rollback()  # end the read transaction: see what the app committed since
    actions = [
        e.action for e in session.scalars(select(AuditEntry).order_by(AuditEntry.id))
    ]
    assert actions[-6:] == [
        "journey.create",
        "journey.publish",
        "journey.draft",
        "journey.publish",
        "journey.pause",
        "journey.resume",
    ]


def test_an_invalid_document_gets_422_with_every_problem_by_node(api):
    broken = sample()
    broken["nodes"][1]["config"]["timeout"] = "an hour"
    broken["nodes"][3]["config"]["channel"] = "fax"
    broken["edges"].pop()
    response = api.post("/api/v1/journeys", json=broken)
    assert response.status_code == 422
    problems = response.get_json()["problems"]
    assert {p["node"] for p in problems} == {"wait", "call", "mail"}
    assert all(p["message"] for p in problems)


def test_an_unreadable_document_gets_422_too(api):
    response = api.post("/api/v1/journeys", json={"nodes": "many"})
    assert response.status_code == 422
    problems = response.get_json()["problems"]
    assert {
        "field": "nodes",
        "message": "the journey's steps cannot be read from the file",
    }.items() <= next(p for p in problems if p.get("field") == "nodes").items()
    assert (
        api.post(
            "/api/v1/journeys", data="nope", content_type="application/json"
        ).status_code
        == 400
    )


def test_a_draft_with_problems_is_saved_but_not_published(api):
    journey_id = api.post("/api/v1/journeys", json=sample()).get_json()["id"]
    broken = sample()
    broken["edges"] = broken["edges"][:-1]
    saved = api.put(f"/api/v1/journeys/{journey_id}/draft", json=broken)
    assert saved.status_code == 200
    assert saved.get_json()["problems"] == [
        {
            "node": "mail",
            "message": "connect its output to the next step",
            "field": "port.out",
        }
    ]
    refused = api.post(f"/api/v1/journeys/{journey_id}/publish")
    assert (
        refused.status_code == 422
        and refused.get_json()["problems"][0]["node"] == "mail"
    )


def test_a_stale_revision_is_refused_and_loses_nothing(api):
    created = api.post("/api/v1/journeys", json=sample()).get_json()
    journey_id, revision = created["id"], created["revision"]
    first = sample()
    first["name"] = "First tab"
    assert (
        api.put(
            f"/api/v1/journeys/{journey_id}/draft",
            json=first,
            headers={"If-Match": str(revision)},
        ).status_code
        == 200
    )
    second = sample()
    second["name"] = "Second tab"
    stale = api.put(
        f"/api/v1/journeys/{journey_id}/draft",
        json=second,
        headers={"If-Match": str(revision)},
    )
    assert stale.status_code == 412 and "reload" in stale.get_json()["error"]["message"]
    assert api.get(f"/api/v1/journeys/{journey_id}").get_json()["name"] == "First tab"
    assert (
        api.put(
            f"/api/v1/journeys/{journey_id}/draft",
            json=second,
            headers={"If-Match": "x"},
        ).status_code
        == 400
    )


def test_simulate_takes_the_right_path_and_writes_nothing(api, session):
    journey_id = api.post("/api/v1/journeys", json=sample()).get_json()["id"]
    audit_before = len(session.scalars(select(AuditEntry)).all())
    response = api.post(
        f"/api/v1/journeys/{journey_id}/simulate",
        json={
            "customer": {"traits": {"first_name": "Ada", "tier": "vip"}},
            "events": [
                {
                    "type": "cart_abandoned",
                    "properties": {"cart_value": 120},
                    "after": "PT0S",
                }
            ],
        },
    )
    assert response.status_code == 200
    result = response.get_json()
    assert [s["node"] for s in result["steps"]] == [
        "start",
        "wait",
        "wait",
        "vip",
        "call",
        "end",
    ]
    assert (
        result["sends"][0]["message"] == {"task": "Call Ada"}
        and result["final"] == "completed"
    )
    assert len(session.scalars(select(AuditEntry)).all()) == audit_before

    assert (
        api.post(
            f"/api/v1/journeys/{journey_id}/simulate", json={"version": "live"}
        ).status_code
        == 409
    )
    bad = api.post(
        f"/api/v1/journeys/{journey_id}/simulate",
        json={"events": [{"type": "x", "after": "soon"}]},
    )
    assert (
        bad.status_code == 422 and bad.get_json()["error"]["field"] == "events[0].after"
    )
    assert (
        api.post(
            f"/api/v1/journeys/{journey_id}/simulate", json={"version": "first"}
        ).get_json()["error"]["field"]
        == "version"
    )
    assert api.post("/api/v1/journeys/999/simulate", json={}).status_code == 404


def test_list_and_unknown_journeys(api):
    for name in ("cart_recovery", "onboarding"):
        api.post("/api/v1/journeys", json=sample(name))
    listed = api.get("/api/v1/journeys").get_json()
    assert [j["name"] for j in listed["journeys"]] == [
        "Cart recovery",
        "Onboarding across email and app",
    ]
    assert api.get("/api/v1/journeys?status=live").get_json()["total"] == 0
    assert api.get("/api/v1/journeys?status=happy").status_code == 422
    assert api.get("/api/v1/journeys/999").status_code == 404
    assert api.put("/api/v1/journeys/999/draft", json=sample()).status_code == 404


def test_viewers_read_but_cannot_change_journeys(client, session, api):
    journey_id = api.post("/api/v1/journeys", json=sample()).get_json()["id"]
    viewer = api_client(client, session, Role.viewer)
    assert viewer.get(f"/api/v1/journeys/{journey_id}").status_code == 200
    assert viewer.post(f"/api/v1/journeys/{journey_id}/publish").status_code == 403
    assert (
        viewer.post("/api/v1/journeys", json=copy.deepcopy(sample())).status_code == 403
    )


def test_journey_stats_count_runs_and_nodes(world, client, session):
    from datetime import timedelta

    journey = world.publish(sample())
    world.post(CART)
    world.post({**CART, "customer": {"id": "c-2"}, "traits": {"tier": "standard"}})
    world.post({**CART, "customer": {"id": "c-3"}})
    world.post({"type": "order_completed", "customer": {"id": "c-3"}})
    api = api_client(client, session, Role.viewer)
    before = api.get(f"/api/v1/journeys/{journey.id}/stats").get_json()
    assert (
        before["entered"] == 3
        and before["active"] == 2
        and before["completed"] == 1
        and before["converted"] == 1
    )
    assert before["nodes"]["wait"] == {
        "entered": 3,
        "waiting": 2,
        "completed": 1,
        "failed": 0,
    }
    world.later(timedelta(hours=2))
    after = api.get(f"/api/v1/journeys/{journey.id}/stats").get_json()
    assert after["active"] == 0 and after["completed"] == 3
    assert after["nodes"]["vip"]["completed"] == 2
    assert (
        after["nodes"]["call"]["entered"] == 1
        and after["nodes"]["mail"]["entered"] == 1
    )
    assert api.get("/api/v1/journeys/999/stats").status_code == 404
