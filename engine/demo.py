"""Sample channels, customers, events and journeys, so a new install has something to show."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import audit
from engine.channels import create_channel
from engine.crypto import SecretBox
from engine.decisions import store as decision_store
from engine.intake import store
from engine.intake.contract import parse_event
from engine.journeys import lifecycle, starters
from engine.models import (
    Channel,
    ChannelKind,
    Customer,
    Event,
    EventStatus,
    Identity,
    Journey,
    JourneyStatus,
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
    ctx = lifecycle.check_context(session)
    for name, publish in (("cart_recovery", True), ("onboarding", False)):
        journey, _problems = lifecycle.create_journey(session, starter(name), ctx, None)
        if publish:
            lifecycle.publish(session, journey, ctx, None)
    if not decision_store.tables(session, [SUPPORT_TIER["key"]]):
        table = decision_store.create(session, SUPPORT_TIER, None)
        decision_store.publish(session, table, None)
    audit.record(
        session, None, "demo.load", "system", "demo", {"channels": len(channels)}
    )
    return True


# A decision table channels and journeys can ask (POST /api/v1/decide/support_tier).
SUPPORT_TIER: dict[str, Any] = {
    "key": "support_tier",
    "name": "Support tier",
    "description": "Who gets a person on the phone, and how fast.",
    "rules": [
        {
            "when": {"field": "customer.traits.tier", "op": "eq", "value": "vip"},
            "outcome": "premium",
            "values": {"queue": "vip", "callback_hours": 1},
        },
        {
            "when": {"field": "context.cart_value", "op": "gte", "value": 500},
            "outcome": "premium",
            "values": {"queue": "big-cart", "callback_hours": 4},
        },
    ],
    "default": {"outcome": "self_service", "values": {"queue": "help-centre"}},
}


NAMES = ("Ada", "Grace", "Alan", "Katherine", "Edsger", "Barbara", "Donald", "Frances")


def _story(rng: random.Random, number: int) -> list[tuple[str, dict[str, Any]]]:
    """One made-up customer's events, in order, across channels."""
    who = {"id": f"d-{number:04d}", "email": f"d{number:04d}@example.com"}
    traits = {
        "first_name": rng.choice(NAMES),
        "tier": "vip" if rng.random() < 0.2 else "standard",
    }
    roll = rng.random()
    if roll < 0.55:  # a cart on the web; some buy later, by email link or in the app
        told = [
            (
                "web",
                {
                    "type": "cart_abandoned",
                    "customer": {"id": who["id"]},
                    "traits": traits,
                    "properties": {"cart_value": rng.randint(20, 300)},
                },
            )
        ]
        if rng.random() < 0.4:
            told.append(
                (
                    rng.choice(("email", "app")),
                    {
                        "type": "order_completed",
                        "customer": who,
                        "properties": {"order_value": rng.randint(20, 300)},
                    },
                )
            )
        return told
    told = [("app", {"type": "signed_up", "customer": who, "traits": traits})]
    if rng.random() < 0.6:
        told.append(("app", {"type": "app_opened", "customer": {"id": who["id"]}}))
    if rng.random() < 0.35:
        told.append(("web", {"type": "first_project_created", "customer": who}))
    if rng.random() < 0.05:
        told.append(("email", {"type": "unsubscribed", "customer": who}))
    return told


def burst(
    session: Session,
    partitions: int,
    count: int = 300,
    seed: int = 7,
    now: datetime | None = None,
) -> int:
    """Store about `count` events as the channels would post them, for the workers to apply.

    The onboarding journey is published first if it is still a draft, so both demo journeys
    have customers. Each made-up customer's events keep their order; the same `seed` gives
    the same webhook ids, so a second burst stores nothing twice. Returns how many were new.
    """
    now = now or utcnow()
    ctx = lifecycle.check_context(session)
    for journey in session.scalars(
        select(Journey).where(Journey.status == JourneyStatus.draft)
    ):
        if journey.name == starter("onboarding")["name"]:
            lifecycle.publish(session, journey, ctx, None)
    channels = dict(session.execute(select(Channel.slug, Channel.id)).all())
    rng = random.Random(seed)
    stored, index, number = 0, 0, 0
    while index < count:
        number += 1
        for slug, body in _story(rng, number):
            index += 1
            item = store.ToStore(f"demo-{seed}-{index}", body, parse_event(body))
            [result] = store.store_events(
                session.connection(), channels[slug], [item], partitions, now
            )
            stored += 0 if result.duplicate else 1
    return stored
