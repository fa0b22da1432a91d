"""Claiming due deliveries for one attempt (a lease), and reading a claimed batch at once."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import tenacity
from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from engine import bulk, transaction
from engine.crypto import SecretBox
from engine.delivery import LEASE, WEBHOOKS, Claimed
from engine.execution import batch
from engine.models import Channel, Customer, Delivery, DeliveryStatus, Run

_DELIVERIES = cast(Table, Delivery.__table__)
_backoff = tenacity.wait_random_exponential(multiplier=1, max=300)


def retry_delay(attempt: int) -> float:
    """Full-jitter exponential backoff: a random wait up to 2**attempt seconds (5 min cap)."""
    state = tenacity.RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = attempt
    return float(_backoff(state))


def claim(
    session: Session, partition: int, box: SecretBox, now: datetime, limit: int = 50
) -> list[Claimed]:
    """Lease up to `limit` due deliveries of a channel (or of webhook calls, partition 0):
    one read of the rows with their profiles' consent and their runs' versions, one update
    of their leases."""
    statement = (
        select(
            Delivery.id,
            Delivery.kind,
            Delivery.attempts,
            Delivery.payload,
            Delivery.url,
            Delivery.customer_id,
            Delivery.deadline_at,
            Delivery.journey_id,
            Delivery.node_id,
            Delivery.run_id,
        )
        .add_columns(
            Delivery.holds_run,
            Delivery.fallback_of_id,
            Delivery.traceparent,
            Delivery.created_at,
            Customer.consent,
            Run.version_id,
        )
        .outerjoin(Customer, Customer.id == Delivery.customer_id)
        .outerjoin(Run, Run.id == Delivery.run_id)
        .where(
            Delivery.status == DeliveryStatus.pending, Delivery.next_attempt_at <= now
        )
    )
    statement = (
        statement.where(Delivery.kind == "webhook")
        if partition == WEBHOOKS
        else statement.where(Delivery.channel_id == partition)
    )
    statement = statement.order_by(Delivery.next_attempt_at).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        statement = statement.with_for_update(of=Delivery, skip_locked=True)
    rows = session.execute(statement).all()
    if not rows:
        return []
    channel = session.get(Channel, partition) if partition != WEBHOOKS else None
    secret = box.decrypt(channel.outbound_secret) if channel else None
    leased_until = now + LEASE
    bulk.update_rows(
        session.connection(),
        _DELIVERIES,
        "id",
        [
            {
                "id": row.id,
                "created_at": row.created_at,
                "attempts": row.attempts + 1,
                "next_attempt_at": leased_until,
            }
            for row in rows
        ],
        match=("created_at",),
    )
    return [
        _claimed(
            row._asdict(),
            row.attempts + 1,
            channel,
            secret,
            row.consent or {},
            row.version_id or 0,
        )
        for row in rows
    ]


def _claimed(
    row: dict[str, Any],
    attempts: int,
    channel: Channel | None,
    secret: str | None,
    consent: dict[str, Any],
    version_id: int,
) -> Claimed:
    """What an attempt needs of a delivery's row, its channel and its customer's consent."""
    payload = row["payload"] or {}
    return Claimed(
        id=row["id"],
        kind=row["kind"],
        attempts=attempts,
        body={"delivery_id": row["id"], **payload.get("body", {})},
        headers=dict(payload.get("headers") or {}),
        url=row["url"]
        if row["kind"] == "webhook"
        else (channel.outbound_url if channel else None),
        channel_id=channel.id if channel else None,
        channel_slug=channel.slug if channel else None,
        channel_enabled=channel.enabled if channel else True,
        secret=secret,
        consent=bool(consent.get(channel.slug, True))
        if channel is not None and row["customer_id"] is not None
        else True,
        deadline_at=row["deadline_at"],
        journey_id=row["journey_id"],
        version_id=version_id,
        node_id=row["node_id"],
        run_id=row["run_id"],
        holds_run=row["holds_run"],
        fallback_channel=payload.get("fallback_channel"),
        is_fallback=row.get("fallback_of_id") is not None,
        traceparent=row.get("traceparent"),
        created_at=row.get("created_at"),
    )


def leased(
    items: list[tuple[dict[str, Any], Channel | None, dict[str, Any], int]],
    box: SecretBox,
) -> list[Claimed]:
    """Claims for deliveries a drain leased as it wrote them (engine.execution.Effects):
    each row with its channel as the drain read it, its customer's consent and its run's
    version."""
    secrets: dict[int, str] = {}
    claimed = []
    for row, channel, consent, version_id in items:
        secret = None
        if channel is not None:
            if channel.id not in secrets:
                secrets[channel.id] = box.decrypt(channel.outbound_secret)
            secret = secrets[channel.id]
        claimed.append(
            _claimed(
                row,
                row["attempts"],
                channel,
                secret,
                consent,
                version_id,
            )
        )
    return claimed


def load(session: Session, ids: list[str]) -> None:
    """Read a claimed batch's rows in one query, so settling each finds it in the session,
    and the journey versions of their runs, which their figures are counted under."""
    statement = select(Delivery).where(Delivery.id.in_(ids)).order_by(Delivery.id)
    if session.get_bind().dialect.name == "postgresql":
        # Two drains holding an expired lease on the same row settle it one after the
        # other; the second then finds it settled and leaves it.
        statement = statement.with_for_update()
    rows = list(session.scalars(statement))
    state = transaction.of(session)
    versions = state.run_versions
    # The runs these deliveries hold, locked in id order, with their customers: settling
    # each delivery then resumes its run without a query of its own.
    held = sorted({r.run_id for r in rows if r.holds_run and r.run_id is not None})
    found: list[Run] = []
    if held:
        postgres = session.get_bind().dialect.name == "postgresql"
        if postgres:
            # Their customers first, as an event drain locks them (customer, then runs):
            # resuming a run may count the customer's sends against a frequency cap.
            owners = sorted(
                {r.customer_id for r in rows if r.holds_run and r.customer_id}
            )
            session.execute(
                select(Customer.id)
                .where(Customer.id.in_(owners))
                .order_by(Customer.id)
                .with_for_update(key_share=True)
            )
        runs = select(Run).where(Run.id.in_(held)).order_by(Run.id)
        if postgres:
            runs = runs.with_for_update()
        found = list(session.scalars(runs))
        batch.customers_of(session, (run.customer_id for run in found))
        state.held_runs.update(run.id for run in found)
        versions.update((run.id, run.version_id) for run in found)
    others = {r.run_id for r in rows if r.run_id is not None} - set(versions)
    if others:
        for run_id, version_id in session.execute(
            select(Run.id, Run.version_id).where(Run.id.in_(others))
        ):
            versions[run_id] = version_id
    # The session holds its objects weakly: keep the batch's until it commits, or settling
    # each would read its row (and flush everything before) again.
    state.loaded_deliveries = (rows, found)
