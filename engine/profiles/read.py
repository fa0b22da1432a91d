"""Reading profiles: finding one, describing it, its identities, consent, runs and search."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    or_,
    select,
)
from sqlalchemy.orm import Session

from engine.intake.contract import IDENTIFIER_KIND, normalize_identifier
from engine.intake.payload import LARGEST_INTEGER
from engine.models import (
    IN_FLIGHT,
    Channel,
    Customer,
    Identity,
    Journey,
    JourneyVersion,
    Run,
    RunStatus,
)
from engine.profiles import CustomerError
from engine.profiles import timeline as history


def find(session: Session, ref: str) -> Customer:
    """The profile named by `ref`: its number, or `kind:value` of any identity."""
    customer: Customer | None = None
    if ref.isascii() and ref.isdigit():
        number = int(ref) if len(ref) <= 19 else 0
        customer = session.get(Customer, number) if number <= LARGEST_INTEGER else None
    elif ":" in ref:
        kind, value = ref.split(":", 1)
        identity = session.scalar(
            select(Identity).where(
                Identity.kind == kind,
                Identity.value == normalize_identifier(kind, value),
            )
        )
        customer = session.get(Customer, identity.customer_id) if identity else None
    else:
        raise CustomerError(
            400,
            "name a customer by profile number or kind:value, e.g. email:a@b.c",
            "ref",
        )
    seen = 0
    while customer is not None and customer.merged_into_id is not None and seen < 10:
        customer = session.get(Customer, customer.merged_into_id)
        seen += 1
    if customer is None:
        raise CustomerError(404, f"there is no customer {ref}")
    return customer


def scope_by_ref(session: Session, ref: str) -> dict[str, Any] | None:
    """The customer named by `ref` as rules see it (see identity.scope_of), read in two
    statements without loading the profile as an object; None when there is no such
    customer. For a decision asked in real time."""
    columns = (Customer.id, Customer.traits, Customer.consent, Customer.merged_into_id)
    if ref.isascii() and ref.isdigit():
        number = int(ref) if len(ref) <= 19 else 0
        if not 0 < number <= LARGEST_INTEGER:
            return None
        row = session.execute(select(*columns).where(Customer.id == number)).first()
    elif ":" in ref:
        kind, value = ref.split(":", 1)
        row = session.execute(
            select(*columns)
            .join(Identity, Identity.customer_id == Customer.id)
            .where(
                Identity.kind == kind,
                Identity.value == normalize_identifier(kind, value),
            )
        ).first()
    else:
        raise CustomerError(
            400,
            "name a customer by profile number or kind:value, e.g. email:a@b.c",
            "ref",
        )
    seen = 0
    while row is not None and row.merged_into_id is not None and seen < 10:
        row = session.execute(
            select(*columns).where(Customer.id == row.merged_into_id)
        ).first()
        seen += 1
    if row is None:
        return None
    identifiers: dict[str, str] = {}
    for kind, value in session.execute(
        select(Identity.kind, Identity.value)
        .where(Identity.customer_id == row.id)
        .order_by(Identity.id)
    ):
        identifiers.setdefault(kind, value)
    return {
        **{k: v for k, v in identifiers.items() if k != "id"},
        "id": identifiers.get("id", str(row.id)),
        "profile_id": row.id,
        "traits": dict(row.traits or {}),
        "consent": dict(row.consent or {}),
    }


def describe(session: Session, customer: Customer) -> dict[str, Any]:
    identities = session.scalars(
        select(Identity)
        .where(Identity.customer_id == customer.id)
        .order_by(Identity.id)
    )
    runs = session.execute(
        select(Run, JourneyVersion.number)
        .join(JourneyVersion, JourneyVersion.id == Run.version_id)
        .where(Run.customer_id == customer.id)
        .order_by(Run.id.desc())
        .limit(100)
    )
    return {
        "id": customer.id,
        "identities": [{"kind": i.kind, "value": i.value} for i in identities],
        "traits": customer.traits,
        "consent": customer.consent,
        "runs": [
            {
                "id": r.id,
                "journey_id": r.journey_id,
                "status": r.status.value,
                "version": number,
                "node": r.current_node,
                "started_at": r.started_at.isoformat(),
                "converted": r.converted_at is not None,
            }
            for r, number in runs
        ],
        "created_at": customer.created_at.isoformat(),
    }


def timeline(
    session: Session, customer: Customer, limit: int = 200, before: str | None = None
) -> list[dict[str, Any]]:
    """Events in, steps, deliveries (with suppressions) and profile changes, newest first.

    `before` is the `cursor` of the last entry already shown (or an ISO 8601 date-time).
    """
    try:
        return history.timeline(session, customer, limit, before)
    except history.CursorError as error:
        raise CustomerError(400, str(error), "before") from None


@dataclass(frozen=True)
class IdentityRecord:
    """An identifier of the profile and the channel that first sent it (None: loaded)."""

    kind: str
    value: str
    channel: str | None
    channel_name: str | None
    first_seen: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "value": self.value,
            "channel": self.channel,
            "first_seen": self.first_seen.isoformat(),
        }


def identities(session: Session, customer: Customer) -> list[IdentityRecord]:
    rows = session.execute(
        select(Identity, Channel.slug, Channel.name)
        .outerjoin(Channel, Channel.id == Identity.channel_id)
        .where(Identity.customer_id == customer.id)
        .order_by(Identity.id)
    )
    return [
        IdentityRecord(identity.kind, identity.value, slug, name, identity.created_at)
        for identity, slug, name in rows
    ]


@dataclass(frozen=True)
class ConsentSetting:
    """Whether a channel may contact the customer; `explicit` False means never set, so
    the default applies (allowed, as delivery checks it)."""

    channel: str
    name: str
    allowed: bool
    explicit: bool


def consent_settings(session: Session, customer: Customer) -> list[ConsentSetting]:
    """One setting per channel, then any set for a channel that no longer exists."""
    settings = []
    names = {
        slug: name
        for slug, name in session.execute(
            select(Channel.slug, Channel.name).order_by(Channel.name)
        )
    }
    for slug in [*names, *sorted(set(customer.consent) - set(names))]:
        explicit = slug in customer.consent
        settings.append(
            ConsentSetting(
                slug,
                names.get(slug, slug),
                bool(customer.consent.get(slug, True)),
                explicit,
            )
        )
    return settings


@dataclass(frozen=True)
class RunSummary:
    """A run as a person reads it: which journey, where it is, how it went."""

    id: int
    journey_id: int
    journey_name: str
    version: int
    status: RunStatus
    node: str | None
    awaiting_event: str | None
    wake_at: datetime | None
    started_at: datetime
    ended_at: datetime | None
    converted_at: datetime | None
    version_id: int = 0

    @property
    def in_flight(self) -> bool:
        return self.status in IN_FLIGHT

    def to_dict(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "id": self.id,
            "journey_id": self.journey_id,
            "journey": self.journey_name,
            "version": self.version,
            "status": self.status.value,
            "node": self.node,
            "awaiting_event": self.awaiting_event,
            "wake_at": iso(self.wake_at),
            "started_at": self.started_at.isoformat(),
            "ended_at": iso(self.ended_at),
            "converted_at": iso(self.converted_at),
        }


def runs_of(
    session: Session, customer: Customer, in_flight_only: bool = False
) -> list[RunSummary]:
    """The customer's runs, newest first, with their journey's name; read without locks."""
    statement = (
        select(Run, Journey.name, JourneyVersion.number)
        .join(Journey, Journey.id == Run.journey_id)
        .join(JourneyVersion, JourneyVersion.id == Run.version_id)
        .where(Run.customer_id == customer.id)
        .order_by(Run.id.desc())
    )
    if in_flight_only:
        statement = statement.where(Run.status.in_(IN_FLIGHT))
    return [
        RunSummary(
            run.id,
            run.journey_id,
            name,
            number,
            run.status,
            run.current_node,
            run.awaiting_event,
            run.wake_at,
            run.started_at,
            run.ended_at,
            run.converted_at,
            run.version_id,
        )
        for run, name, number in session.execute(statement)
    ]


PHONE_LIKE = re.compile(r"^[+\d\s().-]*\d[\d\s().-]*$")


def search(query: str) -> Select[Customer]:
    """Surviving profiles, newest first; with a query, those it names.

    A query matches the start of any identifier (emails in any case, phone numbers with or
    without spaces and `+`), `kind:value` matches one kind of identifier, and a number
    (or `#number`) is also a profile number.
    """
    statement = (
        select(Customer)
        .where(Customer.merged_into_id.is_(None))
        .order_by(Customer.id.desc())
    )
    text = query.strip()
    if not text:
        return statement
    prefixes = {text, text.lower()}
    if PHONE_LIKE.match(text):
        compact = re.sub(r"[^\d+]", "", text)
        prefixes |= {compact, compact if compact.startswith("+") else "+" + compact}
    conditions = [Identity.value.startswith(p, autoescape=True) for p in prefixes]
    kind, colon, value = text.partition(":")
    if colon and IDENTIFIER_KIND.match(kind) and value.strip():
        conditions.append(
            and_(
                Identity.kind == kind,
                Identity.value.startswith(
                    normalize_identifier(kind, value), autoescape=True
                ),
            )
        )
    wanted: ColumnElement[bool] = Customer.id.in_(
        select(Identity.customer_id).where(or_(*conditions))
    )
    number = text.removeprefix("#")
    if number.isascii() and number.isdigit() and len(number) <= 18:
        wanted = or_(wanted, Customer.id == int(number))
    return statement.where(wanted)
