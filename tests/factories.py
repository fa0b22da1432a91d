"""Test data with defaults overridable by keyword."""

from __future__ import annotations

import re
from collections.abc import Mapping
from itertools import count
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from engine import accounts
from engine.models import (
    Customer,
    Identity,
    Journey,
    JourneyStatus,
    JourneyVersion,
    Role,
    Run,
    RunStatus,
    User,
)

PASSWORD = "correct horse battery"
_numbers = count(1)


def make_user(session: Session, role: Role = Role.marketer, **overrides: Any) -> User:
    email = overrides.pop("email", f"user{next(_numbers)}@example.com")
    user = accounts.create_user(
        session, email, role, overrides.pop("password", PASSWORD)
    )
    for key, value in overrides.items():
        setattr(user, key, value)
    session.commit()
    return user


def make_journey(session: Session, **overrides: Any) -> Journey:
    name = overrides.pop("name", f"Journey {next(_numbers)}")
    journey = Journey(
        name=name,
        status=overrides.pop("status", JourneyStatus.draft),
        draft=overrides.pop(
            "draft", {"schema": "throughline.journey/v1", "name": name}
        ),
        **overrides,
    )
    session.add(journey)
    session.commit()
    return journey


def make_customer(
    session: Session, identities: Mapping[str, str] | None = None, **overrides: Any
) -> Customer:
    """A profile with no traits, consent or identities; `identities` maps kind to value."""
    customer = Customer(
        traits=overrides.pop("traits", {}),
        consent=overrides.pop("consent", {}),
        identities=[
            Identity(kind=kind, value=value)
            for kind, value in (identities or {}).items()
        ],
        **overrides,
    )
    session.add(customer)
    session.commit()
    return customer


def make_run(
    session: Session,
    version: JourneyVersion,
    customer: Customer | None = None,
    **overrides: Any,
) -> Run:
    """A run of `version` (for a new customer unless one is given), waiting at its first step."""
    if "customer_id" not in overrides:
        overrides["customer_id"] = (customer or make_customer(session)).id
    run = Run(
        journey_id=overrides.pop("journey_id", version.journey_id),
        version_id=overrides.pop("version_id", version.id),
        status=overrides.pop("status", RunStatus.waiting),
        current_node=overrides.pop("current_node", version.document["nodes"][0]["id"]),
        **overrides,
    )
    session.add(run)
    session.commit()
    return run


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    """The CSRF token of the client's session, read from a page as a browser would."""
    page = client.get(path).get_data(as_text=True)
    found = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert found, f"no CSRF token on {path}"
    return found.group(1)


def login(client: FlaskClient, user: User, password: str = PASSWORD) -> None:
    token = csrf_token(client)
    response = client.post(
        "/login", data={"email": user.email, "password": password, "csrf_token": token}
    )
    assert response.status_code == 302, response.get_data(as_text=True)


def api_client(
    client: FlaskClient, session: Session, role: Role = Role.marketer
) -> FlaskClient:
    """The client, sending a bearer token of a new user with `role` on every request."""
    token = accounts.create_token(session, make_user(session, role))
    session.commit()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client


def make_channels(session: Session, box: Any, *slugs: str) -> None:
    from engine.channels import create_channel

    for slug in slugs:
        create_channel(session, box, slug, slug, "other")
    session.commit()
