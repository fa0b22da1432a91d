"""Event schemas: an enforced schema refuses a breaking event with the field named and keeps
it to be replayed; strip removes unnamed properties; flag takes and marks; a draft is
inferred from the events seen; the API keeps versions."""

import json
from datetime import timedelta

from sqlalchemy import select

from engine.models import AuditEntry, Event, Role, SchemaViolation, utcnow
from engine.schemas import infer, parse
from engine.schemas import store as schema_store
from tests.channels import post_event
from tests.factories import api_client, csrf_token, login, make_user

CART = {
    "type": "object",
    "properties": {"cart_value": {"type": "number"}, "items": {"type": "integer"}},
    "required": ["cart_value"],
}


def set_schema(world, mode, channels=()):
    schema_store.save(
        world.session,
        "cart_abandoned",
        {"schema": CART, "mode": mode, "channels": list(channels)},
        None,
    )
    world.session.commit()
    schema_store.forget()


def cart(customer="c-1", **properties):
    return {
        "type": "cart_abandoned",
        "customer": {"id": customer},
        "properties": properties,
    }


def send(world, body, slug="web"):
    return post_event(world.client, slug, world.secrets[slug], body)


def test_an_enforced_schema_refuses_with_the_field_named_and_keeps_the_event(world):
    set_schema(world, "enforce")
    answer = send(world, cart(cartValue=80))
    assert answer.status_code == 400
    body = answer.get_json()
    assert body["error"]["code"] == "schema_violation"
    assert body["error"]["field"] == "properties"
    assert (
        "the event breaks the schema of cart_abandoned at properties"
        in body["error"]["message"]
    )
    assert body["problems"] == [
        {"pointer": "/properties", "message": "'cart_value' is a required property"}
    ]
    wrong = send(world, cart(cart_value="eighty")).get_json()
    assert wrong["problems"] == [
        {
            "pointer": "/properties/cart_value",
            "message": "'eighty' is not of type 'number'",
        }
    ]
    assert world.session.scalar(select(Event.id)) is None  # nothing processed
    kept = world.session.scalars(
        select(SchemaViolation).order_by(SchemaViolation.id)
    ).all()
    assert [(v.outcome, v.event_type) for v in kept] == [
        ("refused", "cart_abandoned"),
        ("refused", "cart_abandoned"),
    ]
    assert kept[0].body["properties"] == {"cartValue": 80}
    assert kept[0].expires_at - kept[0].received_at == timedelta(days=7)
    # A schema for another channel does not touch this one's events.
    set_schema(world, "enforce", channels=["email"])
    assert send(world, cart(cartValue=80)).status_code == 202


