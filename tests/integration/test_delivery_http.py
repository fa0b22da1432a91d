"""A delivery's HTTP call: redirects are answers, not followed; a refused request is retried."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from engine.delivery import PERMANENT, Claimed
from engine.delivery.sender import Sender
from tests.channels import Recorder


def _claimed(url: str, **changes: Any) -> Claimed:
    fields: dict[str, Any] = {
        "id": "dlv_1",
        "kind": "send",
        "attempts": 1,
        "body": {"message": {"subject": "Hi"}},
        "headers": {},
        "url": url,
        "channel_id": 41,
        "channel_slug": "email",
        "channel_enabled": True,
        "secret": None,
        "consent": True,
        "deadline_at": None,
    }
    return Claimed(**{**fields, **changes})


def test_a_redirect_is_a_failed_answer_and_is_not_followed(settings, redis_client):
    with Recorder() as target:

        class Redirect(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("content-length", 0)))
                self.send_response(307)
                self.send_header("location", target.url)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        sender = Sender(settings, redis_client)
        try:
            outcome = sender.attempt(
                _claimed(f"http://127.0.0.1:{server.server_port}/actions"),
                datetime.now(UTC),
            )
        finally:
            sender.close()
            server.shutdown()
            server.server_close()
        assert (outcome.status, outcome.reason, outcome.response_status) == (
            "failed",
            PERMANENT,
            307,
        )
        assert target.received == []


def test_a_header_the_client_refuses_is_retried_not_raised(settings, redis_client):
    with Recorder() as channel:
        sender = Sender(settings, redis_client)
        try:
            outcome = sender.attempt(
                _claimed(channel.url, headers={"x-note": "two\r\nlines"}),
                datetime.now(UTC),
            )
        finally:
            sender.close()
    assert outcome.status == "retry" and "ValueError" in (outcome.error or "")
    assert channel.received == []
