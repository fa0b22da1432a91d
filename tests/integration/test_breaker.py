"""Channel circuit breakers in Redis: opening, refusing, the half-open trial, concurrency."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from redis import Redis

from engine.delivery.breaker import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    Breaker,
    BreakerOpen,
    Gate,
    breaker_states,
)


class Down(Exception):
    pass


def _fail() -> None:
    raise Down


def test_failures_in_a_row_open_the_breaker_and_a_success_forgets_them(
    redis_client: Redis,
) -> None:
    breaker = Breaker(redis_client, 7, fail_max=3, reset_seconds=30)
    gate = Gate(breaker)
    for _ in range(2):
        with pytest.raises(Down):
            gate.call(_fail)
    assert breaker.read().failures == 2
    assert gate.call(lambda: "ok") == "ok"
    assert breaker.read() == breaker_states(redis_client, [7])[7]
    assert breaker.read().failures == 0 and breaker.read().state == CLOSED

    for _ in range(3):
        with pytest.raises(Down):
            gate.call(_fail)
    assert breaker.read().state == OPEN
    calls: list[int] = []
    with pytest.raises(BreakerOpen):  # the same batch stops calling
        gate.call(lambda: calls.append(1))
    with pytest.raises(BreakerOpen):  # and so does the next, in any worker
        Gate(Breaker(redis_client, 7, 3, 30)).call(lambda: calls.append(1))
    assert calls == []
    assert breaker_states(redis_client, [7])[7].opened_at is not None


def test_after_the_reset_time_one_trial_call_closes_or_reopens_it(
    redis_client: Redis,
) -> None:
    breaker = Breaker(redis_client, 8, fail_max=1, reset_seconds=30)
    breaker.open(now=time.time() - 31)
    trial = Gate(breaker)
    assert trial.mode == HALF_OPEN and breaker.read().state == HALF_OPEN
    # another worker's batch meanwhile: the trial is taken, it does not call
    with pytest.raises(BreakerOpen):
        Gate(Breaker(redis_client, 8, 1, 30)).call(lambda: None)
    with pytest.raises(Down):
        trial.call(_fail)
    assert breaker.read().state == OPEN
    with pytest.raises(BreakerOpen):
        trial.call(lambda: None)

    breaker.open(now=time.time() - 31)
    trial = Gate(breaker)
    assert trial.call(lambda: "ok") == "ok"
    assert trial.mode == CLOSED and breaker.read().state == CLOSED
    assert Gate(breaker).call(lambda: "again") == "again"


def _call_from_threads(
    gate: Gate, call: Callable[[], object], count: int
) -> list[BaseException | None]:
    """Call through the gate from `count` threads that start together; what each raised."""
    raised: list[BaseException | None] = [None] * count
    ready = threading.Barrier(count, timeout=5)

    def one(index: int) -> None:
        try:
            ready.wait()
            gate.call(call)
        except BaseException as error:
            raised[index] = error

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert not any(thread.is_alive() for thread in threads)
    return raised


def test_calls_of_a_closed_breaker_run_at_the_same_time(redis_client: Redis) -> None:
    """A slow channel is called by every delivery thread at once, not one after another."""
    # Each call waits inside until all eight are inside: calls made one after another
    # would break the barrier.
    all_inside = threading.Barrier(8, timeout=5)
    raised = _call_from_threads(
        Gate(Breaker(redis_client, 9, fail_max=5, reset_seconds=30)),
        all_inside.wait,
        8,
    )
    assert raised == [None] * 8


class TrialThenTogether:
    """The first call is the half-open trial and notes any call that comes in while it runs;
    every later call waits inside until all of them are inside."""

    def __init__(self, later: int) -> None:
        self.lock = threading.Lock()
        self.calls = 0
        self.trial_running = False
        self.during_trial = 0
        self.later = threading.Barrier(later, timeout=5)

    def __call__(self) -> None:
        with self.lock:
            self.calls += 1
            trial = self.calls == 1
            self.during_trial += self.trial_running
            self.trial_running = self.trial_running or trial
        if not trial:
            self.later.wait()
            return
        # The four threads left their start barrier together, so the others reach the gate
        # during this pause and any call it let through would come in now. The pause can
        # only miss such a call, never fail a gate that works.
        time.sleep(0.05)
        with self.lock:
            self.trial_running = False


def test_the_half_open_trial_goes_alone_and_its_success_lets_the_rest_through(
    redis_client: Redis,
) -> None:
    breaker = Breaker(redis_client, 10, fail_max=1, reset_seconds=30)
    breaker.open(now=time.time() - 31)
    call = TrialThenTogether(later=3)
    raised = _call_from_threads(Gate(breaker), call, 4)
    assert breaker.read().state == CLOSED
    assert call.calls == 4 and call.during_trial == 0  # the trial alone
    assert raised == [None] * 4  # then the other three together


def test_an_unreachable_redis_reads_unknown_and_calls_the_channel() -> None:
    gone = Redis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=0.2)
    assert breaker_states(gone, [1])[1].state == "unknown"
    gate = Gate(Breaker(gone, 1, fail_max=1, reset_seconds=30))
    assert gate.call(lambda: "sent") == "sent"
    with pytest.raises(Down):
        gate.call(_fail)
