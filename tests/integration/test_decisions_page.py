"""The Decisions pages: a marketer makes a table of rules, tries it, publishes it; viewers read."""

from werkzeug.datastructures import MultiDict

from engine.decisions import store
from engine.models import Role
from tests.factories import csrf_token, login, make_user
from tests.integration.test_decisions import TABLE
from webapp.decisions.forms import DecisionForm, read_values, show_values


def _posted(app, document, token, revision):
    """What the browser posts for `document` as the editor shows it."""
    with app.test_request_context():
        form = DecisionForm(formdata=None)
        form.load(document, revision)
        pairs = form.rules.pairs()
    default = document["default"]
    return Posted(
        [
            ("csrf_token", token),
            ("revision", str(revision)),
            ("name", document["name"]),
            ("description", ""),
            ("default_outcome", default["outcome"]),
            ("default_values", show_values(default["values"])),
            *pairs,
        ]
    )


class Posted(list):
    """Form pairs that can be added to, and given to the test client as a MultiDict."""

    def __add__(self, other):
        return Posted([*self, *other])

    def multi(self):
        return MultiDict(self)


def test_values_read_back_as_they_are_shown():
    values = {
        "queue": "vip",
        "sla_hours": 1,
        "urgent": True,
        "code": "007",
        "note": "a: b",
    }
    assert read_values(show_values(values)) == (values, None)
    assert read_values("queue vip")[1].startswith("line 1: write each value")


def test_a_marketer_makes_tries_and_publishes_a_table(app, client, session):
    login(client, make_user(session, Role.marketer))
    index = client.get("/decisions/")
    assert index.status_code == 200 and "No decision tables yet" in index.get_data(
        as_text=True
    )
    token = csrf_token(client, "/decisions/")
    bad = client.post(
        "/decisions/", data={"csrf_token": token, "name": "Tier", "key": "Tier!"}
    )
    assert bad.status_code == 400 and "lower-case letters" in bad.get_data(as_text=True)
    made = client.post(
        "/decisions/",
        data={"csrf_token": token, "name": "Support tier", "key": "support_tier"},
    )
    assert made.status_code == 302 and made.headers["Location"].endswith(
        "/decisions/support_tier"
    )
    page = client.get("/decisions/support_tier").get_data(as_text=True)
    assert "not published yet" in page and "+ Add a rule" in page
    # The editor adds a rule without saving; then the whole table is saved as the draft.
    added = client.post(
        "/decisions/support_tier",
        data=(
            _posted(app, {**TABLE, "rules": []}, token, 1) + [("action", "rules|add|")]
        ).multi(),
        headers={"HX-Request": "true"},
    )
    assert 'name="rules.0.outcome"' in added.get_data(as_text=True)
    assert "Changed, not saved yet" in added.get_data(as_text=True)
    saved = client.post(
        "/decisions/support_tier",
        data=_posted(app, TABLE, token, 1).multi(),
        headers={"HX-Request": "true"},
    )
    assert saved.status_code == 200, saved.get_data(as_text=True)
    assert "Draft saved." in saved.get_data(as_text=True)
    session.rollback()
    row = store.get(session, "support_tier")
    assert row.draft["rules"] == TABLE["rules"] and row.draft_revision == 2
    # Moving rule 2 above rule 1 (unsaved) shows them the other way round.
    moved = client.post(
        "/decisions/support_tier",
        data=(_posted(app, TABLE, token, 2) + [("action", "rules|up|1")]).multi(),
        headers={"HX-Request": "true"},
    ).get_data(as_text=True)
    assert moved.index(">queue: big-cart") < moved.index(">queue: vip")
    # A mistake is shown at its rule and nothing is saved.
    broken = _posted(app, TABLE, token, 2)
    broken = MultiDict(
        [(k, "default" if k == "rules.1.outcome" else v) for k, v in broken]
    )
    refused = client.post(
        "/decisions/support_tier", data=broken, headers={"HX-Request": "true"}
    )
    assert refused.status_code == 200  # htmx swaps it in: the mistake is on the page
    assert "names an output every decide step has" in refused.get_data(as_text=True)
    assert "Not saved: fix the parts marked below." in refused.get_data(as_text=True)
    session.rollback()
    assert store.get(session, "support_tier").draft_revision == 2
    # The test panel tries the rules in the editor, saved or not, and says which held.
    tried = client.post(
        "/decisions/support_tier/test",
        data=(
            _posted(app, TABLE, token, 2)
            + [("traits", '{"tier": "regular"}'), ("context", '{"cart_value": 700}')]
        ).multi(),
        headers={"HX-Request": "true"},
    ).get_data(as_text=True)
    assert "<strong>premium</strong>" in tried and "(rule 2)" in tried
    assert "Rule 1 (premium)</strong>:\n      does not hold" in tried
    assert "holds, and decides" in tried
    not_json = client.post(
        "/decisions/support_tier/test",
        data=(_posted(app, TABLE, token, 2) + [("traits", "tier: vip")]).multi(),
        headers={"HX-Request": "true"},
    ).get_data(as_text=True)
    assert "The traits are not JSON" in not_json
    # Publish, then restore version 1 after a change.
    published = client.post(
        "/decisions/support_tier/publish",
        data={"csrf_token": token},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "Version 1 of “Support tier” is live" in published
    session.rollback()
    assert store.get(session, "support_tier").live_version == 1
    restored = client.post(
        "/decisions/support_tier/versions/1/restore",
        data={"csrf_token": token},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "Version 1 is the draft again" in restored


def test_a_viewer_reads_but_cannot_change_a_table(client, session):
    row = store.create(session, TABLE, None)
    store.publish(session, row, None)
    session.commit()
    login(client, make_user(session, Role.viewer))
    page = client.get("/decisions/support_tier").get_data(as_text=True)
    assert "version 1 is live" in page
    assert "Save draft" not in page and "Publish the saved draft" not in page
    listed = client.get("/decisions/").get_data(as_text=True)
    assert "Support tier" in listed and "New decision table" not in listed
    token = csrf_token(client, "/decisions/")
    refused = client.post("/decisions/support_tier/publish", data={"csrf_token": token})
    assert refused.status_code == 403
