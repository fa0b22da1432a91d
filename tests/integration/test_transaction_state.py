"""The engine's per-transaction state: kept through savepoints, reset when the transaction ends."""

from sqlalchemy import select

from engine import transaction
from engine.analytics import counters
from engine.analytics.counters import Metric
from engine.execution import rows
from engine.models import Counter, utcnow


def test_a_commit_resets_the_state_but_keeps_the_counter_shard(session):
    counters.set_shard(session, 3)
    state = transaction.of(session)
    state.versions_read[1] = (None, "gone", 1)
    state.new_customers.add(7)
    counters.add(session, Metric.ENTERED, utcnow(), journey_id=4)
    session.commit()
    after = transaction.of(session)
    assert after is not state
    assert after.versions_read == {} and after.new_customers == set()
    assert after.counter_shard == 3
    assert [row.shard for row in session.scalars(select(Counter))] == [3]


def test_a_released_savepoint_keeps_what_was_read_and_a_rolled_back_one_drops_the_batch(
    session,
):
    state = transaction.of(session)
    state.channels_by_slug = {}
    savepoint = session.begin_nested()
    savepoint.commit()
    assert transaction.of(session) is state and state.channels_by_slug == {}
    state.batch = object()  # type: ignore[assignment]
    savepoint = session.begin_nested()
    savepoint.rollback()
    assert transaction.of(session) is state
    assert state.batch is None and state.channels_by_slug == {}


def test_a_rollback_of_the_whole_transaction_forgets_pending_steps_and_counts(session):
    session.scalars(select(Counter)).all()  # the transaction has begun
    counters.add(session, Metric.ENTERED, utcnow(), journey_id=4)
    transaction.of(session).identifiers[1] = {"email": "a@example.com"}
    session.rollback()
    assert transaction.peek(session) is None or (
        transaction.of(session).identifiers == {}
        and transaction.of(session).tally is None
    )
    assert rows.write(session) == 0
    session.commit()
    assert list(session.scalars(select(Counter))) == []
