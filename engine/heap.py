"""The cyclic garbage collector in a long-lived process.

A worker, the scheduler and each web process hold some 120,000 objects from the moment they
start to the moment they stop: modules, classes, the ORM's mappers, the app and its routes.
Python's collector walks all of them in every full collection; a worker draining at its
limit ran one every two seconds, each taking 110-160 ms with the batch's own objects, and a
quarter of its time went to the collector. Moving what startup built out of the collector's
view (`gc.freeze`) leaves it the objects of the work in hand.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import configure_mappers

_lock = threading.Lock()
_pauses = 0


def freeze_startup() -> int:
    """Collect what startup left behind, then exempt every object alive now from later
    collections; the number exempted. Called once a process has imported and built what it
    keeps until it stops, before its first request or job."""
    configure_mappers()
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


@contextmanager
def collector_paused() -> Iterator[None]:
    """No automatic collection inside the block; the collector resumes after it (and
    collects then if its count says so). For work of bounded size whose objects die when it
    ends, a drain's batches: the collector would otherwise walk them many times over while
    they are all alive. Nested or concurrent use resumes only at the outermost exit."""
    global _pauses
    counted = False
    try:
        with _lock:
            _pauses += 1
            counted = True
            if _pauses == 1:
                gc.disable()
        yield
    finally:
        if counted:
            with _lock:
                _pauses -= 1
                if _pauses == 0:
                    gc.enable()


def resume_collector() -> None:
    """Collect automatically again, whatever pauses were counted: for a worker between jobs,
    where none should be, should a job's timeout have cut one short between its counting and
    its `try`."""
    global _pauses
    with _lock:
        _pauses = 0
        gc.enable()
