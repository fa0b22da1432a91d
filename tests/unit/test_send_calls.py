"""A batch's calls on the delivery pool: every item once, in parallel up to the pool's
threads, each outcome in its item's place."""

from __future__ import annotations

import threading
import time

import pytest

from engine.delivery import Claimed, Outcome
from engine.execution import drains


def _items(count: int) -> list[Claimed]:
    return [
        Claimed(
            id=f"dlv_{n}",
            kind="send",
            attempts=1,
            body={},
            headers={},
            url=None,
            channel_id=None,
            channel_slug=None,
            channel_enabled=True,
            secret=None,
            consent=True,
            deadline_at=None,
        )
        for n in range(count)
    ]


def test_every_item_is_called_once_and_its_outcome_kept_in_its_place():
    seen: list[str] = []
    lock = threading.Lock()
    busy = most = 0

    def call(item: Claimed) -> Outcome:
        nonlocal busy, most
        with lock:
            seen.append(item.id)
            busy += 1
            most = max(most, busy)
        time.sleep(0.01)
        with lock:
            busy -= 1
        return Outcome("delivered", error=item.id)

    items = _items(40)
    calls = drains.Calls(items, call)
    outcomes = calls.results()
    assert calls.done.is_set()
    assert [out.error for out in outcomes if out] == [item.id for item in items]
    assert sorted(seen) == sorted(item.id for item in items)
    assert 1 < most <= drains.SEND_THREADS


def test_a_call_that_raises_is_raised_once_the_others_are_made():
    made: list[str] = []

    def call(item: Claimed) -> Outcome | None:
        if item.id == "dlv_3":
            raise RuntimeError("broken")
        made.append(item.id)
        return None

    calls = drains.Calls(_items(20), call)
    with pytest.raises(RuntimeError, match="broken"):
        calls.results()
    assert len(made) == 19


def test_no_items_are_done_at_once():
    calls = drains.Calls([], lambda item: None)
    assert calls.done.is_set() and calls.results() == []
