"""A request body has one length: Content-Length with Transfer-Encoding is refused."""

import json

import pytest
from werkzeug.test import Client

from engine.channels import create_channel
from engine.crypto import SecretBox
from tests.channels import post_event, signed_headers
from webapp.framing import OneBodyLength
from webapp.hooks.channels import forget
from webapp.serve import http1_settings

pytestmark = pytest.mark.security

EVENT = {"type": "signed_up", "customer": {"id": "c-1"}}


@pytest.fixture
def web(session, settings):
    forget()
    made = create_channel(
        session, SecretBox(settings.encryption_key), "web", "Web site", "web"
    )
    session.commit()
    yield made
    forget()


def test_a_webhook_with_both_lengths_is_refused(client, web):
    data = json.dumps(EVENT)
    headers = {"Transfer-Encoding": "chunked", "Content-Length": str(len(data))}
    answer = client.post(
        "/hooks/web",
        data=data,
        headers={**signed_headers(web.inbound_secret, data), **headers},
    )
    assert answer.status_code == 400
    assert answer.get_json()["error"] == {
        "code": "bad_framing",
        "message": "a request may not carry both Content-Length and Transfer-Encoding",
    }
    assert post_event(client, "web", web.inbound_secret, EVENT).status_code == 202


def test_a_chunked_body_as_granian_hands_it_over_is_refused():
    """granian drops the Content-Length of a request that also has Transfer-Encoding."""
    called = []
    app = OneBodyLength(lambda environ, start: called.append(1) or [b""])
    answer = Client(app).post(
        "/hooks/web", environ_overrides={"HTTP_TRANSFER_ENCODING": "chunked"}
    )
    assert answer.status_code == 400 and called == []
    assert "with a Content-Length header" in answer.get_json()["error"]["message"]


def test_the_server_stops_waiting_for_headers_after_ten_seconds():
    assert http1_settings().header_read_timeout == 10_000
