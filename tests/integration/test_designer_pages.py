"""The journeys pages: create blank or from a starter, import, export, duplicate, archive."""

import io
import json
import re
from html.parser import HTMLParser

import pytest
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from engine.journeys import starters
from engine.models import AuditEntry, Journey, JourneyStatus, Role, Run, RunStatus
from tests.factories import csrf_token, login, make_run, make_user


@pytest.fixture
def marketer(client, session):
    login(client, make_user(session, Role.marketer))
    return client


def _stored(session, starter, owner=None):
    """A journey saved straight from a starter document, problems and all."""
    from engine.journeys import lifecycle

    journey, _ = lifecycle.create_journey(
        session,
        starters.document(starter),
        lifecycle.check_context(session),
        owner,
        allow_problems=True,
    )
    session.commit()
    return journey


def _post(client, path, data=None, **kwargs):
    token = csrf_token(client, "/journeys/")
    return client.post(path, data={"csrf_token": token, **(data or {})}, **kwargs)


def test_a_blank_journey_is_a_draft_that_names_what_to_fix(marketer, session):
    response = _post(marketer, "/journeys/new", {"name": "Welcome", "starter": "blank"})
    assert response.status_code == 302
    journey = session.scalars(select(Journey)).one()
    assert journey.name == "Welcome" and journey.status is JourneyStatus.draft
    page = marketer.get(response.headers["Location"]).get_data(as_text=True)
    assert "1 problem to fix" in page
    assert "name the event that starts the journey, e.g. cart_abandoned" in page
    assert [n["type"] for n in journey.draft["nodes"]] == ["trigger", "exit"]


@pytest.mark.parametrize("starter", [s.key for s in starters.CATALOGUE])
def test_every_starter_creates_its_journey(marketer, session, starter):
    response = _post(marketer, "/journeys/new", {"name": "Mine", "starter": starter})
    assert response.status_code == 302
    journey = session.scalars(select(Journey)).one()
    expected = starters.document(starter)
    assert journey.name == "Mine"
    assert [n["id"] for n in journey.draft["nodes"]] == [
        n["id"] for n in expected["nodes"]
    ]


def test_a_new_journey_needs_a_name(marketer, session):
    response = _post(marketer, "/journeys/new", {"name": "  ", "starter": "blank"})
    assert response.status_code == 400
    assert "This field is required." in response.get_data(as_text=True)
    assert session.scalars(select(Journey)).all() == []


def test_the_form_is_refused_without_its_csrf_token(marketer, session):
    response = marketer.post("/journeys/new", data={"name": "X", "starter": "blank"})
    assert response.status_code == 400
    assert session.scalars(select(Journey)).all() == []


