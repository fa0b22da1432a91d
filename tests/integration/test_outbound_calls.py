"""Outbound calls at send time: only checked addresses are connected to, whatever the URL's
spelling or DNS's next answer, and a failed call says "could not connect", nothing more."""

from __future__ import annotations

import html
import logging
import re
import socket
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select

from engine import delivery
from engine.channels import create_channel
from engine.crypto import SecretBox
from engine.delivery import BLOCKED, Claimed
from engine.delivery.sender import Sender
from engine.models import Channel, Delivery, DeliveryStatus, Role, utcnow
from tests.channels import Recorder
from tests.conftest import make_settings, work_all
from tests.factories import api_client, csrf_token, login, make_user
from tests.world import World

pytestmark = pytest.mark.security


@pytest.fixture
def settings(tmp_path, database_url, redis_url):
    """A deployment's default: no private network, loopback refused."""
    return make_settings(
        tmp_path / "home",
        database_url,
        redis_url,
        THROUGHLINE_OUTBOUND_ALLOWED_NETWORKS="",
    )


def _settings_allowing(tmp_path, database_url, redis_url, networks):
    return make_settings(
        tmp_path / "other",
        database_url,
        redis_url,
        THROUGHLINE_OUTBOUND_ALLOWED_NETWORKS=networks,
    )


class Listener:
    """A bare TCP port that counts the connections reaching it (and closes each)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sock = socket.socket(
            socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM
        )
        self.sock.bind((host, port))
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            connection.close()

    def __enter__(self) -> Listener:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


def _claimed(url: str, channel: bool = False, **changes: Any) -> Claimed:
    fields: dict[str, Any] = {
        "id": "dlv_1",
        "kind": "send" if channel else "webhook",
        "attempts": 1,
        "body": {"hello": "there"},
        "headers": {},
        "url": url,
        "channel_id": 41 if channel else None,
        "channel_slug": "email" if channel else None,
        "channel_enabled": True,
        "secret": None,
        "consent": True,
        "deadline_at": None,
    }
    return Claimed(**{**fields, **changes})


def _attempt(settings, redis_client, item):
    sender = Sender(settings, redis_client)
    try:
        return sender.attempt(item, datetime.now(UTC))
    finally:
        sender.close()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- finding 1: the webhook node --------------------------------------------------------


def test_a_percent_encoded_host_never_reaches_a_local_listener(
    client, session, settings, redis_client, engine_runtime
):
    """A webhook call stored with https://%31%32%37.0.0.1:PORT/ is refused, unconnected."""
    world = World(client, session, settings, redis_client, {})
    with Listener() as listener:
        for url in (
            f"https://%31%32%37.0.0.1:{listener.port}/",
            f"https://%6c%6f%63%61%6c%68%6f%73%74:{listener.port}/x",
        ):
            session.add(
                Delivery(
                    kind="webhook",
                    url=url,
                    payload={"body": {"who": "c-1"}},
                    next_attempt_at=utcnow(),
                    created_at=utcnow(),
                )
            )
        session.commit()
        world.retry_now()
    rows = world.deliveries()
    assert listener.accepted == 0
    assert [(r.status, r.reason) for r in rows] == [
        (DeliveryStatus.failed, BLOCKED)
    ] * 2
    assert {r.last_error for r in rows} == {
        "refused: 127.0.0.1 is not a public address",
        "refused: localhost is not a public address",
    }


@pytest.mark.parametrize(
    "spelling",
    [
        "%31%32%37.0.0.1",
        "2130706433",
        "0x7f000001",
        "0177.0.0.1",
        "127.1",
        "0",
        "[::ffff:127.0.0.1]",
        "127\u30020\u30020\u30021",
        "localhost.",
    ],
)
@pytest.mark.parametrize("channel", [False, True], ids=["webhook", "channel"])
def test_no_spelling_of_loopback_is_connected_to_at_send_time(
    settings, redis_client, spelling, channel
):
    with Listener() as listener:
        outcome = _attempt(
            settings,
            redis_client,
            _claimed(f"http://{spelling}:{listener.port}/x", channel=channel),
        )
    assert (outcome.status, outcome.reason) == ("failed", BLOCKED)
    assert listener.accepted == 0


