"""Sample channels, customers, events and journeys, so a new install has something to show."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import audit, journeys, starters
from engine.channels import create_channel
from engine.crypto import SecretBox
from engine.models import (
    Channel,
    ChannelKind,
    Customer,
    Event,
    EventStatus,
    Identity,
    utcnow,
)

CHANNELS = [
    ("web", "Web site", ChannelKind.web),
    ("app", "Mobile app", ChannelKind.app),
    ("email", "Email provider", ChannelKind.email),
    ("sms", "SMS provider", ChannelKind.sms),
    ("support-desk", "Support desk", ChannelKind.support),
]

CUSTOMERS: list[dict[str, Any]] = [
    {
        "id": "c-1001",
        "email": "ada@example.com",
        "phone": "+15550100",
        "traits": {"first_name": "Ada", "tier": "vip", "timezone": "Europe/London"},
    },
    {
        "id": "c-1002",
        "email": "grace@example.com",
        "traits": {
            "first_name": "Grace",
            "tier": "standard",
            "timezone": "America/New_York",
        },
    },
    {
        "id": "c-1003",
        "anonymous_id": "anon-77",
        "phone": "+15550177",
        "traits": {"first_name": "Alan", "tier": "standard"},
    },
    {
        "id": "c-1004",
        "email": "katherine@example.com",
        "traits": {
            "first_name": "Katherine",
            "tier": "vip",
            "timezone": "America/Chicago",
        },
    },
]

EVENTS = [
    ("web", "c-1001", "product_viewed", {"sku": "SKU-1", "price": 80}),
    ("web", "c-1001", "cart_abandoned", {"cart_value": 120.5, "items": 3}),
    ("app", "c-1002", "signed_up", {}),
    ("email", "c-1002", "email_opened", {"subject": "Welcome"}),
    ("support-desk", "c-1003", "ticket_opened", {"topic": "delivery"}),
    ("web", "c-1004", "order_completed", {"order_value": 310}),
]

IDENTIFIER_KINDS = ("id", "email", "phone", "anonymous_id")


def starter(name: str) -> dict[str, Any]:
    """A starter journey document shipped with Throughline, by its key."""
    return starters.document(name)


def load_demo(session: Session, box: SecretBox) -> bool:
    """Add the demo data; returns False (and changes nothing) when it is already there."""
    if session.scalar(select(Channel.id).where(Channel.slug == "web")) is not None:
        return False
    channels = {
        slug: create_channel(session, box, slug, name, kind).channel
        for slug, name, kind in CHANNELS
    }
    customers: dict[str, Customer] = {}
    for spec in CUSTOMERS:
        customer = Customer(
            traits=spec["traits"], consent={slug: True for slug in channels}
        )
        customer.identities = [
            Identity(kind=kind, value=spec[kind])
            for kind in IDENTIFIER_KINDS
            if kind in spec
        ]
        session.add(customer)
        customers[spec["id"]] = customer
    session.flush()
    start = utcnow() - timedelta(hours=len(EVENTS))
    for index, (slug, ref, kind, properties) in enumerate(EVENTS):
        at = start + timedelta(hours=index)
        session.add(
            Event(
                channel_id=channels[slug].id,
                webhook_id=f"demo-{index + 1}",
                type=kind,
                customer_id=customers[ref].id,
                payload={
                    "type": kind,
                    "customer": {"id": ref},
                    "properties": properties,
                    "occurred_at": at.isoformat(),
                },
                status=EventStatus.processed,
                occurred_at=at,
                received_at=at,
                processed_at=at,
            )
        )
    ctx = journeys.check_context(session)
    for name, publish in (("cart_recovery", True), ("onboarding", False)):
        journey, _problems = journeys.create_journey(session, starter(name), ctx, None)
        if publish:
            journeys.publish(session, journey, ctx, None)
    audit.record(
        session, None, "demo.load", "system", "demo", {"channels": len(channels)}
    )
    return True
