"""The customers pages: search, the profile and its timeline, consent, erasure, export."""

import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from engine.crypto import SecretBox
from engine.demo import load_demo
from engine.models import (
    AuditEntry,
    Customer,
    Delivery,
    Event,
    Identity,
    Role,
    Run,
    Step,
)
from engine.profiles import identity
from tests.factories import csrf_token, login, make_customer, make_user
from tests.world import CART, sample


@pytest.fixture
def demo(session, settings):
    load_demo(session, SecretBox(settings.encryption_key))
    ada = _profile_of(session, "email", "ada@example.com")
    session.add(Identity(customer_id=ada.id, kind="device_id", value="dev-9f2a"))
    session.commit()
    return session


@pytest.fixture
def live(world):
    """Channels web, email, sms and support-desk (the last three recording what they get)."""
    return world


def _profile_of(session, kind, value):
    identity = session.scalars(
        select(Identity).where(Identity.kind == kind, Identity.value == value)
    ).one()
    return session.get(Customer, identity.customer_id)


def _as(app, session, role):
    """A client of its own, signed in as a new user with `role`."""
    client = app.test_client()
    user = make_user(session, role)
    login(client, user)
    client.user = user
    return client


def _post(client, path, data=None, **kwargs):
    token = csrf_token(client, "/customers/")
    return client.post(path, data={"csrf_token": token, **(data or {})}, **kwargs)


def _reread(session):
    """See what the app committed (the test session keeps a read snapshot)."""
    session.rollback()
    session.expire_all()


def _switches(page):
    """Each consent switch on the page: on or off."""
    return {
        slug: " checked" in rest
        for slug, rest in re.findall(
            r'role="switch" id="consent-([\w-]+)"([^>]*)>', page
        )
    }


def _text(response):
    return response.get_data(as_text=True)


def _hrefs(page):
    return re.findall(r'href="(/customers/\d+)"', page)


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("ADA@Example.com", "Ada"),  # email, in any case
        ("ada@", "Ada"),  # the start of one
        ("+15550100", "Ada"),  # phone
        ("1555 0100", "Ada"),  # phone as people type it
        ("dev-9f2", "Ada"),  # device id
        ("c-1003", "Alan"),  # external (customer) id
        ("anon-77", "Alan"),  # anonymous id
        ("email:grace@example.com", "Grace"),  # kind:value
        ("device_id:dev-9f2a", "Ada"),
    ],
)
def test_search_finds_a_customer_by_each_kind_of_identifier(
    app, demo, session, query, found
):
    client = _as(app, session, Role.viewer)
    page = _text(client.get("/customers/", query_string={"q": query}))
    names = re.findall(r'href="/customers/\d+">([^<]+)</a>', page)
    assert names == [found], (query, names)


def test_search_by_profile_number_and_kind_only(app, demo, session):
    client = _as(app, session, Role.viewer)
    grace = _profile_of(session, "email", "grace@example.com")
    for query in (str(grace.id), f"#{grace.id}"):
        page = _text(client.get("/customers/", query_string={"q": query}))
        assert f'href="/customers/{grace.id}"' in page and "Grace</a>" in page
    # kind:value looks in that kind only: Ada's phone is no email.
    page = _text(client.get("/customers/", query_string={"q": "email:+1555"}))
    assert "No customer matches" in page
    page = _text(client.get("/customers/", query_string={"q": "100%_"}))
    assert "No customer matches" in page  # LIKE wildcards are plain characters


def test_the_list_pages_links_each_row_and_answers_htmx_with_the_rows_only(
    app, session
):
    for n in range(30):
        make_customer(
            session,
            traits={"first_name": f"Person {n:02d}"},
            identities={"email": f"p{n:02d}@example.com"},
        )
    client = _as(app, session, Role.viewer)
    first = _text(client.get("/customers/"))
    assert "Page 1 of 2 · 30 in all" in first and len(_hrefs(first)) == 25
    assert "Person 29" in first  # newest first
    second = _text(client.get("/customers/?page=2"))
    assert len(_hrefs(second)) == 5 and "Person 00" in second
    assert set(_hrefs(first)).isdisjoint(_hrefs(second))
    searched = _text(client.get("/customers/?q=p1"))
    assert "10 in all" in searched
    partial = client.get("/customers/?q=p1", headers={"HX-Request": "true"})
    assert "<html" not in _text(partial) and "p15@example.com" in _text(partial)
    assert "HX-Request" in partial.headers["Vary"]
    profile = client.get(_hrefs(first)[0])
    assert profile.status_code == 200 and "Person 29" in _text(profile)


