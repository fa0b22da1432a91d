"""The policies applied to live runs' sends: caps counted in SQL, exact under concurrency.

A cap is counted once per profile and transaction: the profile's row is locked first (on
PostgreSQL; SQLite has one writer at a time), so two workers sending to the same customer at
once count one after the other, each seeing what the other committed; sends the transaction
makes after that are added to its count. Deliveries count while pending or delivered: a
failed or suppressed one reached nobody, and a transactional one is never counted.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.orm import Session

from engine import transaction
from engine.execution import rows
from engine.execution.documents import channels_by_slug
from engine.models import Customer, Delivery, DeliveryStatus, Run, SendSlot
from engine.policies import FrequencyCap, Policies, Verdict, decide
from engine.policies.store import current

COUNTED = (DeliveryStatus.pending, DeliveryStatus.delivered)


class SqlCounts:
    """The sends of one profile counted against the caps of one revision of the policies."""

    def __init__(self, session: Session, policies: Policies, profile_id: int) -> None:
        self.session, self.policies, self.profile_id = session, policies, profile_id

    def _key(self, index: int) -> tuple[int, int, int]:
        return (self.profile_id, self.policies.revision, index)

    def sent(self, index: int, cap: FrequencyCap, since: datetime) -> int:
        known = transaction.of(self.session).cap_counts
        key = self._key(index)
        if key not in known:
            known[key] = self._count(cap, since, index)
        return known[key]

    def add(self, channel: str) -> None:
        known = transaction.of(self.session).cap_counts
        for index, _cap in self.policies.caps_of(channel):
            key = self._key(index)
            known[key] = known.get(key, 0) + 1

    def _count(self, cap: FrequencyCap, since: datetime, index: int = -1) -> int:
        slugs = channels_by_slug(self.session)
        ids = [slugs[slug].id for slug in cap.channels if slug in slugs]
        if not ids:
            return 0
        read_ahead = transaction.of(self.session).batch
        if (
            index >= 0
            and read_ahead is not None
            and read_ahead.locked
            and self.profile_id in read_ahead.customers
            and self.profile_id not in transaction.of(self.session).new_customers
        ):
            return self._count_batch(list(read_ahead.customers), ids, since, index)
        if self.profile_id in transaction.of(self.session).new_customers:
            # Created by this transaction: only its own sends, not yet written, exist.
            return _unwritten(self.session, [self.profile_id], ids, since)[0]
        session = self.session
        if session.get_bind().dialect.name == "postgresql":
            # FOR NO KEY UPDATE: rows naming the profile (runs, deliveries) take a key-share
            # lock, which this does not wait for; two counters of one profile queue here.
            session.execute(
                select(Customer.id)
                .where(Customer.id == self.profile_id)
                .with_for_update(key_share=True)
            )
        statement = select(func.count()).where(*_counted([self.profile_id], ids, since))
        return int(session.scalar(statement) or 0)

    def _count_batch(
        self, profiles: list[int], channel_ids: list[int], since: datetime, index: int
    ) -> int:
        """Count the cap for every profile the batch read (and locked) at once: one grouped
        query of what is written, through the connection so the batch's own rows are not
        written early, and its unwritten rows added here."""
        found = dict(
            zip(
                profiles,
                _unwritten(self.session, profiles, channel_ids, since),
                strict=True,
            )
        )
        for customer_id, count in self.session.connection().execute(
            select(Delivery.customer_id, func.count())
            .where(*_counted(profiles, channel_ids, since))
            .group_by(Delivery.customer_id)
        ):
            found[int(customer_id or 0)] += int(count)
        known = transaction.of(self.session).cap_counts
        for customer_id, count in found.items():
            known.setdefault((customer_id, self.policies.revision, index), count)
        return known[(self.profile_id, self.policies.revision, index)]


def _counted(
    profiles: list[int], channel_ids: list[int], since: datetime
) -> list[ColumnElement[bool]]:
    """The written deliveries a cap counts: the profiles', on its channels, in its window,
    pending or delivered, not transactional."""
    return [
        Delivery.customer_id.in_(profiles),
        Delivery.channel_id.in_(channel_ids),
        Delivery.created_at > since,
        Delivery.status.in_(COUNTED),
        Delivery.transactional.is_(False),
    ]


def _unwritten(
    session: Session, profiles: list[int], channel_ids: list[int], since: datetime
) -> list[int]:
    """The same count, per profile in order, of the rows the transaction has not written."""
    place = {profile: n for n, profile in enumerate(profiles)}
    found = [0] * len(profiles)
    for row in rows.unwritten_deliveries(session):
        n = place.get(row["customer_id"])
        if (
            n is not None
            and row["channel_id"] in channel_ids
            and row["status"] in COUNTED
            and not row.get("transactional")
            and row["created_at"] > since
        ):
            found[n] += 1
    return found


def fallback_verdict(
    session: Session, customer_id: int | None, channel: str, now: datetime
) -> Verdict:
    """What the policies say of a fallback send on `channel`, made when the first channel
    failed: the first was checked on its own channel, this one is checked on its own."""
    policies = current(session)
    if policies.empty or customer_id is None:
        return None
    customer = session.get(Customer, customer_id)
    traits = dict(customer.traits or {}) if customer is not None else {}
    counts = SqlCounts(session, policies, customer_id)
    return decide(policies, channel, customer_id, traits, now, counts)


# The advisory locks of send limits, one per journey: (this, journey id).
SLOT_LOCKS = 0x7468
KEEP_SLOTS = timedelta(days=1)


class SqlThrottle:
    """A journey's send limit in SQL: each send takes the first minute from now's with room,
    after every send that came before it (so waiting runs are released in order). On
    PostgreSQL the journey's slots are taken under a transaction-scoped advisory lock."""

    def __init__(self, session: Session, journey_id: int, most: int) -> None:
        self.session, self.journey_id, self.most = session, journey_id, most

    def slot(self, now: datetime) -> datetime:
        session, minute = self.session, now.replace(second=0, microsecond=0)
        if session.get_bind().dialect.name == "postgresql":
            session.execute(
                select(func.pg_advisory_xact_lock(SLOT_LOCKS, self.journey_id))
            )
        last = session.scalars(
            select(SendSlot)
            .where(SendSlot.journey_id == self.journey_id)
            .order_by(SendSlot.minute.desc())
            .limit(1)
        ).first()
        if last is not None and last.minute >= minute and last.used < self.most:
            last.used += 1
            return max(last.minute, now)
        if last is not None and last.minute >= minute:
            minute = last.minute + timedelta(minutes=1)
        else:  # a new stretch of sends: the minutes before it are no longer asked
            session.execute(
                delete(SendSlot).where(
                    SendSlot.journey_id == self.journey_id,
                    SendSlot.minute < minute - KEEP_SLOTS,
                )
            )
        session.add(SendSlot(journey_id=self.journey_id, minute=minute, used=1))
        return max(minute, now)


class LiveGate:
    """What the policies and the journey's send limit say of the sends of one run of a
    profile (runner.SendGate)."""

    def __init__(
        self,
        session: Session,
        run: Run,
        traits: dict[str, Any],
        max_sends_per_minute: int | None = None,
    ) -> None:
        self.session, self.run, self.traits = session, run, traits
        self.throttle = (
            SqlThrottle(session, run.journey_id, max_sends_per_minute)
            if max_sends_per_minute
            else None
        )

    def decide(self, channel: str, now: datetime, held: str | None = None) -> Verdict:
        policies = current(self.session)
        if policies.empty and self.throttle is None:
            return None
        profile_id, counts = None, None
        if not policies.empty:
            if self.run.customer_id is None:
                self.session.flush()  # a new profile, added to the session: its id
            profile_id = int(self.run.customer_id or self.run.customer.id)
            counts = SqlCounts(self.session, policies, profile_id)
        return decide(
            policies,
            channel,
            profile_id,
            self.traits,
            now,
            counts,
            self.throttle,
            held,
        )