def test_refused_events_are_replayed_once_the_schema_is_fixed(world):
    set_schema(world, "enforce")
    for n in range(3):
        assert send(world, cart(customer=f"c-{n}", cartValue=80)).status_code == 400
    assert send(world, cart(customer="c-9", cart_value="x")).status_code == 400
    login(world.client, make_user(world.session, Role.marketer))
    token = csrf_token(world.client, "/schemas/cart_abandoned")
    page = world.client.get("/schemas/cart_abandoned").get_data(as_text=True)
    assert "Replay the refused events" in page and "cartValue" not in page
    # The channel's field was right after all: the schema learns the new name.
    fixed = {
        **CART,
        "properties": {**CART["properties"], "cartValue": {"type": "number"}},
    }
    fixed["required"] = []
    schema_store.save(
        world.session, "cart_abandoned", {"schema": fixed, "mode": "enforce"}, None
    )
    world.session.commit()
    schema_store.forget()
    replayed = world.client.post(
        "/schemas/cart_abandoned/replay",
        data={"csrf_token": token},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "3 event(s) taken; 1 still do not fit" in replayed
    world.session.rollback()
    events = world.session.scalars(select(Event).order_by(Event.id)).all()
    assert [e.payload["properties"] for e in events] == [{"cartValue": 80}] * 3
    outcomes = world.session.scalars(
        select(SchemaViolation.outcome).order_by(SchemaViolation.id)
    ).all()
    assert outcomes == ["replayed", "replayed", "replayed", "refused"]
    # Replaying again takes nothing twice.
    world.client.post("/schemas/cart_abandoned/replay", data={"csrf_token": token})
    world.session.rollback()
    assert len(world.session.scalars(select(Event)).all()) == 3


def test_strip_removes_unnamed_properties_and_flag_marks_what_breaks(world):
    set_schema(world, "strip")
    assert send(world, cart(cart_value=80, coupon="X", debug=True)).status_code == 202
    event = world.session.scalars(select(Event)).one()
    assert event.payload["properties"] == {"cart_value": 80}
    set_schema(world, "flag")
    assert send(world, cart(customer="c-2", cart_value="eighty")).status_code == 202
    world.session.rollback()
    flagged = world.session.scalars(
        select(SchemaViolation).where(SchemaViolation.outcome == "flagged")
    ).one()
    latest = world.session.scalar(select(Event.id).order_by(Event.id.desc()))
    assert flagged.event_id == latest
    assert flagged.problems[0]["pointer"] == "/properties/cart_value"
    # The channel page shows the first problems of its flagged events.
    login(world.client, make_user(world.session, Role.viewer))
    page = world.client.get("/channels/web").get_data(as_text=True)
    assert "is not of type" in page and "cart_abandoned" in page


def test_a_batch_refuses_only_its_breaking_events(world):
    set_schema(world, "enforce")
    body = {
        "events": [
            {"id": "b-1", **cart(cart_value=10)},
            {"id": "b-2", **cart(cart_value="ten")},
        ]
    }
    answer = post_event(
        world.client, "web", world.secrets["web"], body, path="/batch"
    ).get_json()
    assert [r["status"] for r in answer["results"]] == [202, 400]
    refused = answer["results"][1]
    assert refused["error"]["code"] == "schema_violation"
    assert refused["error"]["field"] == "events[1].properties.cart_value"
    assert refused["problems"][0]["pointer"] == "/properties/cart_value"
    world.session.rollback()
    assert world.session.scalars(select(SchemaViolation.webhook_id)).all() == ["b-2"]


def test_a_draft_is_inferred_from_the_events_seen(world):
    for n, value in enumerate([10, 12.5, 30]):
        props = {"cart_value": value, "currency": "EUR"}
        if n == 1:
            props["coupon"] = "SPRING"
        world.post(cart(customer=f"c-{n}", **props))
    draft, read = schema_store.draft(world.session, "cart_abandoned")
    assert read == 3
    assert draft["properties"]["cart_value"] == {"type": "number"}
    assert draft["properties"]["currency"] == {"type": "string"}
    assert sorted(draft["required"]) == ["cart_value", "currency"]
    # The draft is a schema the events it came from meet.
    schema = parse("cart_abandoned", {"schema": draft, "mode": "enforce"})
    from engine.schemas import check

    for props in (
        {"cart_value": 10, "currency": "EUR"},
        {"cart_value": 1.5, "currency": "USD"},
    ):
        assert check(schema, props).problems == ()
    assert infer([]) is None


def test_the_api_keeps_versions_and_names_each_problem(client, session, settings):
    from engine.channels import create_channel
    from engine.crypto import SecretBox

    create_channel(session, SecretBox(settings.encryption_key), "web", "Web", "web")
    session.commit()
    marketer = api_client(client, session, Role.marketer)
    assert marketer.get("/api/v1/schemas/cart_abandoned").status_code == 404
    put = marketer.put(
        "/api/v1/schemas/cart_abandoned", json={"schema": CART, "mode": "flag"}
    )
    assert put.status_code == 200, put.get_json()
    assert (put.get_json()["version"], put.get_json()["mode"]) == (1, "flag")
    again = marketer.put(
        "/api/v1/schemas/cart_abandoned",
        json={"schema": CART, "mode": "enforce", "channels": ["web"]},
    ).get_json()
    assert (again["version"], again["channels"]) == (2, ["web"])
    bad = marketer.put(
        "/api/v1/schemas/cart_abandoned",
        json={"schema": {"type": "thing"}, "mode": "loud", "channels": ["fax"]},
    )
    assert bad.status_code == 422
    fields = {p.get("field") for p in bad.get_json()["problems"]}
    assert {"mode", "channels[0]", "schema/type"} <= fields, fields
    session.rollback()
    assert session.scalars(
        select(AuditEntry.action).where(AuditEntry.action == "schema.update")
    ).all() == ["schema.update", "schema.update"]
    viewer = api_client(client, session, Role.viewer)
    got = viewer.get("/api/v1/schemas/cart_abandoned").get_json()
    assert got["schema"] == CART and got["quarantined"] == 0
    assert (
        viewer.put("/api/v1/schemas/cart_abandoned", json={"schema": CART}).status_code
        == 403
    )


def test_kept_events_go_after_seven_days(world):
    set_schema(world, "enforce")
    send(world, cart(cartValue=1))
    assert schema_store.purge(world.session, utcnow() + timedelta(days=6)) == 0
    assert schema_store.purge(world.session, utcnow() + timedelta(days=8)) == 1
    world.session.commit()
    assert json.dumps(world.session.scalars(select(SchemaViolation)).all()) == "[]"


def test_a_step_reading_a_property_the_schema_lacks_is_warned_about(world):
    from engine.journeys import review
    from engine.schemas.fields import missing

    set_schema(world, "flag")
    document = {
        "nodes": [
            {"id": "start", "type": "trigger", "config": {"event": "cart_abandoned"}},
            {
                "id": "big",
                "type": "condition",
                "config": {
                    "rule": {
                        "all": [
                            {
                                "field": "trigger.properties.cartValue",
                                "op": "gte",
                                "value": 50,
                            },
                            {
                                "field": "event.properties.cart_value",
                                "op": "gte",
                                "value": 50,
                            },
                        ]
                    }
                },
            },
            {
                "id": "mail",
                "type": "send",
                "config": {
                    "channel": "email",
                    "message": {
                        "text": "{{ event.properties.items }} items, "
                        "{{ event.properties.coupon }}"
                    },
                },
            },
        ]
    }
    gaps = [
        (g.node, g.path) for g in missing(document, schema_store.every(world.session))
    ]
    assert gaps == [
        ("big", "trigger.properties.cartValue"),
        ("mail", "event.properties.coupon"),
    ]
    warned = review.schema_warnings(world.session, document, "mail")
    assert [w.message for w in warned] == [
        "event.properties.coupon is not in the schema of cart_abandoned: it is empty "
        "unless the channel sends it; check its name"
    ]
    # An event type without a schema is not judged.
    document["nodes"][0]["config"]["event"] = "browsed"
    assert missing(document, schema_store.every(world.session)) == []


def test_the_rule_builder_offers_the_properties_the_schema_names(world):
    from engine.journeys import samples

    set_schema(world, "flag")
    hints = {
        hint.path
        for hint in samples.field_suggestions(
            world.session, "cart_abandoned", ["cart_abandoned"]
        )
    }
    # No cart_abandoned event was ever sent: the schema alone names these.
    assert {"trigger.properties.items", "event.properties.cart_value"} <= hints


def test_a_schema_reaches_nothing_outside_itself_and_a_broken_one_refuses_no_event(
    world,
):
    from engine.schemas import SchemaDocumentError

    for schema, where in (
        ({"$ref": "http://127.0.0.1:9/meta.json"}, "schema/$ref"),
        (
            {"properties": {"a": {"$ref": "#/$defs/nope"}}},
            "schema/properties/a/$ref",
        ),
    ):
        try:
            parse("cart_abandoned", {"schema": schema})
        except SchemaDocumentError as error:
            assert error.problems[0][0] == where
        else:
            raise AssertionError(f"kept {schema}")
    # A schema that cannot check (kept before such checks, or a pattern Python refuses)
    # takes and flags the event instead of failing it.
    world.session.add(
        schema_store.SchemaRow(
            event_type="cart_abandoned",
            mode="enforce",
            channels=[],
            schema={"properties": {"a": {"pattern": "("}}},
            version=1,
        )
    )
    world.session.commit()
    schema_store.forget()
    assert send(world, cart(a="x")).status_code == 202


def test_a_retry_of_an_event_taken_before_its_schema_is_still_answered_as_taken(world):
    body = cart(cartValue=5)
    first = post_event(
        world.client, "web", world.secrets["web"], body, webhook_id="w-1"
    )
    assert first.status_code == 202
    set_schema(world, "enforce")
    again = post_event(
        world.client, "web", world.secrets["web"], body, webhook_id="w-1"
    )
    assert again.status_code == 202
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["event_id"] == first.get_json()["event_id"]
    world.session.rollback()
    assert world.session.scalars(select(SchemaViolation)).all() == []


def test_replay_goes_within_the_channel_rate(world):
    from engine.models import Channel

    set_schema(world, "enforce")
    for n in range(5):
        assert send(world, cart(customer=f"c-{n}", cartValue=1)).status_code == 400
    world.session.execute(
        Channel.__table__.update().where(Channel.slug == "web").values(rate_limit=4)
    )
    world.session.commit()
    from webapp.hooks.channels import forget

    forget()
    schema_store.save(
        world.session,
        "cart_abandoned",
        {"schema": {"type": "object"}, "mode": "enforce"},
        None,
    )
    world.session.commit()
    schema_store.forget()
    login(world.client, make_user(world.session, Role.marketer))
    token = csrf_token(world.client, "/schemas/cart_abandoned")
    done = world.client.post(
        "/schemas/cart_abandoned/replay",
        data={"csrf_token": token},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "5 event(s) taken; 0 still do not fit" in done
    world.session.rollback()
    assert len(world.session.scalars(select(Event)).all()) == 5


def test_erasing_a_customer_erases_what_the_schemas_kept_of_them(world):
    from engine.models import Customer
    from engine.profiles import privacy

    world.post(cart(customer="ada", cart_value=5))
    set_schema(world, "flag")
    world.post(cart(customer="ada", cart_value="five"))  # taken, flagged, applied
    set_schema(world, "enforce")
    assert send(world, cart(customer="ada", cartValue=5)).status_code == 400
    assert send(world, cart(customer="bob", cartValue=5)).status_code == 400
    world.session.rollback()
    assert len(world.session.scalars(select(SchemaViolation)).all()) == 3
    ada = world.session.scalars(select(Customer)).first()
    counts = privacy.erase(world.session, ada, None)
    world.session.commit()
    assert counts["kept_by_schemas"] == 2
    left = world.session.scalars(select(SchemaViolation)).all()
    assert [v.body["customer"] for v in left] == [{"id": "bob"}]
