"""What the designer offers as examples: field names from recent data, a sample customer."""

from datetime import timedelta

from engine.crypto import SecretBox
from engine.journeys import samples
from engine.models import Channel, Event, EventStatus, utcnow
from tests.factories import make_channels, make_customer


def _event(session, channel, kind, properties, customer=None, at=None):
    at = at or utcnow()
    event = Event(
        channel_id=channel.id,
        webhook_id=f"w-{kind}-{session.query(Event).count()}",
        type=kind,
        customer_id=customer.id if customer else None,
        payload={"type": kind, "properties": properties, "occurred_at": at.isoformat()},
        status=EventStatus.processed,
        occurred_at=at,
    )
    session.add(event)
    session.flush()
    return event


def test_trait_names_come_from_recent_customers_most_common_first(session):
    make_customer(session, traits={"tier": "vip", "first_name": "Ada"})
    make_customer(
        session,
        traits={"tier": "gold", "address": {"city": "Leeds", "geo": {"lat": 1}}},
    )
    merged = make_customer(session, traits={"merged_only": 1})
    merged.merged_into_id = make_customer(session, traits={"tier": "x"}).id
    session.commit()
    assert samples.trait_keys(session) == [
        "tier",
        "address",
        "address.city",
        "address.geo",
        "address.geo.lat",
        "first_name",
    ]
    assert samples.trait_keys(session, limit=1) == ["tier"]  # the newest only


def test_property_names_come_from_recent_events_of_one_type(session, settings):
    make_channels(session, SecretBox(settings.encryption_key), "web")
    web = session.query(Channel).one()
    _event(session, web, "cart_abandoned", {"old_only": 1})
    for value in (120, 80):
        _event(session, web, "cart_abandoned", {"cart_value": value, "items": 2})
    _event(session, web, "cart_abandoned", {"cart_value": 5, "coupon": {"code": "X"}})
    _event(session, web, "page_viewed", {"url": "/"})
    session.commit()
    assert samples.property_keys(session, "cart_abandoned") == [
        "cart_value",
        "items",
        "coupon",
        "coupon.code",
        "old_only",
    ]
    assert samples.property_keys(session, "cart_abandoned", limit=3) == [
        "cart_value",
        "items",
        "coupon",
        "coupon.code",
    ]
    assert samples.property_keys(session, "nothing_like_it") == []


def test_field_suggestions_name_whole_paths_with_where_they_come_from(
    session, settings
):
    make_channels(session, SecretBox(settings.encryption_key), "web")
    web = session.query(Channel).one()
    make_customer(session, traits={"tier": "vip"})
    _event(session, web, "cart_abandoned", {"cart_value": 120})
    _event(session, web, "order_completed", {"total": 99})
    session.commit()
    hints = {
        h.path: h.note
        for h in samples.field_suggestions(
            session, "cart_abandoned", ["cart_abandoned", "order_completed"]
        )
    }
    assert hints["customer.traits.tier"] == "trait"
    assert hints["customer.email"] == "identifier"
    assert hints["event.properties.cart_value"] == "cart_abandoned property"
    assert hints["event.properties.total"] == "order_completed property"
    assert hints["trigger.properties.cart_value"] == "cart_abandoned property"
    assert "trigger.properties.total" not in hints
    assert hints["event.type"] == "event type"


def test_the_sample_is_the_newest_customer_and_the_latest_trigger_event(
    session, settings
):
    make_channels(session, SecretBox(settings.encryption_key), "web")
    web = session.query(Channel).one()
    make_customer(
        session, traits={"first_name": "Ada"}, identities={"email": "ada@example.com"}
    )
    grace = make_customer(
        session,
        traits={"first_name": "Grace"},
        identities={"email": "grace@example.com"},
    )
    _event(
        session,
        web,
        "cart_abandoned",
        {"cart_value": 1},
        grace,
        utcnow() - timedelta(hours=1),
    )
    _event(session, web, "cart_abandoned", {"cart_value": 2}, grace)
    session.commit()
    sample = samples.sample_scope(session, "cart_abandoned")
    assert sample.label == "the newest customer, grace@example.com"
    scope = sample.scope
    assert scope["customer"]["traits"] == {"first_name": "Grace"}
    assert scope["customer"]["email"] == "grace@example.com"
    assert scope["trigger"]["properties"] == {"cart_value": 2}
    assert scope["trigger"]["channel"] == "web"
    assert scope["event"] == scope["trigger"] and scope["context"] == {}
    tried = samples.sample_scope(session, "cart_abandoned", {"first_name": "Kay"})
    assert tried.scope["customer"]["traits"] == {"first_name": "Kay"}
    assert tried.label.endswith("with the sample traits below")
    same = samples.sample_scope(session, "cart_abandoned", {"first_name": "Grace"})
    assert same.label == "the newest customer, grace@example.com"


def test_the_sample_can_be_a_customer_the_marketer_picked(session):
    ada = make_customer(
        session, traits={"first_name": "Ada"}, identities={"email": "ada@example.com"}
    )
    make_customer(
        session,
        traits={"first_name": "Grace"},
        identities={"email": "grace@example.com"},
    )
    session.commit()
    sample = samples.sample_scope(session, None, customer_id=ada.id)
    assert sample.label == f"ada@example.com (#{ada.id})"
    assert sample.scope["customer"]["traits"] == {"first_name": "Ada"}
    tried = samples.sample_scope(session, None, {"first_name": "Kay"}, ada.id)
    assert tried.scope["customer"]["traits"] == {"first_name": "Kay"}
    # A profile that is gone (erased, merged, mistyped) leaves the newest customer.
    gone = samples.sample_scope(session, None, customer_id=ada.id + 100)
    assert gone.label == "the newest customer, grace@example.com"


def test_with_no_data_yet_the_demo_profile_stands_in(session):
    sample = samples.sample_scope(session, "cart_abandoned")
    assert sample.label == "a sample customer (there are no customers yet)"
    assert sample.scope["customer"]["traits"]["first_name"] == "Ada"
    assert sample.scope["trigger"]["properties"] == {"cart_value": 120.5, "items": 3}
    assert samples.sample_scope(session, None).scope["trigger"]["properties"] == {}
