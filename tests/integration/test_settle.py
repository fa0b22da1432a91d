"""Settling a claimed batch in one statement keeps what settling row by row guaranteed."""

from cryptography.fernet import Fernet
from sqlalchemy import func, select

from engine import execution
from engine.analytics.counters import Metric
from engine.channels import create_channel
from engine.crypto import SecretBox
from engine.delivery import LEASE, Outcome, claim, new_test_delivery, settle
from engine.models import Counter, Delivery, DeliveryStatus, utcnow


def _delivery(session):
    box = SecretBox(Fernet.generate_key().decode())
    channel = create_channel(session, box, "email", "Email", "email").channel
    session.add(new_test_delivery(channel, utcnow()))
    session.commit()
    return box, channel


def test_a_second_lease_holder_leaves_a_settled_delivery_as_it_is(session, database):
    box, channel = _delivery(session)
    now = utcnow()
    with database.session(writer=True) as first:
        [mine] = claim.claim(first, channel.id, box, now)
    later = now + LEASE + LEASE  # the first holder looked dead: its lease ran out
    with database.session(writer=True) as second:
        [theirs] = claim.claim(second, channel.id, box, later)
    assert (mine.id, mine.attempts, theirs.attempts) == (theirs.id, 1, 2)
    with database.session(writer=True) as first:
        settle.settle_all(
            first,
            [mine],
            [Outcome("delivered", latency_ms=3)],
            later,
            30,
            execution.Effects(),
        )
    with database.session(writer=True) as second:
        settle.settle_all(
            second,
            [theirs],
            [Outcome("failed", reason="permanent_4xx", response_status=400)],
            later,
            30,
            execution.Effects(),
        )
    session.expire_all()
    row = session.get(Delivery, mine.id)
    assert row.status is DeliveryStatus.delivered
    assert row.response_status is None and row.finished_at == later
    counted = dict(
        session.execute(
            select(Counter.label, func.sum(Counter.value))
            .where(Counter.metric == Metric.DELIVERY)
            .group_by(Counter.label)
        ).all()
    )
    assert counted == {"delivered": 1}


def test_a_retry_and_a_postponement_set_the_next_attempt(session, database):
    box, channel = _delivery(session)
    session.add(new_test_delivery(channel, utcnow()))
    session.commit()
    now = utcnow()
    with database.session(writer=True) as working:
        claimed = claim.claim(working, channel.id, box, now)
    retry, postpone = sorted(claimed, key=lambda item: item.id)
    with database.session(writer=True) as working:
        settle.settle_all(
            working,
            [retry, postpone],
            [
                Outcome("retry", error="timed out"),
                Outcome("postpone", reason="breaker_open"),
            ],
            now,
            30,
            execution.Effects(),
        )
    session.expire_all()
    retried, postponed = (
        session.get(Delivery, retry.id),
        session.get(Delivery, postpone.id),
    )
    assert retried.status is postponed.status is DeliveryStatus.pending
    assert (retried.attempts, postponed.attempts) == (
        1,
        0,
    )  # a postponement calls no one
    assert retried.last_error == "timed out"
    assert now < retried.next_attempt_at <= now + LEASE * 5
    assert (postponed.next_attempt_at - now).total_seconds() == 30
