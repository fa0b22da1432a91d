"""The webhook node end to end: rendered call to an allowed host, retries, and the SSRF guard."""

import socket

import pytest
from sqlalchemy import select

from engine import delivery
from engine.models import Customer, DeliveryStatus, Role, Step
from tests.channels import Recorder, post_event
from tests.conftest import make_settings, work_all
from tests.factories import api_client
from tests.world import World

SIGNED_UP = {
    "type": "signed_up",
    "customer": {"id": "c-7", "email": "grace@example.com"},
    "traits": {"first_name": "Grace"},
}


@pytest.fixture
def settings(tmp_path, database_url, redis_url):
    return make_settings(
        tmp_path / "home",
        database_url,
        redis_url,
        THROUGHLINE_WEBHOOK_ALLOWED_HOSTS="127.0.0.1",
    )


@pytest.fixture
def crm():
    with Recorder() as recorder:
        yield recorder


@pytest.fixture
def world(client, session, settings, redis_client, engine_runtime):
    return World(client, session, settings, redis_client, {})


def journey(url):
    return {
        "schema": "throughline.journey/v1",
        "name": "Tell the CRM",
        "nodes": [
            {"id": "start", "type": "trigger", "config": {"event": "signed_up"}},
            {
                "id": "crm",
                "type": "webhook",
                "config": {
                    "url": url,
                    "body": {"greeting": "Welcome {{ customer.traits.first_name }}"},
                    "headers": {"x-customer": "{{ customer.id }}"},
                },
            },
            {
                "id": "flag",
                "type": "update_profile",
                "config": {"set": {"crm_failed": True}},
            },
            {"id": "end", "type": "exit", "config": {}},
        ],
        "edges": [
            {"from": "start", "to": "crm"},
            {"from": "crm", "to": "end"},
            {"from": "crm", "port": "error", "to": "flag"},
            {"from": "flag", "to": "end"},
        ],
    }


def test_a_webhook_node_calls_an_allowed_host_with_its_rendered_body(world, crm):
    world.publish(journey(crm.url))
    crm.answers = [503]  # the first attempt fails and is retried with the same id
    world.post(SIGNED_UP)
    world.retry_now()

    (row,) = world.deliveries()
    assert row.kind == "webhook" and row.status == DeliveryStatus.delivered
    assert row.attempts == 2 and row.response_status == 200
    calls = crm.received
    assert [c["status"] for c in calls] == [503, 200]
    assert {c["headers"]["webhook-id"] for c in calls} == {row.id}
    assert calls[-1]["headers"]["x-customer"] == "c-7"
    assert calls[-1]["body"] == {"delivery_id": row.id, "greeting": "Welcome Grace"}
    assert ("crm", "out") in world.steps() and ("end", "completed") in world.steps()


def test_a_host_resolving_to_a_private_address_is_refused_at_send_time(
    world, crm, monkeypatch
):
    """A public name passes at save time; if DNS later answers a private address, no call."""
    real = socket.getaddrinfo

    def rebinding(host, *args, **kwargs):
        if host == "hooks.example.com":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", 443))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    world.publish(journey("https://hooks.example.com/events"))
    world.post(SIGNED_UP)

    (row,) = world.deliveries()
    assert row.status == DeliveryStatus.failed
    assert row.reason == delivery.BLOCKED
    assert row.last_error == "refused: hooks.example.com is not a public address"
    assert crm.received == []
    assert world.steps()[-3:] == [
        ("crm", "error"),
        ("flag", "out"),
        ("end", "completed"),
    ]
    customer = world.session.scalars(select(Customer)).one()
    assert customer.traits["crm_failed"] is True


@pytest.mark.security
def test_a_viewer_reads_could_not_connect_on_the_timeline(world, client, session):
    """No socket error, address or port reaches the timeline: it would map private ports."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    world.publish(journey(f"http://127.0.0.1:{port}/in"))
    world.post(SIGNED_UP)

    (row,) = world.deliveries()
    assert (
        row.status == DeliveryStatus.pending and row.last_error == "could not connect"
    )
    viewer = api_client(client, session, Role.viewer)
    items = viewer.get("/api/v1/customers/id:c-7/timeline").get_json()["items"]
    (shown,) = [item for item in items if item.get("kind") == "delivery"]
    assert shown["last_error"] == "could not connect"
    for detail in ("Errno", "refused", "NewConnectionError", "host="):
        assert detail not in str(items)


def test_the_steps_after_a_webhook_answers_keep_the_event_s_trace(world, crm):
    world.publish(journey(crm.url))
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    response = post_event(
        world.client,
        "web",
        world.secrets["web"],
        SIGNED_UP,
        headers={"traceparent": f"00-{trace}-00f067aa0ba902b7-01"},
    )
    assert response.status_code == 202
    work_all(world.redis)
    world.session.rollback()

    (call,) = crm.received
    assert call["headers"]["traceparent"].split("-")[1] == trace
    steps = world.session.execute(select(Step.node_id, Step.outcome, Step.trace_id))
    # "end" is taken once the call answered, by the drain that settled it
    assert {tuple(step) for step in steps} >= {
        ("crm", "out", trace),
        ("end", "completed", trace),
    }
