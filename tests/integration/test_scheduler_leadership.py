"""One leading scheduler: the lease in Redis, the fencing token and the slots in SQL."""

import threading
import time
from datetime import timedelta

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import func, select

from engine import jobs, leadership, runtime, scheduler
from engine.models import Channel, PeriodicRun, SchedulerLease, utcnow
from tests.integration.test_background import _rotated_channels


def _fence_taker(database):
    def take(holder: str) -> int:
        with database.session(writer=True) as session:
            return leadership.next_fence(session, holder)

    return take


def test_one_of_two_schedulers_leads_and_the_other_takes_over_when_it_lets_go(
    database, redis_client
):
    take = _fence_taker(database)
    first = leadership.Leadership(redis_client, lease_seconds=5, holder="a")
    second = leadership.Leadership(redis_client, lease_seconds=5, holder="b")
    assert first.poll(take) is True
    assert second.poll(take) is False
    assert first.poll(take) is True  # a renewal keeps it
    assert (first.fence, second.fence) == (1, None)

    assert first.release() == 1
    assert first.leading() is False
    assert second.poll(take) is True
    assert second.fence == 2
    with database.session() as session:
        row = session.get(SchedulerLease, leadership.SCHEDULER)
        assert (row.fence, row.holder) == (2, "b")


def test_a_leader_whose_lease_ran_out_finds_out_at_its_next_renewal(
    database, redis_client
):
    take = _fence_taker(database)
    paused = leadership.Leadership(redis_client, lease_seconds=1, holder="paused")
    other = leadership.Leadership(redis_client, lease_seconds=1, holder="other")
    assert paused.poll(take)
    time.sleep(1.1)  # paused past its lease: nothing renewed it
    assert paused.leading() is False  # it does not act on a lease it cannot be sure of
    assert other.poll(take)
    assert paused.poll(take) is False  # the renewal fails: it steps down
    assert paused.fence is None
    assert other.fence == 2


def test_tokens_keep_rising_when_redis_forgets_everything(database, redis_client):
    take = _fence_taker(database)
    leader = leadership.Leadership(redis_client, lease_seconds=5, holder="a")
    assert leader.poll(take) and leader.fence == 1
    redis_client.flushdb()
    assert leader.poll(take) is False  # its lease is gone
    assert leader.poll(take) is True
    assert leader.fence == 2  # from SQL, not from anything Redis kept


def test_a_slot_runs_once_and_only_under_the_newest_token(database):
    with database.session(writer=True) as session:
        old = leadership.next_fence(session, "a")
    with database.session(writer=True) as session:
        assert leadership.claim(session, "compact_counters", 10, old)
    with database.session(writer=True) as session:
        assert not leadership.claim(session, "compact_counters", 10, old)
        assert leadership.claim(session, "compact_counters", 11, old)
    with database.session(writer=True) as session:
        new = leadership.next_fence(session, "b")
    with database.session(writer=True) as session:
        # the old leader's job, queued before it lost the lease, does nothing
        assert not leadership.claim(session, "compact_counters", 12, old)
        assert not leadership.claim(session, "compact_counters", 11, new)
        assert leadership.claim(session, "compact_counters", 12, new)
    with database.session() as session:
        ran = session.execute(
            select(PeriodicRun.slot, PeriodicRun.fence).order_by(PeriodicRun.slot)
        ).all()
    assert [tuple(row) for row in ran] == [(10, old), (11, old), (12, new)]


def test_a_housekeeping_job_from_a_replaced_leader_changes_nothing(
    settings, session, engine_runtime
):
    _rotated_channels(session, settings)
    old = leadership.next_fence(session, "a")
    session.commit()
    new = leadership.next_fence(session, "b")
    session.commit()
    assert jobs.housekeeping("expire_rotated_secrets", 5, old) is None
    session.expire_all()
    kept = select(Channel.slug).where(Channel.previous_inbound_secret.is_not(None))
    assert sorted(session.scalars(kept)) == ["grace", "old"]
    assert jobs.housekeeping("expire_rotated_secrets", 5, new) == 1
    assert jobs.housekeeping("expire_rotated_secrets", 5, new) is None  # slot taken