def test_import_keeps_a_readable_document_and_explains_an_unreadable_one(
    marketer, session
):
    document = starters.document("cart_recovery")
    response = _post(
        marketer,
        "/journeys/import",
        {"document": (io.BytesIO(json.dumps(document).encode()), "cart.json")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    journey = session.scalars(select(Journey)).one()
    assert journey.name == "Cart recovery"
    page = marketer.get(response.headers["Location"]).get_data(as_text=True)
    assert "channel" in page  # no channels exist here: the sends name unknown ones

    response = _post(
        marketer,
        "/journeys/import",
        {"document": (io.BytesIO(b"{not json"), "bad.json")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert "the file is not JSON" in response.get_data(as_text=True)

    response = _post(
        marketer,
        "/journeys/import",
        {"document": (io.BytesIO(b'{"schema": "other/v9"}'), "odd.json")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert "cannot be read" in response.get_data(as_text=True)
    assert len(session.scalars(select(Journey)).all()) == 1


def test_export_downloads_the_draft_as_a_document(marketer, session):
    _post(marketer, "/journeys/new", {"name": "Cart", "starter": "cart_recovery"})
    journey = session.scalars(select(Journey)).one()
    response = marketer.get(f"/journeys/{journey.id}/export")
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    assert json.loads(response.data) == journey.draft
    assert (
        marketer.get(f"/journeys/{journey.id}/export?version=live").status_code == 404
    )


def test_duplicate_copies_the_draft_under_a_new_name(marketer, session):
    _post(marketer, "/journeys/new", {"name": "Cart", "starter": "cart_recovery"})
    original = session.scalars(select(Journey)).one()
    _post(marketer, f"/journeys/{original.id}/duplicate")
    _post(marketer, f"/journeys/{original.id}/duplicate")
    session.rollback()  # end the test's read snapshot to see the app's commits
    names = sorted(session.scalars(select(Journey.name)))
    assert names == ["Cart", "Copy of Cart", "Copy of Cart (2)"]
    copy = session.scalars(select(Journey).where(Journey.name == "Copy of Cart")).one()
    assert copy.draft["nodes"] == original.draft["nodes"]
    assert copy.status is JourneyStatus.draft


def test_archive_asks_first_then_ends_runs_and_can_be_undone(
    marketer, session, settings
):
    from engine.journeys import lifecycle
    from engine.models import utcnow

    _post(marketer, "/journeys/new", {"name": "Cart", "starter": "blank"})
    journey = session.scalars(select(Journey)).one()
    journey.status, journey.live_version = JourneyStatus.live, None
    session.commit()
    page = marketer.get(f"/journeys/{journey.id}/archive").get_data(as_text=True)
    assert "Pause it first" in page
    assert _post(marketer, f"/journeys/{journey.id}/archive").status_code == 302
    session.rollback()
    session.refresh(journey)
    assert journey.status is JourneyStatus.live  # refused while live

    journey.status = JourneyStatus.paused
    draft = json.loads(json.dumps(journey.draft))
    draft["nodes"][0]["config"]["event"] = "signed_up"
    journey.draft = draft
    version = lifecycle.publish(
        session, journey, lifecycle.check_context(session), None
    )
    journey.status = JourneyStatus.paused
    make_run(session, version, current_node="end", wake_at=utcnow())

    page = marketer.get(f"/journeys/{journey.id}/archive").get_data(as_text=True)
    assert "1 customer still in it will leave it now" in page
    session.rollback()
    session.refresh(journey)
    assert journey.status is JourneyStatus.paused  # asking changed nothing

    response = _post(marketer, f"/journeys/{journey.id}/archive")
    assert response.status_code == 302 and response.headers["Location"] == "/journeys/"
    session.rollback()
    assert journey.status is JourneyStatus.archived
    run = session.scalars(select(Run)).one()
    assert run.status is RunStatus.exited and run.wake_at is None
    assert "1 run ended" in marketer.get("/journeys/").get_data(as_text=True)
    assert session.scalars(
        select(AuditEntry).where(AuditEntry.action == "journey.archive")
    ).one().detail == {"runs_ended": 1}

    _post(marketer, f"/journeys/{journey.id}/restore")
    session.rollback()
    assert journey.status is JourneyStatus.paused


def test_a_viewer_reads_and_exports_but_changes_nothing(client, session):
    journey = _stored(session, "onboarding", make_user(session, Role.marketer))
    login(client, make_user(session, Role.viewer))
    page = client.get(f"/journeys/{journey.id}").get_data(as_text=True)
    assert "Onboarding across email and app" in page
    assert "Duplicate" not in page and "Archive" not in page
    assert "New journey" not in client.get("/journeys/").get_data(as_text=True)
    assert client.get(f"/journeys/{journey.id}/export").status_code == 200
    for path in (
        "/journeys/new",
        f"/journeys/{journey.id}/duplicate",
        f"/journeys/{journey.id}/archive",
        "/journeys/import",
    ):
        assert _post(client, path).status_code == 403
    assert client.get("/journeys/999999").status_code == 404


def _put_draft(client, journey_id, body, token=None):
    token = token or csrf_token(client, "/journeys/")
    return client.put(
        f"/journeys/{journey_id}/draft.json",
        json=body,
        headers={"X-CSRFToken": token},
    )


def test_the_canvas_autosave_checks_the_revision_and_loses_nothing(marketer, session):
    _post(marketer, "/journeys/new", {"name": "Cart", "starter": "blank"})
    journey = session.scalars(select(Journey)).one()
    loaded = marketer.get(f"/journeys/{journey.id}/draft.json").get_json()
    assert loaded["revision"] == 1
    assert loaded["ports"] == {
        "start": [{"name": "out", "required": True}],
        "end": [],
    }
    assert [p["node"] for p in loaded["problems"]] == ["start"]

    fixed = json.loads(json.dumps(loaded["document"]))
    fixed["nodes"][0]["config"]["event"] = "signed_up"
    saved = _put_draft(marketer, journey.id, {"revision": 1, "document": fixed})
    assert saved.status_code == 200
    assert saved.get_json()["revision"] == 2 and saved.get_json()["problems"] == []

    stale = json.loads(json.dumps(fixed))
    stale["name"] = "Changed in another tab"
    conflict = _put_draft(marketer, journey.id, {"revision": 1, "document": stale})
    assert conflict.status_code == 412
    assert conflict.get_json()["revision"] == 2
    assert "changed since revision 1" in conflict.get_json()["error"]
    session.rollback()
    assert session.get(Journey, journey.id).draft == fixed  # the first save stands

    bad = _put_draft(marketer, journey.id, {"document": fixed})
    assert bad.status_code == 400 and "revision" in bad.get_json()["error"]
    unreadable = _put_draft(
        marketer, journey.id, {"revision": 2, "document": {"schema": "nope"}}
    )
    assert unreadable.status_code == 422 and unreadable.get_json()["problems"]
    no_token = marketer.put(
        f"/journeys/{journey.id}/draft.json", json={"revision": 2, "document": fixed}
    )
    assert no_token.status_code == 400
    session.rollback()
    assert session.get(Journey, journey.id).draft_revision == 2


def test_a_viewer_can_load_the_draft_but_not_save_it(client, session):
    journey = _stored(session, "cart_recovery")
    login(client, make_user(session, Role.viewer))
    loaded = client.get(f"/journeys/{journey.id}/draft.json")
    assert loaded.status_code == 200
    ports = loaded.get_json()["ports"]
    assert [p["name"] for p in ports["wait"]] == ["event", "timeout"]
    assert [(p["name"], p["required"]) for p in ports["mail"]] == [
        ("out", True),
        ("error", False),
        ("suppressed", False),
    ]
    response = _put_draft(
        client, journey.id, {"revision": 1, "document": loaded.get_json()["document"]}
    )
    assert response.status_code == 403


def _valid_blank(marketer, session, name="Welcome"):
    _post(marketer, "/journeys/new", {"name": name, "starter": "blank"})
    journey = session.scalars(select(Journey).where(Journey.name == name)).one()
    loaded = marketer.get(f"/journeys/{journey.id}/draft.json").get_json()
    document = loaded["document"]
    document["nodes"][0]["config"]["event"] = "signed_up"
    _put_draft(marketer, journey.id, {"revision": 1, "document": document})
    return journey, document


@pytest.mark.parametrize(
    "where",
    [
        {"all": [{"field": "event.properties.a", "op": "gte", "value": 5}, {}]},
        {"field": "event.properties.a", "op": None},
        {"all": ["junk"]},
    ],
)
def test_a_half_written_trigger_condition_still_opens_with_a_plain_sample(
    marketer, session, where
):
    journey, document = _valid_blank(marketer, session)
    document["nodes"][0]["config"]["where"] = where
    assert (
        _put_draft(
            marketer, journey.id, {"revision": 2, "document": document}
        ).status_code
        == 200
    )
    page = marketer.get(f"/journeys/{journey.id}")
    assert page.status_code == 200
    assert ">now signed_up</textarea>" in page.get_data(as_text=True)


def test_a_sample_event_meets_the_trigger_condition(marketer, session):
    journey, document = _valid_blank(marketer, session)
    document["nodes"][0]["config"]["where"] = {
        "all": [
            {"field": "event.properties.plan", "op": "in", "value": ["pro", "team"]},
            {"field": "event.properties.seats", "op": "gt", "value": 4},
        ]
    }
    _put_draft(marketer, journey.id, {"revision": 2, "document": document})
    page = marketer.get(f"/journeys/{journey.id}").get_data(as_text=True)
    assert (
        ">now signed_up {&#34;plan&#34;: &#34;pro&#34;, &#34;seats&#34;: 5}</textarea>"
        in page
    )


def test_publish_shows_the_changes_and_customers_in_flight_first(marketer, session):
    journey, document = _valid_blank(marketer, session)
    page = marketer.get(f"/journeys/{journey.id}/publish").get_data(as_text=True)
    assert "This is the first version" in page and "Publish version 1" in page
    session.rollback()
    assert (
        session.get(Journey, journey.id).live_version is None
    )  # asking changed nothing

    response = _post(marketer, f"/journeys/{journey.id}/publish")
    assert response.status_code == 302
    session.rollback()
    assert session.get(Journey, journey.id).status is JourneyStatus.live

    from engine.models import JourneyVersion, utcnow

    version = session.scalars(select(JourneyVersion)).one()
    make_run(session, version, current_node="end", wake_at=utcnow())
    # A draft equal to the live version: nothing to publish, and no button that would.
    same = marketer.get(f"/journeys/{journey.id}/publish").get_data(as_text=True)
    assert "Nothing to publish in “Welcome”" in same
    assert "The draft is the same as version 1, which is live" in same
    assert "Publish version 2" not in same and 'id="publish-form"' not in same
    # Moved steps alone make a version whose customers go through the same steps.
    moved = {
        **document,
        "layout": {"start": {"x": 40, "y": 0}, "end": {"x": 40, "y": 200}},
    }
    assert (
        _put_draft(marketer, journey.id, {"revision": 2, "document": moved}).status_code
        == 200
    )
    layout_only = marketer.get(f"/journeys/{journey.id}/publish").get_data(as_text=True)
    assert "Only the layout or the notes changed since version 1" in layout_only
    assert "Publish version 2" in layout_only
    document["nodes"].insert(
        1, {"id": "hour", "type": "wait", "config": {"duration": "PT1H"}}
    )
    document["edges"] = [{"from": "start", "to": "hour"}, {"from": "hour", "to": "end"}]
    assert (
        _put_draft(
            marketer, journey.id, {"revision": 3, "document": document}
        ).status_code
        == 200
    )

    page = marketer.get(f"/journeys/{journey.id}/publish").get_data(as_text=True)
    # Steps are named by what they do, not by their ids.
    assert (
        'Added: <span class="step-name"><strong>Wait</strong> '
        '<span class="muted">Wait 1 hour</span></span>'
    ) in page
    assert "Connections between steps changed." in page
    assert "choose where the customers already waiting in the journey go" in page
    assert "1 customer waiting at &#39;Exit&#39; (version 1) keep waiting" in page
    assert "Publish version 2" in page
    done = _post(marketer, f"/journeys/{journey.id}/publish", follow_redirects=True)
    assert "Published version 2 of “Welcome”" in done.get_data(as_text=True)
    session.rollback()
    session.expire_all()  # nothing ran since the last commit, so the rollback expired nothing
    assert session.get(Journey, journey.id).live_version == 2


def test_a_draft_with_problems_cannot_be_published_from_the_page(marketer, session):
    _post(marketer, "/journeys/new", {"name": "Broken", "starter": "blank"})
    journey = session.scalars(select(Journey)).one()
    page = marketer.get(f"/journeys/{journey.id}/publish").get_data(as_text=True)
    assert "name the event that starts the journey, e.g. cart_abandoned" in page
    assert "Publish version" not in page
    _post(marketer, f"/journeys/{journey.id}/publish")
    session.rollback()
    assert session.get(Journey, journey.id).status is JourneyStatus.draft


def test_pause_resume_and_restore_a_past_version(marketer, session):
    journey, document = _valid_blank(marketer, session)
    _post(marketer, f"/journeys/{journey.id}/publish")
    _post(marketer, f"/journeys/{journey.id}/pause")
    session.rollback()
    assert session.get(Journey, journey.id).status is JourneyStatus.paused
    _post(marketer, f"/journeys/{journey.id}/resume")
    session.rollback()
    assert session.get(Journey, journey.id).status is JourneyStatus.live

    document["name"] = "Welcome, changed"
    _put_draft(marketer, journey.id, {"revision": 2, "document": document})
    page = marketer.get(f"/journeys/{journey.id}/versions").get_data(as_text=True)
    assert "Open read-only" in page and "Restore as draft" in page
    shown = marketer.get(f"/journeys/{journey.id}?version=1").get_data(as_text=True)
    assert "You are looking at version 1, read-only." in shown
    assert 'data-editable="false"' in shown
    old = marketer.get(f"/journeys/{journey.id}/draft.json?version=1").get_json()
    assert old["document"]["name"] == "Welcome"
    assert marketer.get(f"/journeys/{journey.id}?version=9").status_code == 404

    _post(marketer, f"/journeys/{journey.id}/versions/1/restore")
    session.rollback()
    restored = session.get(Journey, journey.id)
    assert restored.draft["name"] == "Welcome" and restored.live_version == 1
    assert "journey.restore_version" in set(session.scalars(select(AuditEntry.action)))


def test_a_steps_form_loads_from_the_draft_and_saves_into_it(
    marketer, session, settings
):
    from engine.crypto import SecretBox
    from tests.factories import make_channels

    make_channels(session, SecretBox(settings.encryption_key), "email", "sms")
    _post(marketer, "/journeys/new", {"name": "Cart", "starter": "cart_recovery"})
    journey = session.scalars(select(Journey)).one()

    panel = marketer.get(
        f"/journeys/{journey.id}/nodes/wait", headers={"HX-Request": "true"}
    )
    html = panel.get_data(as_text=True)
    assert panel.status_code == 200 and "<html" not in html  # the partial alone
    assert 'name="n-wait-event" required type="text" value="order_completed"' in html
    assert 'min="1" name="n-wait-amount" required type="number" value="1"' in html
    assert '<option selected value="H">hours</option>' in html
    assert html.count('name="n-wait-csrf_token"') == 1 and "None" not in html

    token = csrf_token(marketer, "/journeys/")
    saved = marketer.post(
        f"/journeys/{journey.id}/nodes/wait",
        data={
            "n-wait-csrf_token": token,
            "n-wait-revision": "1",
            "n-wait-event": "order_completed",
            "n-wait-amount": "2",
            "n-wait-unit": "D",
        },
        headers={"HX-Request": "true"},
    )
    assert saved.status_code == 200 and "Saved." in saved.get_data(as_text=True)
    trigger = json.loads(saved.headers["HX-Trigger"])["draftSaved"]
    assert trigger["revision"] == 2
    session.rollback()
    node = next(
        n for n in session.get(Journey, journey.id).draft["nodes"] if n["id"] == "wait"
    )
    assert node["config"] == {"event": "order_completed", "timeout": "P2D"}

    wrong = marketer.post(
        f"/journeys/{journey.id}/nodes/mail",
        data={
            "n-mail-csrf_token": token,
            "n-mail-revision": "2",
            "n-mail-channel": "pigeon",
            "n-mail-message.present": "1",
            "n-mail-message.0.name": "",
            "n-mail-message.0.template": "a template with no field name",
        },
        headers={"HX-Request": "true"},
    )
    html = wrong.get_data(as_text=True)
    assert "Not saved: fix the fields marked below." in html
    assert "Name this field, e.g. subject or text" in html
    assert "Not a valid choice." in html
    stale = marketer.post(
        f"/journeys/{journey.id}/nodes/wait",
        data={
            "n-wait-csrf_token": token,
            "n-wait-revision": "1",
            "n-wait-event": "x",
            "n-wait-amount": "3",
            "n-wait-unit": "H",
        },
        headers={"HX-Request": "true"},
    )
    assert "changed since revision 1" in stale.get_data(as_text=True)
    assert "HX-Trigger" not in stale.headers
    assert marketer.get(f"/journeys/{journey.id}/nodes/nope").status_code == 404


def test_engine_problems_show_on_the_field_they_concern(marketer, session):
    _post(marketer, "/journeys/new", {"name": "Cart", "starter": "cart_recovery"})
    journey = session.scalars(select(Journey)).one()
    html = marketer.get(f"/journeys/{journey.id}/nodes/call").get_data(as_text=True)
    assert "Channel" in html and "support-desk" in html  # no channels: named unknown
    assert 'id="n-call-channel-error"' in html


def test_live_counts_arrive_as_an_htmx_event(client, session):
    journey = _stored(session, "cart_recovery")
    login(client, make_user(session, Role.viewer))
    response = client.get(
        f"/journeys/{journey.id}/counts", headers={"HX-Request": "true"}
    )
    figures = json.loads(response.headers["HX-Trigger"])["liveCounts"]
    assert response.status_code == 200 and response.data == b""
    assert figures["entered"] == 0 and figures["nodes"] == {}
    assert response.headers["Cache-Control"] == "no-store"


class _FormReader(HTMLParser):
    """The fields a browser would post from the panel's form, in page order."""

    def __init__(self) -> None:
        super().__init__()
        self.pairs: list[tuple[str, str]] = []
        self._in_form = False
        self._select: str | None = None
        self._options: list[tuple[str, bool]] = []
        self._option: tuple[str | None, bool] | None = None
        self._textarea: str | None = None
        self._text = ""

    def handle_starttag(self, tag, attrs):
        found = dict(attrs)
        if tag == "form" and "node-form" in (found.get("class") or ""):
            self._in_form = True
        if not self._in_form:
            return
        name = found.get("name")
        if tag == "input" and name:
            if found.get("type") not in {"checkbox", "radio"} or "checked" in found:
                self.pairs.append((name, found.get("value") or ""))
        elif tag == "select":
            self._select, self._options = name, []
        elif tag == "option":
            self._option, self._text = (found.get("value"), "selected" in found), ""
        elif tag == "textarea":
            self._textarea, self._text = name, ""

    def handle_data(self, data):
        self._text += data

    def handle_endtag(self, tag):
        if tag == "form":
            self._in_form = False
        elif tag == "option" and self._option is not None:
            value, selected = self._option
            self._options.append((self._text if value is None else value, selected))
            self._option = None
        elif tag == "select" and self._select:
            chosen = [v for v, selected in self._options if selected] or [
                v for v, _ in self._options[:1]
            ]
            self.pairs += [(self._select, v) for v in chosen]
            self._select = None
        elif tag == "textarea" and self._textarea:
            text = self._text[1:] if self._text.startswith("\n") else self._text
            self.pairs.append((self._textarea, text))
            self._textarea = None


def _form_of(html: str) -> MultiDict:
    reader = _FormReader()
    reader.feed(html)
    return MultiDict(reader.pairs)


def _node_config(session, journey_id, node_id):
    session.rollback()
    session.expire_all()
    draft = session.get(Journey, journey_id).draft
    return next(n for n in draft["nodes"] if n["id"] == node_id)["config"]


@pytest.mark.parametrize(
    ("starter", "node_id"),
    [
        ("cart_recovery", "start"),
        ("cart_recovery", "vip"),
        ("vip_routing", "route"),
        ("form_resume", "start"),
        ("form_resume", "wait"),
        ("onboarding", "welcome"),
    ],
)
def test_a_panel_posted_back_as_the_page_shows_it_stores_the_same_config(
    marketer, session, settings, starter, node_id
):
    from engine.crypto import SecretBox
    from tests.factories import make_channels

    make_channels(session, SecretBox(settings.encryption_key), "email", "app", "sms")
    journey = _stored(session, starter)
    before = _node_config(session, journey.id, node_id)
    html = marketer.get(f"/journeys/{journey.id}/nodes/{node_id}").get_data(
        as_text=True
    )
    posted = _form_of(html)
    assert any(name.endswith(".mode") or ".present" in name for name in posted) or (
        node_id == "welcome"
    )
    saved = marketer.post(
        f"/journeys/{journey.id}/nodes/{node_id}",
        data=posted,
        headers={"HX-Request": "true"},
    )
    assert "Saved." in saved.get_data(as_text=True), saved.get_data(as_text=True)
    assert _node_config(session, journey.id, node_id) == before


def test_a_nested_rule_posted_through_the_panel_is_stored_as_the_engine_reads_it(
    marketer, session
):
    journey = _stored(session, "cart_recovery")
    token = csrf_token(marketer, "/journeys/")
    base = {
        "n-vip-csrf_token": token,
        "n-vip-revision": "1",
        "n-vip-rule.mode": "builder",
    }

    def condition(path, field, op, kind, value):
        return {
            f"n-vip-rule.{path}.field": field,
            f"n-vip-rule.{path}.op": op,
            f"n-vip-rule.{path}.type": kind,
            f"n-vip-rule.{path}.value": value,
        }

    posted = {
        **base,
        "n-vip-rule.0.kind": "all",
        **condition("0.0", "customer.traits.vip", "eq", "boolean", "true"),
        "n-vip-rule.0.1.kind": "any",
        **condition("0.1.0", "event.properties.total", "gt", "number", "100"),
        **condition("0.1.1", "event.properties.items", "contains", "text", "shoes"),
        "n-vip-rule.0.2.kind": "not",
        **condition("0.2.0", "customer.traits.tier", "in", "list", "gold\r\nsilver"),
    }
    saved = marketer.post(
        f"/journeys/{journey.id}/nodes/vip", data=posted, headers={"HX-Request": "true"}
    )
    assert "Saved." in saved.get_data(as_text=True)
    assert _node_config(session, journey.id, "vip") == {
        "rule": {
            "all": [
                {"field": "customer.traits.vip", "op": "eq", "value": True},
                {
                    "any": [
                        {"field": "event.properties.total", "op": "gt", "value": 100},
                        {
                            "field": "event.properties.items",
                            "op": "contains",
                            "value": "shoes",
                        },
                    ]
                },
                {
                    "not": {
                        "field": "customer.traits.tier",
                        "op": "in",
                        "value": ["gold", "silver"],
                    }
                },
            ]
        }
    }

    # the engine's problem shows beside the condition it concerns
    posted.update(condition("0.1.0", "total", "gt", "number", "100"))
    posted["n-vip-revision"] = "2"
    saved = marketer.post(
        f"/journeys/{journey.id}/nodes/vip", data=posted, headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    assert "Saved." in saved
    found = re.search(r'id="n-vip-rule-0-1-0-error">([^<]*)<', saved)
    assert found and found.group(1).startswith("The field “total” must start with")
    assert 'id="n-vip-rule-0-0-error"' not in saved

    # a value that cannot be read is not saved, and is marked where it is
    posted.update(condition("0.1.0", "event.properties.total", "gt", "number", "lots"))
    posted["n-vip-revision"] = "3"
    refused = marketer.post(
        f"/journeys/{journey.id}/nodes/vip", data=posted, headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    assert "Not saved: fix the fields marked below." in refused
    assert 'id="n-vip-rule-0-1-0-error">Write a number, such as 42 or 9.5<' in refused
    session.rollback()
    assert session.get(Journey, journey.id).draft_revision == 3


def test_an_edit_inside_the_panel_answers_with_it_and_saves_nothing(marketer, session):
    journey = _stored(session, "cart_recovery")
    html = marketer.get(f"/journeys/{journey.id}/nodes/vip").get_data(as_text=True)
    posted = _form_of(html)
    posted.add("action", "n-vip-rule|add-group|0")
    answer = marketer.post(
        f"/journeys/{journey.id}/nodes/vip", data=posted, headers={"HX-Request": "true"}
    )
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "HX-Trigger" not in answer.headers
    assert 'id="n-vip-rule-0-1-0-field" name="n-vip-rule.0.1.0.field"' in page
    assert re.search(r'id="n-vip-rule-0-1-0-field"[^>]* autofocus>', page)
    assert "Changed, not saved yet." in page
    session.rollback()
    assert session.get(Journey, journey.id).draft_revision == 1

    posted = _form_of(page)
    posted.add("action", "n-vip-rule|to-json|")
    page = marketer.post(
        f"/journeys/{journey.id}/nodes/vip", data=posted, headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    assert 'name="n-vip-rule.json"' in page and "Use the builder" in page


def test_the_preview_renders_each_message_field_and_names_a_broken_line(
    marketer, session
):
    journey = _stored(session, "cart_recovery")
    html = marketer.get(f"/journeys/{journey.id}/nodes/mail").get_data(as_text=True)
    assert 'id="n-mail-message-0-preview"' in html and "Still thinking?" in html
    assert "a sample customer (there are no customers yet)" in html
    posted = _form_of(html).to_dict()
    assert '"first_name": "Ada"' in posted["n-mail-sample"]
    posted["n-mail-message.0.template"] = "Hi {{ customer.traits.first_name }}!"
    answer = marketer.post(f"/journeys/{journey.id}/nodes/mail/preview", data=posted)
    text = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert 'id="n-mail-message-0-preview" hx-swap-oob="true"' in text
    assert "Hi Ada!" in text

    posted["n-mail-message.0.template"] = "Hi\n{{ customer.traits.first_name }"
    text = marketer.post(
        f"/journeys/{journey.id}/nodes/mail/preview", data=posted
    ).get_data(as_text=True)
    assert "<strong>Line 2:</strong> The template does not parse: expected" in text
    assert "<code>{{ customer.traits.first_name }</code>" in text

    posted["n-mail-message.0.template"] = "Hi {{ customer.traits.first_name }}"
    posted["n-mail-sample"] = '{"first_name": "Grace"'
    text = marketer.post(
        f"/journeys/{journey.id}/nodes/mail/preview", data=posted
    ).get_data(as_text=True)
    assert "The traits cannot be read at line 1" in text and "Hi Ada" in text
    posted["n-mail-sample"] = '{"first_name": "Grace"}'
    text = marketer.post(
        f"/journeys/{journey.id}/nodes/mail/preview", data=posted
    ).get_data(as_text=True)
    assert "Hi Grace" in text
    assert (
        marketer.post(
            f"/journeys/{journey.id}/nodes/vip/preview", data=posted
        ).status_code
        == 404
    )


def test_journey_settings_edit_the_goal_and_exit_rules(marketer, session):
    journey = _stored(session, "cart_recovery")
    html = marketer.get(
        f"/journeys/{journey.id}/settings", headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    assert "<html" not in html and "Journey settings" in html
    posted = _form_of(html)
    assert posted.get("journey-goal_event") == "order_completed"
    posted.add("action", "journey-goal_where|start|")
    html = marketer.post(
        f"/journeys/{journey.id}/settings", data=posted, headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    posted = _form_of(html).to_dict()
    posted.update(
        {
            "journey-name": "Cart recovery, v2",
            "journey-goal_where.0.0.field": "event.properties.order_value",
            "journey-goal_where.0.0.op": "gte",
            "journey-goal_where.0.0.type": "number",
            "journey-goal_where.0.0.value": "50",
        }
    )
    saved = marketer.post(
        f"/journeys/{journey.id}/settings", data=posted, headers={"HX-Request": "true"}
    )
    text = saved.get_data(as_text=True)
    assert "Saved." in text
    assert '<h1 id="journey-name" hx-swap-oob="true">Cart recovery, v2</h1>' in text
    assert json.loads(saved.headers["HX-Trigger"])["draftSaved"]["revision"] == 2
    session.rollback()
    session.expire_all()
    draft = session.get(Journey, journey.id).draft
    assert draft["name"] == "Cart recovery, v2"
    assert draft["goal"] == {
        "event": "order_completed",
        "within": "P7D",
        "where": {"field": "event.properties.order_value", "op": "gte", "value": 50},
    }
    assert draft["exit_on"] == [{"event": "unsubscribed"}]
    assert draft["nodes"] == starters.document("cart_recovery")["nodes"]


def test_a_viewer_reads_the_panels_but_cannot_post_to_them(client, session):
    journey = _stored(session, "cart_recovery")
    login(client, make_user(session, Role.viewer))
    html = client.get(f"/journeys/{journey.id}/nodes/vip").get_data(as_text=True)
    assert "<fieldset disabled>" in html and "Save step" not in html
    settings_page = client.get(f"/journeys/{journey.id}/settings")
    assert settings_page.status_code == 200
    assert "Save settings" not in settings_page.get_data(as_text=True)
    token = csrf_token(client, "/journeys/")
    for path, data in (
        (f"/journeys/{journey.id}/nodes/vip", {"action": "n-vip-rule|add-group|0"}),
        (f"/journeys/{journey.id}/nodes/mail/preview", {}),
        (f"/journeys/{journey.id}/settings", {"journey-name": "Mine"}),
    ):
        answer = client.post(path, data={"csrf_token": token, **data})
        assert answer.status_code == 403, path
    session.rollback()
    assert session.get(Journey, journey.id).draft_revision == 1


def test_sticky_notes_live_in_the_layout_and_are_not_steps(marketer, session):
    _post(marketer, "/journeys/new", {"name": "Cart", "starter": "blank"})
    journey = session.scalars(select(Journey)).one()
    loaded = marketer.get(f"/journeys/{journey.id}/draft.json").get_json()
    document = json.loads(json.dumps(loaded["document"]))
    document["nodes"][0]["config"]["event"] = "signed_up"
    notes = [{"id": "note_1", "x": 40, "y": 300, "text": "Ask legal about the wording"}]
    document["layout"] = {**document.get("layout", {}), "notes": notes}
    saved = _put_draft(marketer, journey.id, {"revision": 1, "document": document})
    assert saved.status_code == 200
    answer = saved.get_json()
    assert answer["problems"] == []
    assert answer["document"]["layout"]["notes"] == notes
    assert set(answer["ports"]) == {"start", "end"}  # a note is not a step
    assert [n["id"] for n in answer["document"]["nodes"]] == ["start", "end"]

    session.rollback()
    assert session.get(Journey, journey.id).draft["layout"]["notes"] == notes
    reloaded = marketer.get(f"/journeys/{journey.id}/draft.json").get_json()
    assert reloaded["document"]["layout"]["notes"] == notes
    exported = json.loads(marketer.get(f"/journeys/{journey.id}/export").data)
    assert exported["layout"]["notes"] == notes
    _post(marketer, f"/journeys/{journey.id}/duplicate")
    session.rollback()
    copy = session.scalars(select(Journey).where(Journey.id != journey.id)).one()
    assert copy.draft["layout"]["notes"] == notes


def test_steps_are_named_by_label_and_summary_on_the_canvas_and_the_list(
    marketer, session
):
    journey = _stored(session, "cart_recovery")
    html = marketer.get(f"/journeys/{journey.id}/nodes/wait").get_data(as_text=True)
    posted = _form_of(html)
    posted[next(k for k in posted if k.endswith("-label"))] = "  Give them an hour "
    saved = marketer.post(
        f"/journeys/{journey.id}/nodes/wait",
        data=posted,
        headers={"HX-Request": "true"},
    )
    assert "Saved." in saved.get_data(as_text=True)
    canvas = json.loads(saved.headers["HX-Trigger"])["draftSaved"]
    assert canvas["summaries"]["wait"] == "Wait for order_completed, up to 1 hour"
    assert canvas["summaries"]["mail"].startswith("Send via email (sms if it fails)")
    session.rollback()
    session.expire_all()
    wait = next(
        n for n in session.get(Journey, journey.id).draft["nodes"] if n["id"] == "wait"
    )
    assert wait["label"] == "Give them an hour"

    answer = marketer.get(f"/journeys/{journey.id}/draft.json").get_json()
    assert answer["summaries"]["start"] == "When cart_abandoned where cart_value ≥ 50"
    listed = marketer.get(f"/journeys/{journey.id}").get_data(as_text=True)
    row = listed.split('id="node-wait"')[1].split("</tr>")[0]
    assert (
        "Give them an hour" in row and "Wait for order_completed, up to 1 hour" in row
    )

    # Clearing the label takes it out of the document.
    posted[next(k for k in posted if k.endswith("-label"))] = ""
    revision = next(k for k in posted if k.endswith("-revision"))
    posted[revision] = str(session.get(Journey, journey.id).draft_revision)
    again = marketer.post(f"/journeys/{journey.id}/nodes/wait", data=posted)
    assert "Saved." in again.get_data(as_text=True)
    session.rollback()
    session.expire_all()
    wait = next(
        n for n in session.get(Journey, journey.id).draft["nodes"] if n["id"] == "wait"
    )
    assert "label" not in wait


def test_publish_warns_before_it_hurts_and_still_publishes(marketer, session, settings):

    from engine.analytics import counters
    from engine.analytics.counters import Metric
    from engine.channels import create_channel
    from engine.crypto import SecretBox
    from engine.journeys import lifecycle
    from engine.models import Channel, utcnow

    box = SecretBox(settings.encryption_key)
    create_channel(session, box, "email", "Email provider", "email")  # no action URL
    create_channel(
        session,
        box,
        "app",
        "Mobile app",
        "app",
        outbound_url="https://app.example.com/a",
    )
    create_channel(
        session,
        box,
        "sms",
        "SMS provider",
        "sms",
        outbound_url="https://sms.example.com/a",
    )
    session.commit()
    # Another journey is live on the same event and took in three customers this week.
    live_one = _stored(session, "onboarding")
    lifecycle.publish(session, live_one, lifecycle.check_context(session), None)
    now = utcnow()
    counters.add(
        session, Metric.ENTERED, now, journey_id=live_one.id, version_id=1, amount=3
    )
    sms = session.scalars(select(Channel).where(Channel.slug == "sms")).one()
    counters.add(
        session, Metric.REASON, now, journey_id=live_one.id, version_id=1,
        channel_id=sms.id, label="breaker_open", amount=4,
    )  # fmt: skip
    session.commit()

    document = starters.document("onboarding")
    document["name"] = "Welcome again"
    del document["goal"]
    journey, _ = lifecycle.create_journey(
        session, document, lifecycle.check_context(session), None
    )
    session.commit()
    page = marketer.get(f"/journeys/{journey.id}/publish").get_data(as_text=True)
    warnings = page.split('id="warnings-h"')[1].split("</section>")[0]
    assert (
        "“Send” (Send via Email provider: Welcome, [first_name]) sends through "
        "Email provider, which has no action URL, so every message to it is suppressed."
    ) in warnings
    assert "/channels/email" in warnings
    assert (
        "“Onboarding across email and app” is live and also starts when signed_up "
        "arrives: it took in 3 customers in the last 7 days"
    ) in warnings
    assert f"/journeys/{live_one.id}" in warnings
    assert "The journey has no goal" in warnings
    assert "has no fallback channel, and SMS provider failed often enough" in warnings
    assert "4 deliveries were held back" in warnings
    assert "Publish version 1" in page  # the marketer can publish anyway
    done = _post(marketer, f"/journeys/{journey.id}/publish", follow_redirects=True)
    assert "Published version 1 of “Welcome again”" in done.get_data(as_text=True)


def test_a_name_that_would_send_empty_is_pointed_out_on_the_step_and_before_publishing(
    marketer, session, settings
):
    from engine.crypto import SecretBox
    from engine.journeys import lifecycle
    from tests.factories import make_channels

    make_channels(session, SecretBox(settings.encryption_key), "email", "app", "sms")
    document = starters.document("onboarding")
    welcome = next(n for n in document["nodes"] if n["id"] == "welcome")
    welcome["config"]["message"]["subject"] = "Welcome, {{ customer.first_name }}"
    journey, _ = lifecycle.create_journey(
        session, document, lifecycle.check_context(session), None, allow_problems=True
    )
    session.commit()
    panel = marketer.get(f"/journeys/{journey.id}/nodes/welcome").get_data(as_text=True)
    assert (
        "{{ customer.first_name }} in “subject” is always empty; did you mean "
        "{{ customer.traits.first_name }}?"
    ) in panel
    page = marketer.get(f"/journeys/{journey.id}/publish").get_data(as_text=True)
    warnings = page.split('id="warnings-h"')[1].split("</section>")[0]
    assert "{{ customer.first_name }} in “subject” is always empty" in warnings
    assert f"/journeys/{journey.id}?step=welcome" in warnings
