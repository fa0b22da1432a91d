from sqlalchemy import select

from engine.crypto import SecretBox
from engine.models import AuditEntry, Channel, Role
from tests.channels import post_event
from tests.factories import api_client


def test_an_admin_creates_a_channel_and_sees_its_secrets_once(
    client, session, settings
):
    api = api_client(client, session, Role.admin)
    response = api.post(
        "/api/v1/channels",
        json={
            "slug": "web",
            "name": "Web site",
            "kind": "web",
            "outbound_url": "https://example.com/actions",
        },
    )
    assert response.status_code == 201
    created = response.get_json()
    assert created["inbound_secret"].startswith("whsec_") and created[
        "outbound_secret"
    ].startswith("whsec_")
    shown = api.get("/api/v1/channels/web").get_json()
    assert (
        shown["name"] == "Web site"
        and shown["outbound_url"] == "https://example.com/actions"
    )
    assert "inbound_secret" not in shown and "whsec_" not in str(
        api.get("/api/v1/channels").get_json()
    )
    stored = session.scalars(select(Channel)).one()
    assert (
        SecretBox(settings.encryption_key).decrypt(stored.inbound_secret)
        == created["inbound_secret"]
    )
    assert session.scalars(
        select(AuditEntry).where(AuditEntry.action == "channel.create")
    ).one()


def test_channel_input_errors_name_the_field(client, session):
    api = api_client(client, session, Role.admin)
    cases = [
        ({"slug": "Web Site", "kind": "web"}, "slug"),
        ({"slug": "web", "kind": "pigeon"}, "kind"),
        ({"kind": "web"}, "slug"),
        ({"slug": "web", "kind": "web", "outbound_url": "ftp://x"}, "outbound_url"),
        ({"slug": "web", "kind": "web", "rate_limit": "fast"}, "rate_limit"),
        ({"slug": "web", "kind": "web", "rate_limit": 0}, "rate_limit"),
    ]
    for body, field in cases:
        response = api.post("/api/v1/channels", json=body)
        assert response.status_code == 422, body
        assert response.get_json()["error"]["field"] == field, body
    assert (
        api.post(
            "/api/v1/channels", data="{not json", content_type="application/json"
        ).status_code
        == 400
    )
    api.post("/api/v1/channels", json={"slug": "web", "kind": "web"})
    again = api.post("/api/v1/channels", json={"slug": "web", "kind": "web"})
    assert (
        again.status_code == 422
        and "already exists" in again.get_json()["error"]["message"]
    )


def test_rotation_gives_new_secrets_and_keeps_the_old_one_for_a_grace_period(
    client, session, settings
):
    api = api_client(client, session, Role.admin)
    first = api.post("/api/v1/channels", json={"slug": "app", "kind": "app"}).get_json()
    rotated = api.post("/api/v1/channels/app/rotate", json={"grace_period": "PT2H"})
    assert rotated.status_code == 200
    body = rotated.get_json()
    assert body["inbound_secret"] != first["inbound_secret"]
    session.expire_all()
    channel = session.scalars(select(Channel)).one()
    box = SecretBox(settings.encryption_key)
    assert box.decrypt(channel.inbound_secret) == body["inbound_secret"]
    assert box.decrypt(channel.previous_inbound_secret) == first["inbound_secret"]
    assert (
        api.get("/api/v1/channels/app").get_json()["rotation_grace_until"]
        == body["previous_valid_until"]
    )
    assert (
        api.post(
            "/api/v1/channels/app/rotate", json={"grace_period": "a while"}
        ).get_json()["error"]["field"]
        == "grace_period"
    )
    assert api.post("/api/v1/channels/none/rotate").status_code == 404
    assert api.post("/api/v1/channels/app/rotate").status_code == 200  # default grace


def test_marketers_read_channels_but_only_admins_change_them(client, session):
    api = api_client(client, session, Role.marketer)
    assert api.get("/api/v1/channels").status_code == 200
    assert (
        api.post("/api/v1/channels", json={"slug": "x", "kind": "web"}).status_code
        == 403
    )
    assert api.get("/api/v1/channels/none").status_code == 404


def test_a_channel_made_or_rotated_through_the_api_takes_events_at_once(
    client, session
):
    api = api_client(client, session, Role.admin)
    body = {"type": "page_viewed", "customer": {"id": "c-1"}}
    unknown = post_event(client, "web", "whsec_" + "A" * 43, body)
    assert unknown.status_code == 404  # the miss is cached by this process for a while
    created = api.post("/api/v1/channels", json={"slug": "web", "kind": "web"})
    secret = created.get_json()["inbound_secret"]
    assert post_event(client, "web", secret, body).status_code == 202
    rotated = api.post("/api/v1/channels/web/rotate").get_json()
    assert post_event(client, "web", rotated["inbound_secret"], body).status_code == 202
