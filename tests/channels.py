"""Test helpers for channels: signing requests as a channel would, and a recording channel."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from engine.intake import store

_ids = count(1)


def signed_headers(
    secret: str, data: str, webhook_id: str | None = None, at: datetime | None = None
) -> dict[str, str]:
    webhook_id = webhook_id or f"msg-{next(_ids)}-{time.time_ns()}"
    at = at or datetime.now(UTC)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(webhook_id, at, data),
        "content-type": "application/json",
    }


def refuse_storing(monkeypatch: pytest.MonkeyPatch, refused: str = "refused") -> None:
    """The database refuses any insert holding the event whose webhook id is `refused`."""
    real = store.store_events

    def refusing(connection: Any, channel_id: int, items: Any, *args: Any) -> Any:
        if any(item.webhook_id == refused for item in items):
            raise ValueError("the database refused it")
        return real(connection, channel_id, items, *args)

    monkeypatch.setattr(store, "store_events", refusing)


def post_event(
    client: Any,
    slug: str,
    secret: str,
    body: Any,
    webhook_id: str | None = None,
    at: datetime | None = None,
    path: str = "",
    headers: dict[str, str] | None = None,
) -> Any:
    data = body if isinstance(body, str) else json.dumps(body)
    return client.post(
        f"/hooks/{slug}{path}",
        data=data,
        headers={**signed_headers(secret, data, webhook_id, at), **(headers or {})},
    )


class _Server(ThreadingHTTPServer):
    # A worker calls a channel from all its delivery threads at once; the default backlog
    # of 5 pending connections would reset some of them.
    request_queue_size = 128


class Recorder:
    """A channel on 127.0.0.1 (or `host`) that records what it receives, verifying each
    signature.

    `answers` is a list of status codes to give, in order, before answering 200.
    """

    def __init__(self, secret: str | None = None, host: str = "127.0.0.1") -> None:
        self.secret = secret
        self.host = host
        self.received: list[dict[str, Any]] = []
        self.answers: list[int] = []
        self.bad_signatures = 0
        self.lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length", 0))
                raw = self.rfile.read(length)
                if len(raw) < length:
                    # The sender died mid-request (a worker killed with kill -9): a channel
                    # gets no request at all, and the retry brings the whole one.
                    self.close_connection = True
                    return
                data = raw.decode()
                headers = {k.lower(): v for k, v in self.headers.items()}
                with recorder.lock:
                    status = recorder.answers.pop(0) if recorder.answers else 200
                    if recorder.secret:
                        try:
                            Webhook(recorder.secret).verify(data, headers)
                        except Exception:
                            recorder.bad_signatures += 1
                            status = 401
                    recorder.received.append(
                        {"status": status, "headers": headers, "body": json.loads(data)}
                    )
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = _Server((host, 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.server.server_port}/actions"

    def __enter__(self) -> Recorder:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def delivered(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.received if 200 <= r["status"] < 300]