def test_the_profile_shows_identities_traits_runs_and_a_cross_channel_timeline(
    app, live, session
):
    live.publish(sample())
    live.post(CART)  # on the web site
    live.post(
        {"type": "email_opened", "customer": {"email": "ada@example.com"}}, "email"
    )
    ada = _profile_of(session, "id", "c-42")
    client = _as(app, session, Role.viewer)
    page = _text(client.get(f"/customers/{ada.id}"))
    assert "<h1>Ada</h1>" in page
    identities = page.split('id="identities-title"')[1].split("</section>")[0]
    assert "ada@example.com" in identities and "c-42" in identities
    assert "web" in identities  # the channel that first sent them
    traits = page.split('id="traits-title"')[1].split("</section>")[0]
    assert "tier" in traits and "vip" in traits
    runs = page.split('id="runs-title"')[1].split("</section>")[0]
    assert "Cart recovery" in runs
    # The step they wait at, by what it does.
    assert "<strong>Wait for event</strong>" in runs
    assert "Wait for order_completed, up to" in runs
    timeline = page.split('id="timeline-title"')[1]
    entries = re.findall(r'<li class="entry entry-(\w+)">', timeline)
    assert entries[:2] == [
        "event",
        "step",
    ]  # newest first: email_opened resumed nothing
    assert (
        "email_opened" in timeline and "cart_abandoned · cart_value=120.5" in timeline
    )
    sources = set(re.findall(r'class="chip source source-\w+"[^>]*>([^<]+)<', timeline))
    assert {"web", "email", "Cart recovery"} <= sources
    assert "<details" in timeline and "&#34;cart_value&#34;: 120.5" in timeline
    # Steps read as the version the customer is on draws them.
    assert "Trigger: When cart_abandoned where cart_value ≥ 50 → out" in timeline


def test_consent_changed_by_a_marketer_is_audited_and_suppresses_deliveries(
    app, live, session
):
    live.publish(sample())
    live.post(CART)
    ada = _profile_of(session, "id", "c-42")
    marketer = _as(app, session, Role.marketer)
    page = _text(marketer.get(f"/customers/{ada.id}"))
    assert 'role="switch" id="consent-support-desk"' in page
    shown = ["email", "sms", "support-desk", "web"]
    response = _post(
        marketer,
        f"/customers/{ada.id}/consent",
        {"channel": shown, "allowed": ["email", "sms", "web"]},
    )
    assert response.status_code == 302
    _reread(session)
    assert session.get(Customer, ada.id).consent == {"support-desk": False}
    entry = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "customer.consent")
    ).one()
    assert entry.actor == marketer.user.email and entry.target_id == str(ada.id)
    assert entry.detail == {
        "changes": {"support-desk": False},
        "before": {"support-desk": None},
    }
    page = _text(marketer.get(response.headers["Location"]))
    assert "Saved: support-desk withdrawn" in page

    # htmx: the switches come back as stored, with what happened.
    partial = _post(
        marketer,
        f"/customers/{ada.id}/consent",
        {"channel": shown, "allowed": ["sms", "web"]},
        headers={"HX-Request": "true"},
    )
    body = _text(partial)
    assert partial.status_code == 200 and "<html" not in body
    assert "Saved: email withdrawn" in body
    assert _switches(body) == {
        "email": False,
        "sms": True,
        "support-desk": False,
        "web": True,
    }
    again = _post(
        marketer,
        f"/customers/{ada.id}/consent",
        {"channel": shown, "allowed": ["sms", "web"]},
        headers={"HX-Request": "true"},
    )
    assert "Nothing changed." in _text(again)
    bad = _post(
        marketer,
        f"/customers/{ada.id}/consent",
        {"channel": ["fax"], "allowed": []},
    )
    assert bad.status_code == 400 and "not a valid choice" in _text(bad)
    assert (
        marketer.post(
            f"/customers/{ada.id}/consent", data={"channel": shown}
        ).status_code
        == 400
    )  # no CSRF token
    _reread(session)
    assert (
        len(
            session.scalars(
                select(AuditEntry).where(AuditEntry.action == "customer.consent")
            ).all()
        )
        == 2
    )

    live.later(timedelta(hours=2))  # VIP, so the journey calls support: suppressed
    page = _text(marketer.get(f"/customers/{ada.id}"))
    assert (
        "Suppressed" in page and "Not sent: consent withdrawn for this channel" in page
    )
    assert "Consent changed: support-desk withdrawn · by " + marketer.user.email in page
    assert live.recorders["support-desk"].delivered() == []


