"""The channels pages: connect, secrets shown once, health, edit, disable, rotate, test."""

import html
import logging
import re
import shlex
from datetime import timedelta

import pytest
from sqlalchemy import select

from engine.channels import create_channel
from engine.crypto import SecretBox
from engine.delivery.sender import Sender
from engine.models import (
    AuditEntry,
    Channel,
    Delivery,
    DeliveryStatus,
    Event,
    EventStatus,
    Role,
    utcnow,
)
from engine.queues import connect
from tests.channels import Recorder, post_event
from tests.conftest import work_all
from tests.factories import csrf_token, login, make_user
from webapp.hooks.channels import forget

EVENT = {"type": "signed_up", "customer": {"id": "c-1"}}


@pytest.fixture(autouse=True)
def _fresh_intake_cache():
    forget()
    yield
    forget()


@pytest.fixture
def admin(client, session):
    login(client, make_user(session, Role.admin))
    return client


@pytest.fixture
def web(session, settings):
    """A channel made by the engine, with its secrets in clear."""
    made = create_channel(
        session, SecretBox(settings.encryption_key), "web", "Web site", "web"
    )
    session.commit()
    return made


def _post(client, path, data=None, **kwargs):
    token = csrf_token(client, "/channels/")
    return client.post(path, data={"csrf_token": token, **(data or {})}, **kwargs)


def _audit(session, action):
    session.rollback()
    session.expire_all()
    return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def _error(page, field):
    found = re.search(rf'id="{field}-error" class="field-error">([^<]*)<', page)
    return html.unescape(found.group(1)) if found else None


NEW = {
    "slug": "web",
    "name": "Web site",
    "kind": "web",
    "outbound_url": "",
    "rate_limit": "100",
}


def test_every_wrong_field_of_a_new_channel_is_named_at_once(admin, session):
    response = _post(
        admin,
        "/channels/new",
        {**NEW, "slug": "Web Site", "outbound_url": "ftp://x", "rate_limit": "fast"},
    )
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "lower-case letters" in _error(page, "slug")
    assert "http:// or https://" in _error(page, "outbound_url")
    assert _error(page, "rate_limit") == "give a whole number of events per second"
    response = _post(admin, "/channels/new", {**NEW, "rate_limit": "0", "kind": "x"})
    page = response.get_data(as_text=True)
    assert "1 to 100000" in _error(page, "rate_limit")
    assert _error(page, "kind") == "Not a valid choice."
    assert _error(page, "slug") is None
    assert session.scalars(select(Channel)).all() == []


def test_a_slug_taken_already_is_named(admin, web):
    response = _post(admin, "/channels/new", NEW)
    assert response.status_code == 400
    assert "already exists" in _error(response.get_data(as_text=True), "slug")


def _curl_request(page):
    """(url, headers, body) of the example curl command on a secrets page."""
    command = html.unescape(
        re.search(r'<pre id="example-curl"[^>]*>(.*?)</pre>', page, re.S).group(1)
    )
    words = shlex.split(command.replace("\\\n", " "))
    headers = dict(
        words[i + 1].split(": ", 1) for i, w in enumerate(words) if w == "-H"
    )
    return words[3], headers, words[words.index("--data-raw") + 1]


def test_a_new_channel_shows_its_secrets_once_with_a_working_example(
    admin, session, settings, caplog
):
    caplog.set_level(logging.DEBUG)
    response = _post(
        admin,
        "/channels/new",
        {**NEW, "outbound_url": "https://example.com/actions", "name": ""},
    )
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    page = response.get_data(as_text=True)
    session.rollback()
    session.expire_all()
    channel = session.scalars(select(Channel)).one()
    box = SecretBox(settings.encryption_key)
    inbound = box.decrypt(channel.inbound_secret)
    outbound = box.decrypt(channel.outbound_secret)
    assert channel.name == "web" and channel.rate_limit == 100
    assert inbound in page and outbound in page
    assert page.count('data-copy="') >= 4  # URL, both secrets, the example

    url, headers, body = _curl_request(page)
    assert url == "http://localhost/hooks/web"
    assert set(headers) >= {"webhook-id", "webhook-timestamp", "webhook-signature"}
    sent = admin.post("/hooks/web", data=body, headers=headers)
    assert sent.status_code == 202, sent.get_data(as_text=True)

    for path in ("/channels/", "/channels/web", "/channels/web/events"):
        later = admin.get(path).get_data(as_text=True)
        assert inbound not in later and outbound not in later, path
    assert "signed_up" in admin.get("/channels/web").get_data(as_text=True)
    assert inbound not in caplog.text and outbound not in caplog.text
    (entry,) = _audit(session, "channel.create")
    assert entry.target_id == "web" and inbound not in str(entry.detail)


def test_the_event_list_is_a_partial_for_the_channel_page_to_poll(admin, web, client):
    assert post_event(client, "web", web.inbound_secret, EVENT).status_code == 202
    page = admin.get("/channels/web", headers={}).get_data(as_text=True)
    assert 'hx-get="/channels/web/events?compact=1"' in page
    assert 'hx-trigger="every 5s"' in page
    partial = admin.get(
        "/channels/web/events?compact=1", headers={"HX-Request": "true"}
    )
    text = partial.get_data(as_text=True)
    assert "<html" not in text and "signed_up" in text and "pending" in text
    assert "Vary" in partial.headers


