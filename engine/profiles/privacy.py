"""Privacy: consent per channel, erasure on request, and the export of everything held."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from engine import audit
from engine.analytics import counters
from engine.models import (
    IN_FLIGHT,
    AuditEntry,
    Base,
    Customer,
    Delivery,
    Event,
    Identity,
    Run,
    Step,
    User,
)
from engine.profiles import CustomerError
from engine.profiles import timeline as history
from engine.profiles.read import consent_settings, describe, identities, runs_of
from engine.schemas import store as schema_store


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
    """Delete the profile and everything about it: identities, events, runs, steps, deliveries.

    On PostgreSQL the profiles are locked first (FOR NO KEY UPDATE): a drain applying their
    events holds them, and one that starts meanwhile waits, then no longer finds them (its
    batch is applied again event by event). Writes that only name a profile (a delivery,
    a run's event) take a key-share lock, which this lets through; the delete of the profile
    at the end waits for them, and its foreign keys take their rows along. Deliveries go
    before runs, as a delivery's settling holds the delivery, then the profile, then the run.
    A run is deleted before its steps (which name it without a foreign key), so the steps of
    a run that another transaction advanced meanwhile, committed before the run could be
    deleted, go too. A deadlock with a timer sweep that holds a run and changes the profile
    is retried, up to three times. A profile that a merge folded into another while the
    erasure waited for it is left as it is (CustomerError 409): its rows are the other's now;
    one that another erasure removed meanwhile raises CustomerError 404.
    """
    if session.get_bind().dialect.name != "postgresql":
        return _erase(session, customer, actor, postgres=False)
    for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
        try:
            with session.begin_nested():  # rolled back on any error
                return _erase(session, customer, actor, postgres=True)
        except OperationalError as error:
            if getattr(error.orig, "sqlstate", None) != "40P01" or (
                attempt == DEADLOCK_ATTEMPTS
            ):
                raise
    raise AssertionError("unreachable")


DEADLOCK_ATTEMPTS = 3


def _erase(
    session: Session, customer: Customer, actor: User | None, postgres: bool
) -> dict[str, int]:
    if postgres:
        _lock(session, [customer.id])  # before its merged profiles are listed
    _still_itself(session, customer.id)
    ids = [
        customer.id,
        *session.scalars(
            select(Customer.id).where(Customer.merged_into_id == customer.id)
        ),
    ]
    if postgres:
        _lock(session, ids[1:])
    # Runs under way leave their journeys: the figures count them as ended ("erased"),
    # without anything that names the person.
    now = datetime.now(UTC)
    for journey_id, version_id, node in session.execute(
        select(Run.journey_id, Run.version_id, Run.current_node).where(
            Run.customer_id.in_(ids),
            Run.status.in_(IN_FLIGHT),
        )
    ):
        counters.run_left(session, now, journey_id, version_id, node, "erased")
    # What event schemas kept of them: flags of their events, refused bodies naming them.
    kept = schema_store.drop(session, _kept_by_schemas(session, ids))
    deliveries = session.execute(
        delete(Delivery).where(Delivery.customer_id.in_(ids))
    ).rowcount  # type: ignore[attr-defined]
    run_ids = list(
        session.scalars(
            delete(Run).where(Run.customer_id.in_(ids)).returning(Run.id),
            execution_options={"synchronize_session": False},
        )
    )
    steps = 0
    for start in range(0, len(run_ids), ERASE_CHUNK):
        chunk = run_ids[start : start + ERASE_CHUNK]
        steps += session.execute(delete(Step).where(Step.run_id.in_(chunk))).rowcount  # type: ignore[attr-defined]
    counts = {
        "steps": steps,
        "deliveries": deliveries,
        "runs": len(run_ids),
        "events": session.execute(
            delete(Event).where(Event.customer_id.in_(ids))
        ).rowcount,  # type: ignore[attr-defined]
        "identities": session.execute(
            delete(Identity).where(Identity.customer_id.in_(ids))
        ).rowcount,  # type: ignore[attr-defined]
        "kept_by_schemas": kept,
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


ERASE_CHUNK = 1000


def _still_itself(session: Session, customer_id: int) -> None:
    """Refuse to erase a profile that a merge committed meanwhile emptied into another, or
    that another erasure removed: its rows are no longer its own (read after the lock, so
    any merge holding the profile has committed)."""
    found = session.execute(
        select(Customer.merged_into_id).where(Customer.id == customer_id)
    ).first()
    if found is None:
        raise CustomerError(404, f"profile #{customer_id} was erased meanwhile")
    if found.merged_into_id is not None:
        raise CustomerError(
            409,
            f"profile #{customer_id} was merged into #{found.merged_into_id} while it "
            f"was being erased; nothing was erased: erase #{found.merged_into_id}",
        )


def _lock(session: Session, ids: Sequence[int]) -> None:
    """Lock these profiles FOR NO KEY UPDATE (in id order, as drains lock them) until the
    transaction ends."""
    if ids:
        session.execute(
            select(Customer.id)
            .where(Customer.id.in_(ids))
            .order_by(Customer.id)
            .with_for_update(key_share=True)
        ).all()


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


def _kept_by_schemas(session: Session, ids: list[int]) -> list[int]:
    identities = {
        (kind, value)
        for kind, value in session.execute(
            select(Identity.kind, Identity.value).where(Identity.customer_id.in_(ids))
        )
    }
    return schema_store.kept_of(
        session, identities, select(Event.id).where(Event.customer_id.in_(ids))
    )


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
        "kept_by_schemas": len(_kept_by_schemas(session, ids)),
    }


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
