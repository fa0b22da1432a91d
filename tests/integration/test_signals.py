"""Drain signals: one queued drain per partition, and none while a drain holds it."""

from __future__ import annotations

from redis import Redis

from engine.execution import signals
from engine.intake import admission


def _running_drain(redis: Redis, kind: str, partition: int) -> signals.DrainLock:
    """A drain that holds its partition and has lowered the flag to read its first batch."""
    drain = signals.DrainLock(redis, kind, partition)
    assert drain.acquire()
    drain.lower_flag()
    return drain


def test_work_signalled_while_a_drain_holds_the_partition_is_queued_by_that_drain(
    redis_client: Redis,
) -> None:
    queued: list[str] = []
    drain = _running_drain(redis_client, "deliveries", 5)

    # work committed while the drain runs: the flag goes up, no second drain is queued
    assert not signals.raise_flag(
        redis_client, "deliveries", 5, lambda: queued.append("signal")
    )
    signals.signal_events(redis_client, {5: 2}, lambda p: queued.append(f"events {p}"))
    assert queued == ["events 5"]  # the events partition is free: its drain is queued

    drain.release()
    drain.hand_over(False, lambda: queued.append("hand over"))
    assert queued == ["events 5", "hand over"]  # the drain saw the flag as it let go

    # the flag is up for the drain just queued: more work queues nothing more
    assert not signals.raise_flag(
        redis_client, "deliveries", 5, lambda: queued.append("again")
    )
    assert queued == ["events 5", "hand over"]


def test_events_signalled_while_their_drain_runs_wait_for_its_hand_over(
    redis_client: Redis,
) -> None:
    queued: list[int] = []
    drain = _running_drain(redis_client, "events", 3)
    signals.signal_events(redis_client, {3: 4}, queued.append)
    assert queued == []
    assert int(redis_client.get(admission.BACKLOG_KEY) or 0) == 4
    drain.release()
    drain.hand_over(False, lambda: queued.append(3))
    assert queued == [3]


def test_a_groups_partitions_are_signalled_in_one_call_each_as_it_stands(
    redis_client: Redis,
) -> None:
    queued: list[int] = []
    signals.signal_events(redis_client, {2: 1}, queued.append)  # its drain is queued
    drain = _running_drain(redis_client, "events", 3)
    calls: list[str] = []
    redis_client.set_response_callback(
        "EVAL", lambda answer, **_: calls.append("EVAL") or answer
    )

    signals.signal_events(redis_client, {1: 2, 2: 3, 3: 1, 4: 5}, queued.append)

    assert calls == ["EVAL"]
    # partition 2's flag was up, partition 3 is held by its drain: only 1 and 4 are queued
    assert queued == [2, 1, 4]
    assert int(redis_client.get(admission.BACKLOG_KEY) or 0) == 1 + 2 + 3 + 1 + 5
    drain.release()
    drain.hand_over(False, lambda: queued.append(3))  # what came in while it held it
    assert queued == [2, 1, 4, 3]
