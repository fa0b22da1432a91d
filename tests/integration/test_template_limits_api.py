"""A template too big to render is refused when the journey is saved and fails its step,
named, when a simulation's data makes it grow."""

import pytest

from engine.crypto import SecretBox
from engine.models import Role
from tests.factories import api_client, make_channels

pytestmark = pytest.mark.security


@pytest.fixture
def api(client, session, settings):
    make_channels(session, SecretBox(settings.encryption_key), "email")
    return api_client(client, session, Role.marketer)


def document(body):
    return {
        "schema": "throughline.journey/v1",
        "name": "Limits",
        "nodes": [
            {"id": "start", "type": "trigger", "config": {"event": "signed_up"}},
            {
                "id": "mail",
                "type": "send",
                "label": "Send email",
                "config": {"channel": "email", "message": {"body": body}},
            },
            {"id": "end", "type": "exit", "config": {}},
        ],
        "edges": [{"from": "start", "to": "mail"}, {"from": "mail", "to": "end"}],
    }


def test_saving_a_range_too_large_is_refused_on_its_step(api):
    response = api.post(
        "/api/v1/journeys", json=document("{{ (1..10000000) | join: '' | size }}")
    )
    assert response.status_code == 422
    [problem] = response.get_json()["problems"]
    assert problem["node"] == "mail"
    assert problem["message"].startswith("Step 'Send email': a list or range of more")


def test_a_simulation_whose_data_grows_the_message_fails_that_step(api):
    body = "{{ customer.traits.s | replace: 'x', customer.traits.s | size }}"
    journey_id = api.post("/api/v1/journeys", json=document(body)).get_json()["id"]
    response = api.post(
        f"/api/v1/journeys/{journey_id}/simulate",
        json={
            "customer": {"traits": {"s": "x" * 1000}},
            "events": [{"type": "signed_up", "after": "PT0S"}],
        },
    )
    assert response.status_code == 200
    result = response.get_json()
    assert result["sends"] == []
    [failed] = [s for s in result["steps"] if s["node"] == "mail"]
    assert failed["outcome"] == "failed"
    assert failed["detail"]["reason"].startswith(
        "Step 'Send email': the message grew too large"
    )
