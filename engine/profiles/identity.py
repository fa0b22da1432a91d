"""Identity: the one profile behind a customer's identifiers on every channel, merged when an
event shows two are the same person, and the scope rules and templates see."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    select,
    update,
)
from sqlalchemy.orm import Session

from engine import audit, transaction
from engine.execution import batch, rows
from engine.models import (
    IN_FLIGHT,
    Customer,
    Delivery,
    Event,
    Identity,
    Run,
    utcnow,
)


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
    # The survivor's sends now include the others': frequency caps count them afresh.
    transaction.of(session).cap_counts = {}
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
        owners = batch.owners(session, pairs)
    found_ids = sorted(set(owners.values()))
    known_identifiers = _known_identifiers(session)
    state = transaction.of(session)
    state.new_customers = set()
    in_bulk = False
    if not found_ids:
        customer = rows.fresh(
            Customer,
            id=batch.next_id(session, "customers"),
            traits=dict(traits or {}),
            consent={},
            seen_channels=[],
        )
        in_bulk = prefetched is not None and rows.add_customer(session, customer)
        if not in_bulk:
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
            rows.add_identity(
                session,
                {
                    "id": batch.next_id(session, "identities"),
                    "customer_id": customer.id,
                    "kind": kind,
                    "value": value,
                    "channel_id": channel_id,
                    "created_at": utcnow(),
                },
                # a profile the session holds is inserted first by its flush
                bulk_ok=found_ids != [] or in_bulk,
            )
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


def active_runs(session: Session, customer_id: int) -> list[Run]:
    """The customer's runs under way, locked on PostgreSQL (or as the batch read them)."""
    prefetched = batch.runs_of(session, customer_id)
    if prefetched is not None:
        return prefetched
    statement = (
        select(Run)
        .where(
            Run.customer_id == customer_id,
            Run.status.in_(IN_FLIGHT),
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
