"""Single events answered before Flask (webapp.hooks.direct) get the Flask view's answers:
same status, body and headers, counted in the same metrics; anything else goes on to Flask."""

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import select
from werkzeug.exceptions import InternalServerError
from werkzeug.test import Client

from engine import tracing
from engine.channels import create_channel
from engine.crypto import SecretBox
from engine.models import Channel, Event
from engine.schemas import store as schema_store
from tests.channels import post_event, signed_headers
from webapp.hooks import direct
from webapp.hooks.channels import forget
from webapp.ops.metrics import REQUESTS

TRACE = "0af7651916cd43dd8448eb211c80319c"
EVENT = {
    "type": "cart_abandoned",
    "customer": {"id": "c-42"},
    "properties": {"cart_value": 120.5},
}


@pytest.fixture
def channel(session, settings):
    forget()
    made = create_channel(
        session, SecretBox(settings.encryption_key), "web", "Web", "web"
    )
    session.commit()
    return made


@pytest.fixture
def through_flask(app):
    """A client whose requests skip the middlewares and go to Flask's handling alone."""
    return Client(
        lambda environ, start: Flask.wsgi_app(app, environ, start),
        response_wrapper=app.response_class,
    )


@pytest.fixture
def flask_handled(app):
    """How many requests Flask's own request handling saw."""
    seen: list[str] = []
    app.before_request_funcs.setdefault(None, []).append(
        lambda: seen.append("flask") and None
    )
    return seen


def _shape(response):
    """What an answer says, its event id aside (each path stores its own event)."""
    body = response.get_json()
    if isinstance(body, dict) and isinstance(body.get("event_id"), int):
        body = {**body, "event_id": "an id"}
    headers = sorted(
        (name, value)
        for name, value in response.headers.items()
        if name != "Content-Length"
    )
    return response.status_code, body, headers


def _too_large():
    return {**EVENT, "properties": {"text": "x" * 300_000}}


