"""A journey's name and description have a length limit wherever a journey is saved: the
API, an import and the designer's settings form."""

import io
import json

import pytest
from sqlalchemy import select

from engine.crypto import SecretBox
from engine.journeys import lifecycle, starters
from engine.language import graph
from engine.models import Journey, Role
from tests.factories import api_client, csrf_token, login, make_channels, make_user

pytestmark = pytest.mark.security

LONG_NAME = "n" * (graph.NAME_LENGTH + 1)
LONG_DESCRIPTION = "d" * (graph.DESCRIPTION_LENGTH + 1)


def _document(**changes):
    return {**starters.document("cart_recovery"), **changes}


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"name": "x" * 3_000_000}, "name", "the name is longer than 200 characters"),
        ({"name": LONG_NAME}, "name", "the name is longer than 200 characters"),
        (
            {"description": LONG_DESCRIPTION},
            "description",
            "the description is longer than 2,000 characters",
        ),
    ],
)
def test_the_api_refuses_a_name_or_description_too_long(
    client, session, settings, changes, field, words
):
    make_channels(
        session, SecretBox(settings.encryption_key), "email", "sms", "support-desk"
    )
    api = api_client(client, session, Role.marketer)
    created = api.post("/api/v1/journeys", json=_document(**changes))
    assert created.status_code == 422
    assert [(p["field"], p["message"]) for p in created.get_json()["problems"]] == [
        (field, f"{words}; shorten it")
    ]
    journey_id = api.post("/api/v1/journeys", json=_document()).get_json()["id"]
    replaced = api.put(
        f"/api/v1/journeys/{journey_id}/draft", json=_document(**changes)
    )
    assert replaced.status_code == 422
    assert replaced.get_json()["problems"][0]["field"] == field
    session.rollback()
    assert [j.name for j in session.scalars(select(Journey))] == ["Cart recovery"]


def test_a_long_name_is_a_problem_of_the_document():
    document = graph.parse(_document(name=LONG_NAME, description=LONG_DESCRIPTION))
    found = {p.field: p.message for p in graph.validate(document)}
    assert found["name"] == "the name is longer than 200 characters; shorten it"
    assert found["description"].startswith("the description is longer than 2,000")


def test_an_import_with_a_long_name_is_refused(client, session):
    login(client, make_user(session, Role.marketer))
    upload = io.BytesIO(json.dumps(_document(name=LONG_NAME)).encode())
    answer = client.post(
        "/journeys/import",
        data={"csrf_token": csrf_token(client, "/journeys/"), "document": (upload, "j.json")},
        content_type="multipart/form-data",
    )  # fmt: skip
    assert "the name is longer than 200 characters" in answer.get_data(as_text=True)
    assert session.scalars(select(Journey)).all() == []


def test_the_settings_form_refuses_a_long_description(client, session):
    login(client, make_user(session, Role.marketer))
    journey, _ = lifecycle.create_journey(
        session,
        starters.document("cart_recovery"),
        lifecycle.check_context(session),
        None,
        allow_problems=True,
    )
    session.commit()
    token = csrf_token(client, "/journeys/")
    answer = client.post(
        f"/journeys/{journey.id}/settings",
        data={
            "csrf_token": token,
            "journey-revision": "1",
            "journey-name": "Cart recovery",
            "journey-description": LONG_DESCRIPTION,
            "journey-reentry": "after_exit",
        },
        headers={"HX-Request": "true"},
    )
    assert "the description is longer than 2,000 characters" in answer.get_data(
        as_text=True
    )
    session.rollback()
    session.expire_all()
    assert "description" not in session.get(Journey, journey.id).draft
