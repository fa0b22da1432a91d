"""Customer profiles: identity resolution, merging, consent, erasure and the timeline."""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    delete,
    func,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.orm import Session

from engine import audit, batch, counters, transaction
from engine import timeline as history
from engine.events import IDENTIFIER_KIND, normalize_identifier
from engine.models import (
    AuditEntry,
    Base,
    Channel,
    Customer,
    Delivery,
    Event,
    Identity,
    Journey,
    JourneyVersion,
    Run,
    RunStatus,
    Step,
    User,
    utcnow,
)
from engine.payload import LARGEST_INTEGER


class CustomerError(ValueError):
    """A customer request that cannot be honoured; `status` is the HTTP-like answer."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.field = status, field


def _lock(session: Session, ids: Sequence[int]) -> list[Customer]:
    """The customers with `ids`, locked for this transaction (PostgreSQL row locks)."""
    statement = select(Customer).where(Customer.id.in_(ids)).order_by(Customer.id)
    if session.get_bind().dialect.name == "postgresql":
        statement = statement.with_for_update()
    return list(session.scalars(statement))


def merge_customers(
    session: Session,
    survivor: Customer,
    others: Sequence[Customer],
    reason: dict[str, Any],
) -> None:
    """Fold `others` into `survivor`: identities, events, runs, deliveries, traits, consent.

    The survivor's traits win where both have one; consent withdrawn on either stays
    withdrawn. The others remain as empty records pointing at the survivor.
    """
    ids = [c.id for c in others]
    known = _known_identifiers(session)
    for customer_id in [survivor.id, *ids]:
        known.pop(customer_id, None)
    for other in others:
        survivor.traits = {**other.traits, **survivor.traits}
        consent = dict(survivor.consent)
        for channel, allowed in other.consent.items():
            consent[channel] = bool(consent.get(channel, True)) and bool(allowed)
        survivor.consent = consent
        survivor.seen_channels = sorted(
            {*(survivor.seen_channels or []), *(other.seen_channels or [])}
        )
        other.traits, other.consent, other.merged_into_id = {}, {}, survivor.id
        other.seen_channels = []
    for model in (Identity, Event, Run, Delivery):
        session.execute(
            update(model)
            .where(model.customer_id.in_(ids))
            .values(customer_id=survivor.id)
            .execution_options(synchronize_session=False)
        )
    session.execute(
        update(Customer)
        .where(Customer.merged_into_id.in_(ids))
        .values(merged_into_id=survivor.id)
        .execution_options(synchronize_session=False)
    )
    audit.record(
        session,
        None,
        "customer.merge",
        "customer",
        survivor.id,
        {"merged": ids, **reason},
    )


def resolve(
    session: Session,
    identifiers: Sequence[tuple[str, str]],
    channel_id: int | None,
    traits: dict[str, Any] | None = None,
) -> Customer:
    """The one profile these identifiers name: found, created (with `traits`), or merged
    from several."""
    pairs = list(dict.fromkeys(identifiers))
    prefetched = batch.current(session)
    if prefetched is not None and prefetched.knows(pairs):
        owners = {
            pair: prefetched.owner[pair] for pair in pairs if pair in prefetched.owner
        }
    else:
        prefetched = None
        owners = {
            (row.kind, row.value): row.customer_id
            for row in session.execute(
                select(Identity.kind, Identity.value, Identity.customer_id).where(
                    tuple_(Identity.kind, Identity.value).in_(pairs)
                )
            )
        }
    found_ids = sorted(set(owners.values()))
    known_identifiers = _known_identifiers(session)
    state = transaction.of(session)
    state.new_customers = set()
    if not found_ids:
        customer = Customer(
            id=batch.next_id(session, "customers"),
            traits=dict(traits or {}),
            consent={},
        )
        session.add(customer)
        if customer.id is None:
            session.flush()
        state.new_customers.add(customer.id)
        first: dict[str, str] = {}
        for kind, value in pairs:
            first.setdefault(kind, value)
        known_identifiers[customer.id] = first
        if prefetched is not None:
            prefetched.runs[customer.id] = []
            prefetched.customers[customer.id] = customer
    else:
        if prefetched is not None:  # read and locked with the batch
            customers = [prefetched.customers[i] for i in found_ids]
        else:
            customers = _lock(session, found_ids)
        customer = customers[0]
        if len(customers) > 1:
            batch.drop(session)  # the merge moves rows the batch has read
            prefetched = None
            merge_customers(
                session,
                customer,
                customers[1:],
                {"because": [f"{k}:{v}" for k, v in pairs]},
            )
    for kind, value in pairs:
        if (kind, value) not in owners:
            if prefetched is not None:
                prefetched.owner[(kind, value)] = customer.id
                known_identifiers.setdefault(customer.id, {}).setdefault(kind, value)
            elif found_ids:
                known_identifiers.pop(customer.id, None)
            identity = Identity(
                id=batch.next_id(session, "identities"),
                customer_id=customer.id,
                kind=kind,
                value=value,
                channel_id=channel_id,
            )
            if not found_ids:
                identity.customer = customer  # inserted after the new profile
            session.add(identity)
    if prefetched is None:
        session.flush()
    return customer


def _known_identifiers(session: Session) -> dict[int, dict[str, str]]:
    """Identifiers of profiles created in this transaction, so they need no reading back."""
    return transaction.of(session).identifiers


def forget_cached(session: Session) -> None:
    """After a rollback: profiles created in it are gone (SQLite may reuse their ids)."""
    state = transaction.peek(session)
    if state is not None:
        state.identifiers, state.new_customers, state.batch = {}, set(), None


def is_new(session: Session, customer: Customer) -> bool:
    """Whether the last `resolve` created this profile (so it has no history yet)."""
    state = transaction.peek(session)
    return state is not None and customer.id in state.new_customers


def identifiers_of(session: Session, customer_id: int) -> dict[str, str]:
    """One value per identifier kind (the first recorded), for scopes and payloads."""
    state = transaction.peek(session)
    cached = state.identifiers.get(customer_id) if state else None
    if cached is not None:
        return dict(cached)
    found: dict[str, str] = {}
    for kind, value in session.execute(
        select(Identity.kind, Identity.value)
        .where(Identity.customer_id == customer_id)
        .order_by(Identity.id)
    ):
        found.setdefault(kind, value)
    return found


def scope_of(session: Session, customer: Customer) -> dict[str, Any]:
    """The customer as rules and templates see it: id, identifiers, traits, consent."""
    identifiers = identifiers_of(session, customer.id)
    return {
        **{k: v for k, v in identifiers.items() if k != "id"},
        "id": identifiers.get("id", str(customer.id)),
        "profile_id": customer.id,
        "traits": copy.deepcopy(customer.traits),
        "consent": dict(customer.consent),
    }


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


def set_consent(
    session: Session, customer: Customer, changes: Any, actor: User | None
) -> dict[str, bool]:
    """Set consent per channel slug ({"email": false}); every change audited."""
    if not isinstance(changes, dict) or not changes:
        raise CustomerError(
            422,
            'send an object of channel to true or false, e.g. {"email": false}',
            "consent",
        )
    for channel, allowed in changes.items():
        if not isinstance(allowed, bool):
            raise CustomerError(
                422,
                f"consent for {channel} must be true or false",
                f"consent.{channel}",
            )
    before = dict(customer.consent)
    customer.consent = {**before, **changes}
    audit.record(
        session,
        actor,
        "customer.consent",
        "customer",
        customer.id,
        {"changes": changes, "before": {k: before.get(k) for k in changes}},
    )
    return dict(customer.consent)


def erase(session: Session, customer: Customer, actor: User | None) -> dict[str, int]:
    """Delete the profile and everything about it: identities, events, runs, steps, deliveries."""
    ids = [
        customer.id,
        *session.scalars(
            select(Customer.id).where(Customer.merged_into_id == customer.id)
        ),
    ]
    # Runs under way leave their journeys: the figures count them as ended ("erased"),
    # without anything that names the person.
    now = datetime.now(UTC)
    for journey_id, version_id, node in session.execute(
        select(Run.journey_id, Run.version_id, Run.current_node).where(
            Run.customer_id.in_(ids),
            Run.status.in_([RunStatus.active, RunStatus.waiting]),
        )
    ):
        counters.run_left(session, now, journey_id, version_id, node, "erased")
    run_ids = select(Run.id).where(Run.customer_id.in_(ids))
    counts = {
        "steps": session.execute(delete(Step).where(Step.run_id.in_(run_ids))).rowcount,  # type: ignore[attr-defined]
        "deliveries": session.execute(
            delete(Delivery).where(Delivery.customer_id.in_(ids))
        ).rowcount,  # type: ignore[attr-defined]
        "runs": session.execute(delete(Run).where(Run.customer_id.in_(ids))).rowcount,  # type: ignore[attr-defined]
        "events": session.execute(
            delete(Event).where(Event.customer_id.in_(ids))
        ).rowcount,  # type: ignore[attr-defined]
        "identities": session.execute(
            delete(Identity).where(Identity.customer_id.in_(ids))
        ).rowcount,  # type: ignore[attr-defined]
    }
    session.execute(
        update(Customer)
        .where(Customer.id.in_(ids))
        .values(merged_into_id=None)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        delete(Customer)
        .where(Customer.id.in_(ids))
        .execution_options(synchronize_session=False)
    )
    _redact_merge_reasons(session, ids)
    audit.record(session, actor, "customer.erase", "customer", customer.id, counts)
    return counts


def _redact_merge_reasons(session: Session, ids: Sequence[int]) -> None:
    """Merge notes name the identifiers that joined two profiles; an erasure removes those."""
    for entry in session.scalars(
        select(AuditEntry).where(
            AuditEntry.target_type == "customer",
            AuditEntry.target_id.in_([str(i) for i in ids]),
            AuditEntry.action == "customer.merge",
        )
    ):
        if "because" in entry.detail:
            entry.detail = {**entry.detail, "because": "erased"}


def erasure_counts(session: Session, customer: Customer) -> dict[str, int]:
    """What `erase` would delete: profiles (this one and those merged into it) and the rest."""
    ids = history.profile_ids(session, customer)
    run_ids = select(Run.id).where(Run.customer_id.in_(ids))

    def count(model: type[Base], condition: ColumnElement[bool]) -> int:
        found = session.scalar(select(func.count()).select_from(model).where(condition))
        return int(found or 0)

    return {
        "profiles": len(ids),
        "identities": count(Identity, Identity.customer_id.in_(ids)),
        "events": count(Event, Event.customer_id.in_(ids)),
        "runs": count(Run, Run.customer_id.in_(ids)),
        "steps": count(Step, Step.run_id.in_(run_ids)),
        "deliveries": count(Delivery, Delivery.customer_id.in_(ids)),
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


def active_runs(session: Session, customer_id: int) -> list[Run]:
    """The customer's runs under way, locked on PostgreSQL (or as the batch read them)."""
    prefetched = batch.runs_of(session, customer_id)
    if prefetched is not None:
        return prefetched
    statement = (
        select(Run)
        .where(
            Run.customer_id == customer_id,
            Run.status.in_([RunStatus.active, RunStatus.waiting]),
        )
        .order_by(Run.id)
    )
    if session.get_bind().dialect.name == "postgresql":
        statement = statement.with_for_update()
    return list(session.scalars(statement))


def touch(customer: Customer, traits: dict[str, Any]) -> None:
    if traits and any(customer.traits.get(k) != v for k, v in traits.items()):
        customer.traits = {**customer.traits, **traits}
        customer.updated_at = utcnow()


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


IN_FLIGHT = (RunStatus.active, RunStatus.waiting)


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


def export(session: Session, customer: Customer, now: datetime) -> dict[str, Any]:
    """Everything known about the customer, as one JSON document (a subject access copy)."""
    return {
        "exported_at": now.isoformat(),
        "profile": describe(session, customer),
        "identities": [record.to_dict() for record in identities(session, customer)],
        "consent": {
            setting.channel: setting.allowed
            for setting in consent_settings(session, customer)
        },
        "runs": [run.to_dict() for run in runs_of(session, customer)],
        "timeline": history.whole_timeline(session, customer),
    }