CASES = {
    "stored": (EVENT, {}),
    "not json": ("{", {}),
    "no type": ({"customer": {"id": "c-1"}}, {}),
    "too large": (_too_large(), {}),
    "bad signature": (EVENT, {"webhook-signature": "v1,AAAA"}),
    "no signature": (EVENT, {"webhook-signature": ""}),
    "stale": (EVENT, {"at": datetime.now(UTC) - timedelta(minutes=10)}),
    "traced": (
        EVENT,
        {"traceparent": f"00-{TRACE}-b7ad6b7169203331-01"},
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_event_gets_the_same_answer_below_flask_as_through_it(
    client, through_flask, flask_handled, session, channel, case
):
    body, extra = CASES[case]
    at = extra.get("at")
    headers = {k: v for k, v in extra.items() if k != "at"}

    def send(via, webhook_id):
        return post_event(
            via,
            "web",
            channel.inbound_secret,
            body,
            webhook_id=webhook_id,
            at=at,
            headers=headers,
        )

    below = send(client, f"{case}-direct")
    assert flask_handled == []  # answered before Flask
    through = send(through_flask, f"{case}-flask")
    assert flask_handled == ["flask"]
    assert _shape(below) == _shape(through)
    assert below.headers["X-Frame-Options"] == "DENY"
    if "traceparent" in headers:  # both events carry the caller's trace
        session.rollback()
        stored = session.scalars(select(Event.traceparent).order_by(Event.id)).all()
        assert [tracing.trace_id(t) for t in stored] == [TRACE] * 2


def test_a_client_gone_mid_body_gets_the_same_400_both_ways(
    client, through_flask, flask_handled, channel
):
    data = json.dumps(EVENT)
    answers = [
        via.post(
            "/hooks/web",
            data=data,
            headers=signed_headers(channel.inbound_secret, data),
            environ_overrides={"CONTENT_LENGTH": str(len(data) + 10)},
        )
        for via in (client, through_flask)
    ]
    assert flask_handled == ["flask"]
    assert answers[0].status_code == 400
    assert _shape(answers[0]) == _shape(answers[1])


def test_a_repeat_an_unknown_channel_and_a_schema_violation_answer_alike(
    client, through_flask, flask_handled, session, channel
):
    for via, suffix in ((client, "direct"), (through_flask, "flask")):
        post_event(via, "web", channel.inbound_secret, EVENT, webhook_id=suffix)
    answers = {}
    for via, suffix in ((client, "direct"), (through_flask, "flask")):
        answers[suffix] = [
            post_event(via, "web", channel.inbound_secret, EVENT, webhook_id=suffix),
            post_event(via, "nowhere", channel.inbound_secret, EVENT),
        ]
    schema_store.save(
        session,
        "cart_abandoned",
        {
            "schema": {"type": "object", "required": ["items"]},
            "mode": "enforce",
            "channels": [],
        },
        None,
    )
    session.commit()
    schema_store.forget()
    for via, suffix in ((client, "direct"), (through_flask, "flask")):
        answers[suffix].append(post_event(via, "web", channel.inbound_secret, EVENT))
    direct_answers, flask_answers = answers["direct"], answers["flask"]
    assert [a.status_code for a in direct_answers] == [202, 404, 400]
    assert direct_answers[0].headers["Idempotent-Replayed"] == "true"
    assert direct_answers[2].get_json()["error"]["code"] == "schema_violation"
    assert [_shape(a) for a in direct_answers] == [_shape(a) for a in flask_answers]
    assert len(flask_handled) == 4  # only the requests sent through Flask


def test_over_the_rate_the_answer_is_429_with_retry_after_on_both_paths(
    client, through_flask, session, channel
):
    session.scalars(select(Channel)).one().rate_limit = 1
    session.commit()
    forget()
    answers = {
        name: [post_event(via, "web", channel.inbound_secret, EVENT) for _ in range(4)]
        for name, via in (("direct", client), ("flask", through_flask))
    }
    refusals = {
        name: next(_shape(a) for a in found if a.status_code == 429)
        for name, found in answers.items()
    }
    assert refusals["direct"] == refusals["flask"]
    assert ("Retry-After", "1") in refusals["direct"][2]


def test_answers_below_flask_are_counted_in_the_request_metrics(client, channel):
    def counted(status):
        return REQUESTS.labels("POST", "hooks.receive", status)._value.get()

    stored, refused = counted("202"), counted("401")
    assert post_event(client, "web", channel.inbound_secret, EVENT).status_code == 202
    assert post_event(client, "web", "whsec_" + "A" * 32, EVENT).status_code == 401
    assert (counted("202"), counted("401")) == (stored + 1, refused + 1)


def test_an_unexpected_failure_is_a_json_500_without_a_trace(
    client, channel, monkeypatch, caplog
):
    def broken(*args):
        raise RuntimeError("secret detail")

    monkeypatch.setattr(direct, "receive_one", broken)
    with caplog.at_level(logging.ERROR, logger="throughline.web"):
        answer = post_event(client, "web", channel.inbound_secret, EVENT)
    assert answer.status_code == 500
    assert answer.get_json() == {
        "error": {
            "code": "internal_error",
            "message": InternalServerError.description,
        }
    }
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert "secret detail" not in answer.get_data(as_text=True)
    assert "Traceback" not in answer.get_data(as_text=True)
    assert any(
        "unhandled error on POST /hooks/web" in r.message for r in caplog.records
    )


@pytest.mark.parametrize(
    "path", ["/hooks/web/", "/hooks/Web", "/hooks/web/batch", "/hooks/"]
)
def test_other_paths_go_on_to_flask(client, flask_handled, channel, path):
    data = json.dumps({"events": [{"id": "e-1", **EVENT}]})
    client.post(path, data=data)
    assert flask_handled == ["flask"]


def test_a_body_without_content_length_goes_on_to_flask(app, flask_handled, channel):
    answer = Client(app.wsgi_app, response_wrapper=app.response_class).post(
        "/hooks/web", environ_overrides={"CONTENT_LENGTH": ""}
    )
    assert flask_handled == ["flask"]
    assert answer.status_code == 400
    assert answer.get_json()["error"]["code"] == "missing_headers"