def test_an_unresolvable_host_is_refused_not_left_to_the_client(
    settings, redis_client, monkeypatch
):
    """The check finds no address: no call, even if a later lookup would find one."""
    real = socket.getaddrinfo
    lookups: list[str] = []

    def flaky(host, *args, **kwargs):
        if host == "nowhere.example":
            lookups.append(host)
            if len(lookups) == 1:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return real("127.0.0.1", *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", flaky)
    with Listener() as listener:
        outcome = _attempt(
            settings,
            redis_client,
            _claimed(f"https://nowhere.example:{listener.port}/x"),
        )
    assert listener.accepted == 0 and lookups == ["nowhere.example"]
    assert outcome.status == "retry" and outcome.error == "could not connect"


def test_the_call_goes_to_the_address_checked_whatever_dns_answers_next(
    tmp_path, database_url, redis_url, redis_client, monkeypatch
):
    """DNS rebinding: the first answer is allowed, later ones are internal; the call is
    made once, to the first, with the URL's host in the Host header."""
    settings = _settings_allowing(tmp_path, database_url, redis_url, "127.0.0.1/32")
    real = socket.getaddrinfo
    lookups: list[str] = []

    def rebinding(host, *args, **kwargs):
        if host == "rebind.example":
            lookups.append(host)
            host = "127.0.0.1" if len(lookups) == 1 else "127.0.0.2"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    with Recorder() as allowed:
        port = allowed.server.server_port
        with Listener("127.0.0.2", port) as internal:
            outcome = _attempt(
                settings,
                redis_client,
                _claimed(f"http://rebind.example:{port}/actions?x=1"),
            )
    assert outcome.status == "delivered", outcome
    assert internal.accepted == 0 and lookups == ["rebind.example"]
    (received,) = allowed.received
    assert received["headers"]["host"] == f"rebind.example:{port}"


# -- what a failed call says --------------------------------------------------------------


class _Answering:
    """Something listening that is not an HTTPS server: plain HTTP."""

    def __enter__(self):
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self.server.serve_forever, args=(0.05,), daemon=True
        ).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("kind", ["closed", "reset", "plain-http"])
def test_a_failed_call_says_could_not_connect_and_logs_the_rest(
    tmp_path, database_url, redis_url, redis_client, caplog, kind
):
    """Closed port, reset connection and TLS to a plain-HTTP port read the same."""
    settings = _settings_allowing(tmp_path, database_url, redis_url, "127.0.0.1/32")
    caplog.set_level(logging.WARNING, "throughline.delivery")
    if kind == "closed":
        outcome = _attempt(
            settings, redis_client, _claimed(f"https://127.0.0.1:{_closed_port()}/")
        )
    elif kind == "reset":
        with Listener() as listener:
            outcome = _attempt(
                settings, redis_client, _claimed(f"https://127.0.0.1:{listener.port}/")
            )
    else:
        with _Answering() as plain:
            port = plain.server.server_port
            outcome = _attempt(
                settings, redis_client, _claimed(f"https://127.0.0.1:{port}/")
            )
    assert (outcome.status, outcome.error) == ("retry", "could not connect")
    assert "could not connect" in caplog.text and "127.0.0.1" in caplog.text


# -- finding 3: channel outbound URLs at send time ----------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/save",
        "http://[::1]:{port}/",
        "http://2130706433:{port}/",
        "http://localhost:{port}/",
        "http://169.254.169.254/latest/meta-data/",
        "http://metadata.google.internal/",
        "http://10.0.0.1/",
        "http://0.0.0.0:{port}/",
        "http://[::ffff:127.0.0.1]:{port}/",
    ],
)
def test_a_channel_url_is_checked_at_send_time(settings, redis_client, url):
    """A channel saved before the check existed (or edited in SQL) is still not called."""
    with Listener() as listener:
        outcome = _attempt(
            settings,
            redis_client,
            _claimed(url.format(port=listener.port), channel=True),
        )
    assert (outcome.status, outcome.reason) == ("failed", BLOCKED)
    assert listener.accepted == 0
    assert BLOCKED in delivery.CHANNEL_REASONS  # the node's fallback channel may try


def test_a_private_channel_url_is_called_only_when_its_network_is_listed(
    tmp_path, database_url, redis_url, redis_client, settings
):
    with Recorder() as channel:
        refused = _attempt(settings, redis_client, _claimed(channel.url, channel=True))
        listed = _settings_allowing(
            tmp_path, database_url, redis_url, "10.0.0.0/8, 127.0.0.1/32"
        )
        sent = _attempt(listed, redis_client, _claimed(channel.url, channel=True))
    assert (refused.status, refused.reason) == ("failed", BLOCKED)
    assert sent.status == "delivered" and len(channel.received) == 1


