"""A small world for engine tests: channels with recorders, a published journey, and helpers
to post events, move time along and read what happened."""

import json

import pytest
from sqlalchemy import select, update

from engine.channels import create_channel
from engine.crypto import SecretBox
from engine.execution import Effects, drains, timers
from engine.journeys import lifecycle
from engine.journeys.starters import FOLDER as STARTERS
from engine.models import Delivery, DeliveryStatus, Run, Step, utcnow
from tests.channels import Recorder, post_event
from tests.conftest import work_all
from webapp.hooks.channels import forget

DATA = STARTERS
CART = {
    "type": "cart_abandoned",
    "customer": {"id": "c-42", "email": "ada@example.com"},
    "traits": {"first_name": "Ada", "tier": "vip"},
    "properties": {"cart_value": 120.5},
}


# Sign-up -> welcome email -> exit: the smallest journey that makes a delivery.
WELCOME = {
    "schema": "throughline.journey/v1",
    "name": "Welcome",
    "entry": {"reentry": "never", "max_entries": None},
    "nodes": [
        {"id": "start", "type": "trigger", "config": {"event": "signed_up"}},
        {
            "id": "mail",
            "type": "send",
            "config": {
                "channel": "email",
                "message": {"subject": "Welcome {{ customer.id }}"},
            },
        },
        {"id": "end", "type": "exit", "config": {}},
    ],
    "edges": [{"from": "start", "to": "mail"}, {"from": "mail", "to": "end"}],
    "layout": {},
}


class World:
    """Channels with recorders, a published journey, and helpers to move time along."""

    def __init__(self, client, session, settings, redis_client, recorders):
        self.client, self.session, self.settings, self.redis = (
            client,
            session,
            settings,
            redis_client,
        )
        self.box = SecretBox(settings.encryption_key)
        self.recorders = recorders
        self.secrets = {}
        for slug in ("web", "email", "sms", "support-desk"):
            url = recorders[slug].url if slug in recorders else None
            made = create_channel(
                session,
                self.box,
                slug,
                slug,
                "other",
                outbound_url=url,
                rate_limit=10_000,
                allowed_networks=settings.outbound_allowed_networks,
            )
            self.secrets[slug] = made.inbound_secret
            if slug in recorders:
                recorders[slug].secret = made.outbound_secret
        session.commit()
        forget()

    def publish(self, document):
        ctx = lifecycle.check_context(
            self.session,
            self.settings.webhook_allowed_hosts,
            self.settings.outbound_allowed_networks,
        )
        journey, _ = lifecycle.create_journey(self.session, document, ctx, None)
        lifecycle.publish(self.session, journey, ctx, None)
        self.session.commit()
        return journey

    def post(self, body, slug="web", **kwargs):
        response = post_event(self.client, slug, self.secrets[slug], body, **kwargs)
        assert response.status_code == 202, response.get_json()
        work_all(self.redis)
        self.session.rollback()
        return response.get_json()["event_id"]

    def later(self, delta):
        """Move waiting runs `delta` closer to their wake time, fire the due ones, then drains."""
        for run in self.session.scalars(select(Run).where(Run.wake_at.is_not(None))):
            run.wake_at -= delta
        self.session.commit()
        effects = Effects()
        from engine import runtime

        with runtime.current().database.session(writer=True) as session:
            timers.sweep_due_runs(session, utcnow(), effects)
        drains.follow_up(self.redis, effects)
        work_all(self.redis)
        self.session.rollback()

    def retry_now(self):
        """Make every pending delivery due now (skipping the backoff wait), then drains."""
        self.session.execute(
            update(Delivery)
            .where(Delivery.status == DeliveryStatus.pending)
            .values(next_attempt_at=utcnow())
        )
        self.session.commit()
        from engine import runtime

        drains.recover(runtime.current())
        work_all(self.redis)
        self.session.rollback()

    def steps(self):
        return [
            (s.node_id, s.outcome)
            for s in self.session.scalars(select(Step).order_by(Step.id))
        ]

    def deliveries(self):
        return list(
            self.session.scalars(select(Delivery).order_by(Delivery.created_at))
        )


@pytest.fixture
def recorders():
    with Recorder() as email, Recorder() as sms, Recorder() as desk:
        yield {"email": email, "sms": sms, "support-desk": desk}


@pytest.fixture
def world(client, session, settings, redis_client, recorders, engine_runtime):
    return World(client, session, settings, redis_client, recorders)


def sample(name="cart_recovery"):
    return json.loads((DATA / f"{name}.json").read_text())
