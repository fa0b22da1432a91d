"""Two scheduler processes, one leading: the leader killed or paused, the other takes over,
and every housekeeping slot runs exactly once."""

from __future__ import annotations

import signal
import subprocess
import time
from collections import defaultdict

from sqlalchemy import select

from engine import jobs, leadership
from engine.models import PeriodicRun, SchedulerLease

LEASE = 2
PERIOD = 4
HOUSEKEEPING = sorted({*jobs.HOUSEKEEPING, *jobs.OWN_TRANSACTIONS})
ARGS = tuple(f"--every={task}={PERIOD}" for task in HOUSEKEEPING)


def _leader(stack) -> tuple[int, int] | None:
    """(token, pid) of the scheduler that took the newest token."""
    with stack.database.session() as session:
        row = session.get(SchedulerLease, leadership.SCHEDULER)
        return (row.fence, int(row.holder.rsplit(":", 1)[1])) if row else None


def _runs(stack) -> dict[str, list[tuple[int, int]]]:
    """Per task, (slot, token) of every slot that ran, in slot order."""
    runs: dict[str, list[tuple[int, int]]] = defaultdict(list)
    with stack.database.session() as session:
        for task, slot, fence in session.execute(
            select(PeriodicRun.task, PeriodicRun.slot, PeriodicRun.fence).order_by(
                PeriodicRun.task, PeriodicRun.slot
            )
        ):
            runs[task].append((slot, fence))
    return runs


def _wait(what, timeout: float, stack):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = what()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout:.0f} s; logs in {stack.logs}")


def _slots_under(stack, fence: int, count: int) -> bool:
    runs = _runs(stack)
    return all(
        sum(1 for _, token in runs[task] if token == fence) >= count
        for task in HOUSEKEEPING
    )


def _two_schedulers(stack_factory):
    stack = stack_factory(THROUGHLINE_SCHEDULER_LEASE_SECONDS=str(LEASE))
    stack.start_workers(1)
    first = stack.spawn_scheduler("scheduler-a", *ARGS)
    _wait(lambda: _leader(stack), 60, stack)
    second = stack.spawn_scheduler("scheduler-b", *ARGS)
    by_pid = {first.pid: first, second.pid: second}
    fence, pid = _leader(stack)
    assert (fence, pid) == (1, first.pid)
    _wait(lambda: _slots_under(stack, 1, 2), 30, stack)
    return stack, by_pid[pid], second


def _assert_each_slot_ran_once_in_order(stack, last_fence: int) -> None:
    # let the worker finish what was queued before the schedulers stopped
    time.sleep(1.5)
    runs = _runs(stack)
    for task in HOUSEKEEPING:
        slots = [slot for slot, _ in runs[task]]
        tokens = [token for _, token in runs[task]]
        assert slots == list(range(slots[0], slots[-1] + 1)), (
            f"{task} skipped a slot: {runs[task]}"
        )
        assert tokens == sorted(tokens), f"{task} ran under an older token later"
        assert set(tokens) <= set(range(1, last_fence + 1))


def test_the_leader_killed_another_takes_over_and_no_slot_runs_twice_or_is_skipped(
    stack_factory,
):
    stack, leader, follower = _two_schedulers(stack_factory)
    leader.send_signal(signal.SIGKILL)
    leader.wait(10)
    killed = time.monotonic()
    _wait(lambda: (_leader(stack) or (0, 0))[0] == 2, 15, stack)
    took_over = time.monotonic() - killed
    assert _leader(stack) == (2, follower.pid)
    # within one lease and a follower's poll (with room for a loaded machine)
    assert took_over < LEASE + leadership.FOLLOW_EVERY + 3, took_over

    _wait(lambda: _slots_under(stack, 2, 2), 30, stack)
    follower.terminate()
    follower.wait(15)
    _assert_each_slot_ran_once_in_order(stack, last_fence=2)


def test_a_paused_leader_steps_down_when_it_wakes_and_runs_nothing_more(
    stack_factory,
):
    stack, leader, follower = _two_schedulers(stack_factory)
    leader.send_signal(signal.SIGSTOP)
    try:
        _wait(lambda: (_leader(stack) or (0, 0))[0] == 2, 15, stack)
        _wait(lambda: _slots_under(stack, 2, 1), 30, stack)
    finally:
        leader.send_signal(signal.SIGCONT)
    woke = time.monotonic()
    # The woken scheduler still believed it led; it must find out before working.
    _wait(
        lambda: "lease lost" in (stack.logs / "scheduler-a.log").read_text(),
        10,
        stack,
    )
    _wait(lambda: _slots_under(stack, 2, 3), 30, stack)
    assert _leader(stack) == (2, follower.pid)
    assert time.monotonic() - woke < 30
    for process in (leader, follower):
        process.terminate()
    for process in (leader, follower):
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
    _assert_each_slot_ran_once_in_order(stack, last_fence=2)
