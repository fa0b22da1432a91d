"""schemathesis generates requests from the OpenAPI document and checks every answer of the
app against it: no 5xx, a documented status, the documented content type and JSON Schema."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from engine import accounts
from engine.channels import create_channel
from engine.crypto import SecretBox
from engine.journeys import lifecycle, starters
from engine.models import Role
from tests.channels import post_event
from tests.factories import make_user
from webapp.api.openapi import document
from webapp.hooks.channels import forget

pytestmark = pytest.mark.slow

schema = schemathesis.openapi.from_dict(document())
# Per operation and phase; 200 found nothing more than 30 on either database.
EXAMPLES = 30
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def contract_token(session, settings, client):
    """An admin's token, with a live journey, a customer and channels for it to reach."""
    forget()
    box = SecretBox(settings.encryption_key)
    web = create_channel(session, box, "web", "Web", "web", rate_limit=100_000)
    for slug in ("email", "sms", "support-desk"):
        create_channel(session, box, slug, slug, "other")
    admin = make_user(session, Role.admin)
    token = accounts.create_token(session, admin)
    journey, _ = lifecycle.create_journey(
        session,
        starters.document("cart_recovery"),
        lifecycle.check_context(session),
        admin,
    )
    lifecycle.publish(session, journey, lifecycle.check_context(session), admin)
    session.commit()
    event = {"type": "cart_abandoned", "customer": {"id": "c-1"}}
    assert post_event(client, "web", web.inbound_secret, event).status_code == 202
    return token


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same cases on every run and both databases
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_answer_matches_the_document(case, app, contract_token):
    # call_and_validate raises (and fails the case) when a check does not hold: a 5xx, a
    # status, content type, header or body the document does not describe.
    case.call_and_validate(
        app=app,
        headers={"Authorization": f"Bearer {contract_token}"},
        checks=CHECKS,
    )


def test_schemathesis_covers_every_documented_operation():
    operations = [result.ok() for result in schema.get_all_operations()]
    print(f"\nschemathesis operations: {len(operations)}, up to {EXAMPLES} cases each")
    assert len(operations) == sum(
        1
        for item in document()["paths"].values()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    )
