"""The Policies page: marketers change the brand-wide rules, viewers read them."""

from engine.crypto import SecretBox
from engine.models import Role
from engine.policies import document_of, store
from tests.factories import csrf_token, login, make_channels, make_user


def _form(token, revision="0", **fields):
    data = {
        "csrf_token": token,
        "revision": revision,
        "caps-0-channels": ["email", "sms"],
        "caps-0-max": "3",
        "caps-0-per": "P7D",
        "quiet_on": "y",
        "quiet_start": "21:00",
        "quiet_end": "08:00",
        "quiet_channels": ["sms"],
        "quiet_trait": "timezone",
        "holdout": "5",
    }
    data.update(fields)
    return data


def test_a_marketer_sets_caps_quiet_hours_and_a_holdout(client, session, settings):
    make_channels(session, SecretBox(settings.encryption_key), "email", "sms")
    login(client, make_user(session, Role.marketer))
    page = client.get("/policies/")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Frequency caps" in text and "Save policies" in text
    assert "0 sends kept back by a frequency cap" in text
    token = csrf_token(client, "/policies/")
    saved = client.post("/policies/", data=_form(token), follow_redirects=True)
    assert saved.status_code == 200
    assert "Saved." in saved.get_data(as_text=True)
    session.rollback()
    policies, row = store.read(session)
    assert row.revision == 1
    assert document_of(policies) == {
        "frequency_caps": [{"channels": ["email", "sms"], "max": 3, "per": "P7D"}],
        "quiet_hours": {
            "start": "21:00",
            "end": "08:00",
            "channels": ["sms"],
            "timezone_trait": "timezone",
        },
        "global_holdout": {"percent": 5},
    }
    # The page shows what is stored, with an empty row to add another cap; a removed cap
    # goes, and quiet hours switched off go too.
    again = client.get("/policies/").get_data(as_text=True)
    assert 'name="caps-1-max"' in again and 'value="3"' in again
    removed = client.post(
        "/policies/",
        data=_form(
            token,
            revision="1",
            **{"caps-0-remove": "y", "quiet_on": "", "holdout": "0"},
        ),
    )
    assert removed.status_code == 302
    session.rollback()
    assert store.read(session)[0].empty


def test_a_mistake_is_shown_at_its_field_and_nothing_is_saved(
    client, session, settings
):
    make_channels(session, SecretBox(settings.encryption_key), "email", "sms")
    login(client, make_user(session, Role.marketer))
    token = csrf_token(client, "/policies/")
    bad = client.post(
        "/policies/",
        data=_form(
            token,
            **{"caps-0-channels": [], "quiet_end": "21:00", "holdout": "80"},
        ),
    )
    assert bad.status_code == 422
    text = bad.get_data(as_text=True)
    assert 'id="caps-0-channels-error"' in text
    assert "give a list of one or more channel slugs" in text
    assert "the end must differ from the start" in text
    assert "give a share from 0 to 50 percent" in text
    session.rollback()
    assert store.read(session)[1] is None
    # A change based on an older revision is refused, not applied over the newer one.
    assert client.post("/policies/", data=_form(token)).status_code == 302
    stale = client.post("/policies/", data=_form(token, revision="0"))
    assert stale.status_code == 409
    assert "changed meanwhile" in stale.get_data(as_text=True)
    # A page that cannot say which revision it changes is refused, not applied blindly.
    assert client.post("/policies/", data=_form(token, revision="²")).status_code == 400
    # Without the form's token nothing is changed.
    assert client.post("/policies/", data=_form("")).status_code == 400


def test_a_viewer_reads_the_policies_but_cannot_change_them(client, session, settings):
    make_channels(session, SecretBox(settings.encryption_key), "email")
    login(client, make_user(session, Role.viewer))
    page = client.get("/policies/").get_data(as_text=True)
    assert "<fieldset disabled" in page and "Save policies" not in page
    token = csrf_token(client, "/policies/")
    assert client.post("/policies/", data=_form(token)).status_code == 403