def test_a_viewer_sees_consent_read_only_and_every_post_is_refused(app, demo, session):
    ada = _profile_of(session, "email", "ada@example.com")
    viewer = _as(app, session, Role.viewer)
    page = _text(viewer.get(f"/customers/{ada.id}"))
    assert (
        "<fieldset disabled>" in page
        and "Marketers and admins can change consent" in page
    )
    assert "hx-post" not in page.split('id="consent"')[1].split("</section>")[0]
    assert "Erase…" not in page
    token = csrf_token(viewer, "/customers/")
    for path in (f"/customers/{ada.id}/consent", f"/customers/{ada.id}/erase"):
        response = viewer.post(path, data={"csrf_token": token, "channel": ["web"]})
        assert response.status_code == 403, path
    assert viewer.get(f"/customers/{ada.id}/erase").status_code == 403
    marketer = _as(app, session, Role.marketer)
    assert _post(marketer, f"/customers/{ada.id}/erase").status_code == 403
    _reread(session)
    assert session.get(Customer, ada.id).consent["web"] is True


def test_erase_asks_first_then_removes_everything(app, live, session):
    live.publish(sample())
    live.post(CART)
    live.post(
        {"type": "hello", "customer": {"email": "ada@example.com", "phone": "+4470"}},
        "sms",
    )
    live.later(timedelta(hours=2))
    ada = _profile_of(session, "id", "c-42").id
    admin = _as(app, session, Role.admin)
    assert "Erase…" in _text(admin.get(f"/customers/{ada}"))
    page = _text(admin.get(f"/customers/{ada}/erase"))
    assert "Erase Ada?" in page
    for count in (
        "3 identities",
        "2 events received",
        "1 run through journeys",
        "1 delivery, sent",
    ):
        assert count in page, count
    _reread(session)
    assert session.get(Customer, ada) is not None  # asking changed nothing

    response = _post(admin, f"/customers/{ada}/erase")
    assert response.status_code == 302 and response.headers["Location"] == "/customers/"
    listing = _text(admin.get("/customers/"))
    assert (
        f"Erased profile #{ada} and everything about it: 3 identities, 2 events"
        in listing
    )
    _reread(session)
    for model in (Customer, Identity, Event, Run, Step, Delivery):
        assert session.scalars(select(model)).all() == [], model.__name__
    entry = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "customer.erase")
    ).one()
    assert entry.actor == admin.user.email
    assert "ada@example.com" not in json.dumps(
        [e.detail for e in session.scalars(select(AuditEntry))]
    )
    assert admin.get(f"/customers/{ada}").status_code == 404


def test_export_is_a_download_with_the_profile_and_the_whole_timeline(
    app, live, session
):
    live.publish(sample())
    live.post(CART)
    live.post(
        {"type": "email_opened", "customer": {"email": "ada@example.com"}}, "email"
    )
    live.later(timedelta(hours=2))
    ada = _profile_of(session, "id", "c-42")
    app.config["PAGE_SIZE"] = 2  # the export is not paged like the page is
    response = _as(app, session, Role.viewer).get(f"/customers/{ada.id}/export.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert (
        response.headers["Content-Disposition"]
        == f'attachment; filename="customer-{ada.id}.json"'
    )
    document = json.loads(_text(response))
    assert document["profile"]["id"] == ada.id
    assert {(i["kind"], i["value"], i["channel"]) for i in document["identities"]} == {
        ("id", "c-42", "web"),
        ("email", "ada@example.com", "web"),
    }
    assert document["consent"]["support-desk"] is True
    [run] = document["runs"]
    assert run["journey"] == "Cart recovery" and run["status"] == "completed"
    kinds = [entry["kind"] for entry in document["timeline"]]
    assert kinds.count("event") == 2 and kinds.count("delivery") == 1
    assert kinds.count("step") == len(live.steps())
    delivery = next(e for e in document["timeline"] if e["kind"] == "delivery")
    assert delivery["status"] == "delivered" and delivery["message"] == {
        "task": "Call Ada"
    }


