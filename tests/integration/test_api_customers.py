"""Customers through the API, after real events went through the engine."""

import pytest
from sqlalchemy import select

from engine.models import (
    AuditEntry,
    Customer,
    Delivery,
    Event,
    Identity,
    Role,
    Run,
    Step,
)
from tests.factories import api_client
from tests.world import CART, World, sample


@pytest.fixture
def live(client, session, settings, redis_client, engine_runtime):
    from tests.channels import Recorder

    with Recorder() as desk, Recorder() as email, Recorder() as sms:
        world = World(
            client,
            session,
            settings,
            redis_client,
            {"support-desk": desk, "email": email, "sms": sms},
        )
        yield world


def test_a_customer_by_any_identifier_with_runs_and_a_timeline(live, client, session):
    from datetime import timedelta

    journey = live.publish(sample())
    live.post(CART)
    live.later(timedelta(hours=2))
    api = api_client(client, session, Role.viewer)
    by_email = api.get("/api/v1/customers/email:ADA@example.com").get_json()
    by_id = api.get("/api/v1/customers/id:c-42").get_json()
    assert by_email == by_id
    assert {(i["kind"], i["value"]) for i in by_email["identities"]} == {
        ("id", "c-42"),
        ("email", "ada@example.com"),
    }
    assert by_email["traits"]["tier"] == "vip"
    assert (
        by_email["runs"][0]["journey_id"] == journey.id
        and by_email["runs"][0]["status"] == "completed"
    )
    assert (
        api.get(f"/api/v1/customers/{by_email['id']}").get_json()["id"]
        == by_email["id"]
    )
    timeline = api.get("/api/v1/customers/email:ada@example.com/timeline").get_json()[
        "items"
    ]
    kinds = [item["kind"] for item in timeline]
    assert {"event", "step", "delivery"} <= set(kinds)
    assert [item["at"] for item in timeline] == sorted(
        (item["at"] for item in timeline), reverse=True
    )
    delivery = next(item for item in timeline if item["kind"] == "delivery")
    assert delivery["status"] == "delivered" and delivery["node"] == "call"
    assert api.get("/api/v1/customers/email:nobody@example.com").status_code == 404
    assert api.get("/api/v1/customers/nonsense").status_code == 400


def test_consent_is_set_audited_and_honoured(live, client, session):
    from datetime import timedelta

    live.publish(sample())
    live.post({"type": "hello", "customer": {"id": "c-42"}})
    marketer = api_client(client, session, Role.marketer)
    response = marketer.put(
        "/api/v1/customers/id:c-42/consent", json={"support-desk": False}
    )
    assert response.status_code == 200 and response.get_json()["consent"] == {
        "support-desk": False
    }
    assert (
        marketer.put(
            "/api/v1/customers/id:c-42/consent", json={"sms": "no"}
        ).get_json()["error"]["field"]
        == "consent.sms"
    )
    assert marketer.put("/api/v1/customers/id:c-42/consent", json=[]).status_code == 422
    live.post(CART)
    live.later(timedelta(hours=2))
    timeline = marketer.get("/api/v1/customers/id:c-42/timeline").get_json()["items"]
    suppressed = [i for i in timeline if i["kind"] == "delivery"]
    assert (
        suppressed[0]["status"] == "suppressed"
        and suppressed[0]["reason"] == "consent_withdrawn"
    )
    assert any(
        i["kind"] == "profile" and i["action"] == "customer.consent" for i in timeline
    )


def test_erasure_removes_the_profile_and_everything_about_it(live, client, session):
    from datetime import timedelta

    live.publish(sample())
    live.post(CART)
    live.later(timedelta(hours=2))
    assert (
        api_client(client, session, Role.marketer)
        .delete("/api/v1/customers/id:c-42")
        .status_code
        == 403
    )
    admin = api_client(client, session, Role.admin)
    response = admin.delete("/api/v1/customers/id:c-42")
    assert response.status_code == 200
    removed = response.get_json()["removed"]
    assert (
        removed["events"] == 1
        and removed["runs"] == 1
        and removed["deliveries"] == 1
        and removed["identities"] == 2
    )
    session.rollback()
    for model in (Customer, Identity, Event, Run, Step, Delivery):
        assert session.scalars(select(model)).all() == [], model.__name__
    entry = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "customer.erase")
    ).one()
    assert "ada@example.com" not in str(entry.detail)
    assert admin.get("/api/v1/customers/id:c-42").status_code == 404