def test_health_counts_the_last_day_and_reads_the_breaker(
    admin, session, web, settings, redis_client
):
    now = utcnow()
    channel = web.channel
    for index, (status, age) in enumerate(
        [
            (EventStatus.processed, 1),
            (EventStatus.processed, 2),
            (EventStatus.failed, 3),
            (EventStatus.processed, 30),  # older than a day: not counted
        ]
    ):
        session.add(
            Event(
                channel_id=channel.id,
                webhook_id=f"e{index}",
                type="viewed",
                payload={},
                status=status,
                error="no such trait" if status is EventStatus.failed else None,
                occurred_at=now,
                received_at=now - timedelta(hours=age),
            )
        )
    for status in ["delivered", "delivered", "delivered", "failed"]:
        session.add(
            Delivery(
                channel_id=channel.id,
                payload={},
                status=DeliveryStatus(status),
                reason="permanent_4xx" if status == "failed" else None,
                response_status=200 if status == "delivered" else 404,
                created_at=now,
                finished_at=now,
            )
        )
    session.commit()
    sender = Sender(settings, redis_client)
    sender.breaker(channel.id).open()
    sender.close()
    forget()
    post_event(admin, "web", "whsec_" + "A" * 32, EVENT)  # a wrong secret: 401

    listing = admin.get("/channels/").get_data(as_text=True)
    row = re.search(r"<tr>\s*<td><a href=\"/channels/web\">.*?</tr>", listing, re.S)
    assert row, listing
    cells = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row.group(0)))
    assert "3 1 failed · 1 refused" in cells
    assert "75% of 4" in cells
    assert "open" in cells
    page = admin.get("/channels/web").get_data(as_text=True)
    assert "401 bad_signature" in page
    assert "no such trait" in page
    assert "the channel refused it (a 4xx answer)" in page


def test_without_redis_the_breaker_and_refusals_are_unknown(admin, app, web):
    services = app.extensions["throughline"]
    working, services.redis = services.redis, connect("redis://127.0.0.1:9/0")
    try:
        listing = admin.get("/channels/")
        page = admin.get("/channels/web")
    finally:
        services.redis.close()
        services.redis = working
    assert listing.status_code == 200 and page.status_code == 200
    text = listing.get_data(as_text=True)
    assert 'badge-unknown"' in text and "refusals unknown" in text
    assert "Redis did not answer" in page.get_data(as_text=True)


def test_edit_saves_changes_and_names_wrong_fields(admin, session, web):
    form = admin.get("/channels/web/edit").get_data(as_text=True)
    assert 'value="Web site"' in form
    bad = _post(
        admin,
        "/channels/web/edit",
        {"name": "Web", "outbound_url": "mailto:a@b.c", "rate_limit": "100001"},
    )
    assert bad.status_code == 400
    page = bad.get_data(as_text=True)
    assert "http:// or https://" in _error(page, "outbound_url")
    assert "1 to 100000" in _error(page, "rate_limit")
    good = _post(
        admin,
        "/channels/web/edit",
        {
            "name": "Shop",
            "outbound_url": "https://shop.example/actions",
            "rate_limit": "250",
        },
    )
    assert good.status_code == 302
    session.rollback()
    session.expire_all()
    channel = session.scalars(select(Channel)).one()
    assert (channel.name, channel.outbound_url, channel.rate_limit) == (
        "Shop",
        "https://shop.example/actions",
        250,
    )
    (entry,) = _audit(session, "channel.update")
    assert entry.detail == {
        "name": ["Web site", "Shop"],
        "outbound_url": [None, "https://shop.example/actions"],
        "rate_limit": [100, 250],
    }


def test_disabling_asks_first_then_events_get_409(admin, session, web, client):
    question = admin.get("/channels/web/disable")
    assert "Disable “Web site”?" in question.get_data(as_text=True)
    session.rollback()
    session.expire_all()
    assert session.scalars(select(Channel)).one().enabled
    assert _post(admin, "/channels/web/disable").status_code == 302
    refused = post_event(client, "web", web.inbound_secret, EVENT)
    assert refused.status_code == 409
    assert refused.get_json()["error"]["code"] == "channel_disabled"
    page = admin.get("/channels/web").get_data(as_text=True)
    assert "disabled" in page and "Enable" in page
    assert _post(admin, "/channels/web/enable").status_code == 302
    assert post_event(client, "web", web.inbound_secret, EVENT).status_code == 202
    assert len(_audit(session, "channel.disable")) == 1
    assert len(_audit(session, "channel.enable")) == 1


