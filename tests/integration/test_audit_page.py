"""The audit log page: every change is there, filtered, paged, newest first, admins only."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from engine import accounts, audit
from engine.crypto import SecretBox
from engine.demo import load_demo
from engine.models import AuditEntry, DecisionTable, Journey, Role, User
from tests.factories import (
    csrf_token,
    login,
    make_channels,
    make_customer,
    make_journey,
    make_user,
)


@pytest.fixture
def admin_user(session):
    return make_user(session, Role.admin, email="alice@example.com")


@pytest.fixture
def admin(client, admin_user):
    login(client, admin_user)
    return client


def _rows(page):
    """Each table row of the log as plain text."""
    body = re.search(r"<tbody>(.*?)</tbody>", page, re.S)
    if not body:
        return []
    rows = re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S)
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip() for row in rows]


def _entry(session, actor, action, kind, ref, at, detail=None):
    entry = audit.record(session, actor, action, kind, ref, detail)
    entry.at = at
    return entry


@pytest.mark.parametrize("role", [Role.viewer, Role.marketer])
def test_viewers_and_marketers_get_403(client, session, role):
    login(client, make_user(session, role))
    response = client.get("/admin/audit")
    assert response.status_code == 403
    assert "needs the admin role" in response.get_data(as_text=True)


def test_every_kind_of_change_is_recorded_and_listed(admin, client, session, settings):
    """Channel, journey, consent, erasure and user changes, made through the app."""
    box = SecretBox(settings.encryption_key)
    load_demo(session, box)
    token = accounts.create_token(session, make_user(session, Role.admin))
    session.commit()
    bearer = {"Authorization": f"Bearer {token}"}
    onboarding = session.scalars(
        select(Journey).where(Journey.name.like("Onboarding%"))
    ).one()
    calls = [
        ("post", "/api/v1/channels", {"slug": "pos", "kind": "store"}),
        ("post", "/api/v1/channels/pos/rotate", {}),
        ("post", f"/api/v1/journeys/{onboarding.id}/publish", None),
        ("post", f"/api/v1/journeys/{onboarding.id}/pause", None),
        ("post", f"/api/v1/journeys/{onboarding.id}/resume", None),
        ("put", "/api/v1/customers/email:ada@example.com/consent", {"sms": False}),
        ("delete", "/api/v1/customers/email:grace@example.com", None),
    ]
    for method, path, body in calls:
        response = getattr(client, method)(path, json=body, headers=bearer)
        assert response.status_code in (200, 201), (path, response.get_json())
    token = csrf_token(client, "/admin/")
    client.post(
        "/admin/users",
        data={"email": "carol@example.com", "role": "viewer", "csrf_token": token},
    )
    session.rollback()
    carol = session.scalars(select(User).where(User.email == "carol@example.com")).one()
    client.post(
        f"/admin/users/{carol.id}",
        data={f"u{carol.id}-role": "marketer", "csrf_token": token},
    )
    page = admin.get("/admin/audit").get_data(as_text=True)
    for label in (
        "Channel connected",
        "Secrets rotated",
        "Journey published",
        "Journey paused",
        "Journey resumed",
        "Consent changed",
        "Customer erased",
        "User added",
        "Role or access changed",
    ):
        assert label in page, label
    rows = _rows(page)
    assert "Role or access changed" in rows[0]  # the latest change comes first
    (changed,) = [r for r in rows if "Role or access changed" in r]
    assert "alice@example.com" in changed and "carol@example.com" in changed
    assert "viewer → marketer" in changed
    (erased,) = [r for r in rows if "Customer erased" in r]
    assert "(no longer exists)" in erased
    (consent,) = [r for r in rows if "Consent changed" in r]
    assert "sms: no" in consent


def test_filters_by_action_actor_target_and_dates(admin, session, admin_user, settings):
    journey = make_journey(session, name="Spring sale")
    make_channels(session, SecretBox(settings.encryption_key), "web")
    day = datetime(2026, 3, 10, 12, tzinfo=UTC)
    _entry(session, admin_user, "journey.publish", "journey", journey.id, day)
    _entry(session, None, "journey.pause", "journey", journey.id, day + timedelta(1))
    _entry(session, admin_user, "channel.rotate", "channel", "web", day + timedelta(2))
    _entry(session, admin_user, "channel.create", "channel", "gone", day)
    _entry(session, None, "customer.erase", "customer", 99, day + timedelta(3))
    session.commit()

    def rows(**args):
        response = admin.get("/admin/audit", query_string=args)
        assert response.status_code == 200
        return _rows(response.get_data(as_text=True))

    everything = rows()
    assert len(everything) == 5
    assert everything[0].startswith("2026-03-13")  # newest first
    assert [r.split()[0] for r in rows(action="journey.")] == [
        "2026-03-11",
        "2026-03-10",
    ]
    (rotated,) = rows(action="channel.rotate")
    assert "Secrets rotated" in rotated and "grace" not in rotated
    assert len(rows(actor="ALICE")) == 3
    assert len(rows(actor="system")) == 2
    assert len(rows(target=f"journey {journey.id}")) == 2
    assert len(rows(target="channel:web")) == 1
    assert len(rows(target="web")) == 1
    assert [r.split()[0] for r in rows(since="2026-03-11", until="2026-03-12")] == [
        "2026-03-12",
        "2026-03-11",
    ]
    assert len(rows(action="journey.", actor="system", since="2026-03-11")) == 1
    assert rows(action="user.") == []


def test_targets_link_while_they_exist(admin, session, admin_user, settings):
    journey = make_journey(session, name="Spring sale")
    make_channels(session, SecretBox(settings.encryption_key), "web")
    customer = make_customer(session)
    now = datetime.now(UTC)
    _entry(session, admin_user, "journey.publish", "journey", journey.id, now)
    _entry(session, admin_user, "channel.rotate", "channel", "web", now)
    _entry(session, admin_user, "channel.create", "channel", "gone", now)
    _entry(session, None, "customer.consent", "customer", customer.id, now)
    _entry(session, None, "journey.pause", "journey", 12345, now)
    table = DecisionTable(key="support_tier", name="Support tier", draft={})
    session.add(table)
    session.flush()
    _entry(session, admin_user, "decision.create", "decision", table.id, now)
    _entry(session, admin_user, "decision.publish", "decision", 777, now)
    session.commit()
    page = admin.get("/admin/audit").get_data(as_text=True)
    assert '<a href="/decisions/support_tier">Support tier</a>' in page
    assert re.search(r"#777\s*<small class=\"muted\">\(no longer exists\)", page)
    assert f'<a href="/journeys/{journey.id}">Spring sale</a>' in page
    assert '<a href="/channels/web">web</a>' in page
    assert re.search(r"gone\s*<small class=\"muted\">\(no longer exists\)", page)
    assert re.search(r"#12345\s*<small class=\"muted\">\(no longer exists\)", page)
    assert f"#{customer.id}" in page


def test_wrong_dates_are_named_and_the_log_still_shows(admin, session, admin_user):
    _entry(session, admin_user, "user.create", "user", admin_user.id, datetime.now(UTC))
    session.commit()
    page = admin.get(
        "/admin/audit", query_string={"since": "yesterday", "until": "2099-01-01"}
    ).get_data(as_text=True)
    assert 'id="since-error" class="field-error">give a date as YYYY-MM-DD' in page
    assert len(_rows(page)) == 1
    page = admin.get(
        "/admin/audit", query_string={"since": "2026-02-01", "until": "2026-01-01"}
    ).get_data(as_text=True)
    assert "the end date is before the start date" in page


def test_the_log_pages_and_keeps_its_filters(admin, session, admin_user):
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for number in range(30):
        _entry(
            session,
            admin_user,
            "journey.draft",
            "journey",
            1,
            start + timedelta(minutes=number),
            {"revision": number},
        )
    _entry(session, None, "demo.load", "system", "demo", start)
    session.commit()
    first = admin.get("/admin/audit?action=journey.").get_data(as_text=True)
    assert "revision: 29" in _rows(first)[0]
    assert "Page 1 of 2 · 30 in all" in first
    following = re.search(r'href="([^"]+)" rel="next"', first).group(1)
    assert "action=journey." in following
    second = admin.get(following.replace("&amp;", "&")).get_data(as_text=True)
    assert len(_rows(second)) == 5 and "revision: 0" in _rows(second)[-1]
    session.rollback()
    assert len(session.scalars(select(AuditEntry)).all()) == 31
