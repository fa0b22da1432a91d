"""The collector in long-lived processes: startup's objects frozen, drains' batches spared."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Iterator

import pytest

from engine import heap, jobs, worker


@pytest.fixture
def collector() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    gc.unfreeze()
    heap._pauses = 0
    if enabled:
        gc.enable()
    else:
        gc.disable()


class _Node:
    def __init__(self) -> None:
        self.me = self


def _tracked_ids() -> set[int]:
    return {id(item) for item in gc.get_objects()}


def test_startup_objects_leave_the_collectors_view(collector: None) -> None:
    kept = _Node()
    assert id(kept) in _tracked_ids()
    frozen = heap.freeze_startup()
    # Not compared with gc.get_freeze_count(): frozen objects freed meanwhile leave it.
    assert frozen > 0
    assert id(kept) not in _tracked_ids()


def test_garbage_made_after_freezing_is_still_collected(collector: None) -> None:
    heap.freeze_startup()
    gc.disable()
    ring = _Node()
    gone = weakref.ref(ring)
    del ring
    assert gone() is not None  # a cycle: only the collector frees it
    gc.collect()
    assert gone() is None


def test_no_automatic_collection_inside_and_again_after(collector: None) -> None:
    with heap.collector_paused():
        assert not gc.isenabled()
        with heap.collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_an_error_inside_resumes_the_collector(collector: None) -> None:
    with pytest.raises(ValueError), heap.collector_paused():
        raise ValueError("boom")
    assert gc.isenabled()


def test_the_collector_resumes_when_the_last_of_concurrent_pauses_ends(
    collector: None,
) -> None:
    inside = threading.Barrier(2, timeout=5)
    first_out = threading.Event()
    states: list[bool] = []

    def other() -> None:
        with heap.collector_paused():
            inside.wait()
            first_out.wait(5)
            states.append(gc.isenabled())

    thread = threading.Thread(target=other)
    thread.start()
    with heap.collector_paused():
        inside.wait()
    first_out.set()
    thread.join(5)
    assert states == [False]
    assert gc.isenabled()


def test_drain_jobs_run_with_the_collector_paused(
    collector: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, bool]] = []
    monkeypatch.setattr(jobs.runtime, "current", lambda: None)
    monkeypatch.setattr(
        jobs.drains,
        "drain_events",
        lambda rt, p: seen.append(("events", gc.isenabled())),
    )
    monkeypatch.setattr(
        jobs.drains,
        "drain_deliveries",
        lambda rt, p: seen.append(("deliveries", gc.isenabled())),
    )
    monkeypatch.setattr(
        jobs.drains,
        "sweep_timers",
        lambda rt, budget, helper: seen.append(("timers", gc.isenabled())),
    )
    jobs.drain_events(3)
    jobs.drain_deliveries(4)
    jobs.sweep_due_timers(1)
    assert seen == [("events", False), ("deliveries", False), ("timers", False)]
    assert gc.isenabled()


def test_a_worker_resumes_a_pause_its_job_left_counted(
    collector: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def cut_short(self: object, job: object, queue: object) -> None:
        heap.collector_paused().__enter__()  # counted, never left: as if cut short
        raise RuntimeError("job timeout")

    monkeypatch.setattr(worker.SimpleWorker, "execute_job", cut_short)
    with pytest.raises(RuntimeError):
        worker.Worker.__new__(worker.Worker).execute_job(None, None)  # type: ignore[arg-type]
    assert gc.isenabled()
    with heap.collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()  # the count starts again from none