def test_rotation_asks_first_and_the_old_secret_verifies_during_the_grace(
    admin, session, web, client
):
    question = admin.get("/channels/web/rotate").get_data(as_text=True)
    assert "Rotate the secrets of “Web site”?" in question
    assert post_event(client, "web", web.inbound_secret, EVENT).status_code == 202
    response = _post(admin, "/channels/web/rotate", {"grace": "P1D"})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    page = response.get_data(as_text=True)
    new_inbound = re.search(r'id="inbound-secret"[^>]*value="(whsec_[^"]+)"', page)
    assert new_inbound and new_inbound.group(1) != web.inbound_secret
    assert "previous inbound secret keeps working until" in page
    assert post_event(client, "web", web.inbound_secret, EVENT).status_code == 202
    assert post_event(client, "web", new_inbound.group(1), EVENT).status_code == 202
    assert new_inbound.group(1) not in admin.get("/channels/web").get_data(as_text=True)
    (entry,) = _audit(session, "channel.rotate")
    assert entry.detail == {"grace_period": "P1D"}

    _post(admin, "/channels/web/rotate", {"grace": "PT0S"})
    assert post_event(client, "web", new_inbound.group(1), EVENT).status_code == 401


@pytest.mark.usefixtures("engine_runtime")
@pytest.mark.parametrize(
    ("answer", "shown"),
    [(200, "Delivered:</strong> the channel answered HTTP 200 in"), (404, "HTTP 404")],
)
def test_a_test_delivery_reaches_the_channel_and_shows_its_answer(
    admin, session, settings, redis_client, answer, shown
):
    with Recorder() as channel_server:
        made = create_channel(
            session,
            SecretBox(settings.encryption_key),
            "desk",
            "Support desk",
            "support",
            channel_server.url,
            allowed_networks=settings.outbound_allowed_networks,
        )
        session.commit()
        channel_server.secret = made.outbound_secret
        channel_server.answers = [answer]
        response = _post(admin, "/channels/desk/test", headers={"HX-Request": "true"})
        assert response.status_code == 200
        pending = response.get_data(as_text=True)
        assert "Sending the test action" in pending
        poll = re.search(r'hx-get="([^"]+)"', pending).group(1)
        work_all(redis_client)
        settled = admin.get(poll, headers={"HX-Request": "true"})
    result = settled.get_data(as_text=True)
    assert shown in result and "hx-get" not in result  # no more polling
    assert settled.headers["HX-Trigger"] == "delivery-settled"  # the lists refresh
    (received,) = channel_server.received
    assert channel_server.bad_signatures == 0
    assert received["body"]["test"] is True and received["body"]["customer"] is None
    session.rollback()
    session.expire_all()
    row = session.scalars(select(Delivery)).one()
    assert row.kind == "test" and received["headers"]["webhook-id"] == row.id
    assert row.attempts == 1  # tried once, never retried
    (entry,) = _audit(session, "channel.test")
    assert entry.detail == {"delivery": row.id}
    assert "Test action" in admin.get("/channels/desk").get_data(as_text=True)


def test_without_javascript_a_test_delivery_lands_on_the_channel_page(
    admin, session, settings
):
    create_channel(
        session,
        SecretBox(settings.encryption_key),
        "desk",
        "Desk",
        "support",
        "https://desk.example/actions",
    )
    session.commit()
    response = _post(admin, "/channels/desk/test")
    assert response.status_code == 302 and "test=dlv_" in response.headers["Location"]
    page = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "Sending the test action" in page


@pytest.mark.parametrize("role", [Role.viewer, Role.marketer])
def test_only_admins_change_channels_and_others_see_no_buttons(
    client, session, web, role
):
    login(client, make_user(session, role))
    listing = client.get("/channels/").get_data(as_text=True)
    assert "Web site" in listing and "Connect a channel" not in listing
    page = client.get("/channels/web").get_data(as_text=True)
    for button in ("Rotate secrets", "Disable", "Edit settings", "Send a test"):
        assert button not in page
    for path in ("/channels/new", "/channels/web/edit", "/channels/web/rotate"):
        assert client.get(path).status_code == 403, path
    for path in (
        "/channels/new",
        "/channels/web/edit",
        "/channels/web/disable",
        "/channels/web/enable",
        "/channels/web/rotate",
        "/channels/web/test",
    ):
        assert _post(client, path, NEW).status_code == 403, path
    session.rollback()
    session.expire_all()
    channel = session.scalars(select(Channel)).one()
    assert channel.enabled and channel.name == "Web site"
    assert session.scalars(select(Delivery)).all() == []


def test_the_figures_refresh_as_a_partial_and_count_refusals_of_known_channels_only(
    client, session, web, redis_client
):
    login(client, make_user(session, Role.viewer))
    post_event(client, "web", web.inbound_secret, EVENT)
    post_event(client, "web", web.inbound_secret, "{not json")  # 400 bad_json
    post_event(client, "nowhere", web.inbound_secret, EVENT)  # 404: not counted
    partial = client.get("/channels/web/health", headers={"HX-Request": "true"})
    text = re.sub(r"\s+", " ", partial.get_data(as_text=True))
    assert "<html" not in text
    assert '<p class="figure">1</p>' in text and "1 refused</span> (bad_json 1)" in text
    assert "400 bad_json" in text  # the latest refusal, with its sentence
    keys = [key.decode() for key in redis_client.keys("throughline:rejections:*")]
    assert keys and all(key.startswith("throughline:rejections:web:") for key in keys)