# -- finding 3: channel outbound URLs when saved ----------------------------------------

INTERNAL_CHANNEL_URLS = [
    "http://127.0.0.1:8001/save",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]:22/",
    "http://0x7f000001/",
    "http://2130706433/",
    "http://localhost:6379/",
    "http://10.0.0.1/",
    "http://0.0.0.0/",
    "http://[::ffff:127.0.0.1]/",
    "http://vm/",
    "http://metadata.google.internal/",
    "http://%31%32%37.0.0.1/",
]


@pytest.mark.parametrize("url", INTERNAL_CHANNEL_URLS)
def test_the_api_refuses_an_internal_channel_url(client, session, url):
    api = api_client(client, session, Role.admin)
    response = api.post(
        "/api/v1/channels", json={"slug": "web", "kind": "web", "outbound_url": url}
    )
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == "outbound_url"
    assert session.scalars(select(Channel)).all() == []


def test_the_api_saves_a_private_channel_url_when_its_network_is_listed(
    tmp_path, database_url, redis_url, redis_client, app_factory, session
):
    listed = _settings_allowing(tmp_path, database_url, redis_url, "10.0.0.0/8")
    api = api_client(app_factory(listed).test_client(), session, Role.admin)
    made = api.post(
        "/api/v1/channels",
        json={"slug": "crm", "kind": "other", "outbound_url": "http://10.0.0.1/in"},
    )
    assert made.status_code == 201, made.get_json()
    metadata = api.post(
        "/api/v1/channels",
        json={
            "slug": "meta",
            "kind": "other",
            "outbound_url": "http://169.254.169.254/latest/meta-data/",
        },
    )
    assert metadata.status_code == 422
    assert metadata.get_json()["error"]["field"] == "outbound_url"


def _form_post(client, path, data):
    token = csrf_token(client, "/channels/")
    return client.post(path, data={"csrf_token": token, **data})


def _field_error(page, field):
    found = re.search(rf'id="{field}-error" class="field-error">([^<]*)<', page)
    return html.unescape(found.group(1)) if found else None


def test_the_channel_forms_refuse_an_internal_url(client, session, settings):
    login(client, make_user(session, Role.admin))
    new = _form_post(
        client,
        "/channels/new",
        {
            "slug": "desk",
            "name": "Desk",
            "kind": "support",
            "outbound_url": "http://127.0.0.1:8001/save",
            "rate_limit": "100",
        },
    )
    assert new.status_code == 400
    assert "loopback" in _field_error(new.get_data(as_text=True), "outbound_url")
    assert session.scalars(select(Channel)).all() == []

    create_channel(session, SecretBox(settings.encryption_key), "desk", "Desk", "other")
    session.commit()
    edit = _form_post(
        client,
        "/channels/desk/edit",
        {
            "name": "Desk",
            "outbound_url": "http://169.254.169.254/latest/",
            "rate_limit": "100",
        },
    )
    assert edit.status_code == 400
    assert "metadata" in _field_error(edit.get_data(as_text=True), "outbound_url")
    session.expire_all()
    assert session.scalars(select(Channel)).one().outbound_url is None


def test_send_test_refuses_a_stored_loopback_url_without_connecting(
    client, session, settings, redis_client, engine_runtime
):
    """A URL stored before the check existed is refused when the admin sends a test."""
    login(client, make_user(session, Role.admin))
    with Listener() as listener:
        made = create_channel(
            session, SecretBox(settings.encryption_key), "desk", "Desk", "other"
        )
        made.channel.outbound_url = f"http://127.0.0.1:{listener.port}/save"
        session.commit()
        token = csrf_token(client, "/channels/desk")
        response = client.post(
            "/channels/desk/test",
            data={"csrf_token": token},
            headers={"HX-Request": "true"},
        )
        poll = re.search(r'hx-get="([^"]+)"', response.get_data(as_text=True))
        work_all(redis_client)
        shown = client.get(poll.group(1), headers={"HX-Request": "true"})
    text = html.unescape(shown.get_data(as_text=True))
    assert "refused: 127.0.0.1 is not a public address" in text
    assert "Delivered" not in text
    assert listener.accepted == 0