def test_the_record_of_periodic_runs_is_kept_a_week(database, engine_runtime):
    with database.session(writer=True) as session:
        fence = leadership.next_fence(session, "a")
        leadership.claim(session, "compact_counters", 1, fence)
    with database.session(writer=True) as session:
        assert leadership.forget_runs(session, utcnow() + timedelta(days=6)) == 0
        assert leadership.forget_runs(session, utcnow() + timedelta(days=8)) == 1
        assert session.scalar(select(func.count()).select_from(PeriodicRun)) == 0


def test_a_scheduler_works_only_while_it_leads(settings, redis_client):
    calls: list[str] = []
    rt = runtime.Runtime.from_settings(settings)
    tasks = [scheduler.Periodic("often", 0.2, lambda rt: calls.append("often"))]
    first = scheduler.Scheduler(rt, tasks, lease_seconds=3)
    second = scheduler.Scheduler(rt, tasks, lease_seconds=3)
    first.leadership.holder, second.leadership.holder = "first", "second"
    first.leadership.poll(first.take_fence)
    second.leadership.poll(second.take_fence)

    runner = threading.Thread(target=second.run)
    runner.start()
    time.sleep(0.6)
    assert calls == []  # the second never leads while the first holds the lease
    first.leadership.release()
    deadline = time.monotonic() + 3
    while not calls and time.monotonic() < deadline:
        time.sleep(0.05)
    second.stop()
    runner.join(5)
    rt.close()
    assert calls, "the second scheduler did not take over once the first let go"
    assert redis_client.get(leadership.LEASE_KEY) is None  # released on a clean stop


def test_periods_can_be_changed_by_name():
    tasks = scheduler.with_periods(scheduler.periodic_tasks(), ["compact_counters=30"])
    assert {t.name: t.every for t in tasks}["compact_counters"] == 30
    with pytest.raises(SystemExit, match="no periodic task is named 'compact'"):
        scheduler.with_periods(scheduler.periodic_tasks(), ["compact=30"])
    with pytest.raises(SystemExit, match="number of seconds"):
        scheduler.with_periods(scheduler.periodic_tasks(), ["timers=soon"])


def test_a_leader_whose_token_is_no_longer_the_newest_takes_the_lease_again(
    database, redis_client
):
    take = _fence_taker(database)

    def newest():
        with database.session() as session:
            return leadership.current_fence(session)

    leader = leadership.Leadership(redis_client, lease_seconds=5, holder="a")
    assert leader.poll(take, newest) and leader.fence == 1
    take("slow")  # a token taken after the lease ran out under someone else
    assert leader.poll(take, newest) is False  # it lets the lease go...
    assert redis_client.get(leadership.LEASE_KEY) is None
    assert leader.poll(take, newest) is True  # ...and wins it back with a new token
    assert leader.fence == 3


def test_a_failed_renewal_keeps_the_lease_while_it_is_surely_held(
    database, redis_client, monkeypatch
):
    take = _fence_taker(database)
    leader = leadership.Leadership(redis_client, lease_seconds=5, holder="a")
    assert leader.poll(take)

    def unreachable(*_args, **_kwargs):
        raise RedisConnectionError("Redis is not answering")

    monkeypatch.setattr(leader._lock, "reacquire", unreachable)
    assert leader.poll(take) is True  # one failed renewal is not a lost lease
    assert leader.due() - time.monotonic() <= leadership.FOLLOW_EVERY
    monkeypatch.setattr(leader, "_valid_until", time.monotonic() - 0.1)
    assert leader.poll(take) is False  # a lease it can no longer be sure of is given up