def test_the_timeline_pages_through_every_entry_once(app, session):
    """Entries sharing one instant are neither repeated nor skipped across pages."""
    from engine.models import utcnow

    at = utcnow()
    customer = make_customer(session, identities={"id": "c-1"})
    make_user(session, Role.viewer)
    from tests.factories import make_channels

    make_channels(
        session, SecretBox(app.extensions["throughline"].settings.encryption_key), "web"
    )
    from engine.models import Channel

    web = session.scalars(select(Channel)).one()
    for n in range(7):
        session.add(
            Event(
                channel_id=web.id, webhook_id=f"w{n}", type=f"seen_{n}",
                customer_id=customer.id, payload={"properties": {}},
                occurred_at=at, received_at=at if n < 5 else at - timedelta(minutes=n),
            )
        )  # fmt: skip
    for n in range(3):
        session.add(
            AuditEntry(
                actor="system", action="customer.consent", target_type="customer",
                target_id=str(customer.id), detail={"changes": {"web": n % 2 == 0}}, at=at,
            )
        )  # fmt: skip
    session.commit()
    app.config["PAGE_SIZE"] = 3
    client = _as(app, session, Role.viewer)
    seen, path, pages = [], f"/customers/{customer.id}", 0
    while path:
        page = _text(client.get(path))
        timeline = page.split('id="timeline-title"')[1]
        seen += re.findall(r"<summary>([^<]+)</summary>", timeline)
        older = re.search(r'<a role="button"[^>]* href="([^"]+)#timeline"', timeline)
        path = older.group(1).replace("&amp;", "&") if older else None
        pages += 1
    events = [s for s in seen if s.startswith("seen_")]
    assert sorted(events) == [f"seen_{n}" for n in range(7)]
    assert len(seen) == 10 and pages == 4
    assert events[-2:] == ["seen_5", "seen_6"]  # the older ones last
    # htmx "load more" gets the next entries only, ending with its own "Older" link.
    first = _text(client.get(f"/customers/{customer.id}"))
    cursor = re.search(
        r'hx-get="([^"]+)"', first.split('id="timeline-title"')[1]
    ).group(1)
    more = _text(
        client.get(cursor.replace("&amp;", "&"), headers={"HX-Request": "true"})
    )
    assert more.count('<li class="entry') == 3 and "<html" not in more
    assert 'class="more"' in more
    bad = client.get(f"/customers/{customer.id}?before=yesterday")
    assert bad.status_code == 400 and "before must be" in _text(bad)


def test_a_merged_profile_leads_to_the_one_it_was_merged_into(app, demo, session):
    ada = _profile_of(session, "email", "ada@example.com")
    grace = _profile_of(session, "email", "grace@example.com")
    identity.merge_customers(session, ada, [grace], {"because": ["test"]})
    session.commit()
    admin = _as(app, session, Role.admin)
    response = admin.get(f"/customers/{grace.id}")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/customers/{ada.id}"
    page = _text(admin.get(response.headers["Location"]))
    assert f"Profile #{grace.id} was merged into #{ada.id}." in page
    assert "grace@example.com" in page  # its identities moved here
    assert "Profiles merged: #" + str(grace.id) + " joined this profile" in page
    export = admin.get(f"/customers/{grace.id}/export.json")
    assert export.headers["Location"] == f"/customers/{ada.id}/export.json"
    refused = _post(
        admin, f"/customers/{grace.id}/consent", {"channel": ["web"], "allowed": []}
    )
    assert refused.headers["Location"] == f"/customers/{ada.id}"
    _reread(session)
    assert session.get(Customer, ada.id).consent["web"] is True
    assert _post(admin, f"/customers/{grace.id}/erase").status_code == 302
    _reread(session)
    assert session.get(Customer, ada.id) is not None
    listing = _text(admin.get("/customers/"))
    assert f'href="/customers/{grace.id}"' not in listing


@pytest.mark.parametrize(
    "path",
    ["/customers/99999", "/customers/99999/export.json", "/customers/99999/erase"],
)
def test_an_unknown_profile_is_a_404_page(app, session, path):
    response = _as(app, session, Role.admin).get(path)
    body = _text(response)
    assert response.status_code == 404
    assert "There is no customer profile #99999." in body and "Traceback" not in body
