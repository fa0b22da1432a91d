"""The scheduler process: runs the periodic work declared in `periodic_tasks`."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

from engine import jobs, runtime
from engine.execution import drains
from engine.queues import queue
from engine.settings import load_settings

log = logging.getLogger("throughline.scheduler")
HEARTBEAT_KEY = "throughline:scheduler:heartbeat"


@dataclass(frozen=True)
class Periodic:
    """Work done every `every` seconds by `run`, given the process runtime."""

    name: str
    every: float
    run: Callable[[runtime.Runtime], object]


def beat(rt: runtime.Runtime) -> None:
    """Record that a scheduler is alive (read by /metrics)."""
    rt.redis.set(HEARTBEAT_KEY, f"{time.time():.3f}", ex=300)


def enqueue_expire_rotated_secrets(rt: runtime.Runtime) -> None:
    queue("default", rt.redis).enqueue(jobs.expire_rotated_secrets, job_timeout=60)


def enqueue_compact_counters(rt: runtime.Runtime) -> None:
    queue("default", rt.redis).enqueue(jobs.compact_counters, job_timeout=600)


def enqueue_purge_schema_violations(rt: runtime.Runtime) -> None:
    queue("default", rt.redis).enqueue(jobs.purge_schema_violations, job_timeout=600)


def periodic_tasks() -> list[Periodic]:
    """Everything the scheduler does, and how often."""
    return [
        Periodic("timers", 1, drains.sweep_timers),
        Periodic("recover", 2, drains.recover),
        Periodic("heartbeat", 5, beat),
        Periodic("expire_rotated_secrets", 60, enqueue_expire_rotated_secrets),
        Periodic("compact_counters", 300, enqueue_compact_counters),
        Periodic("purge_schema_violations", 3600, enqueue_purge_schema_violations),
    ]


class Scheduler:
    def __init__(self, rt: runtime.Runtime, tasks: list[Periodic]) -> None:
        self.rt = rt
        self.tasks = tasks
        self.stopping = threading.Event()

    def tick(self, due: dict[str, float], now: float) -> None:
        """Run every task whose time has come and set its next time."""
        for task in self.tasks:
            if due.get(task.name, 0.0) > now:
                continue
            try:
                task.run(self.rt)
            except Exception:
                log.exception(
                    "periodic task %s failed; it runs again next time", task.name
                )
            due[task.name] = now + task.every

    def run(self) -> None:
        due: dict[str, float] = {}
        log.info("scheduler started with %s", ", ".join(t.name for t in self.tasks))
        while not self.stopping.is_set():
            now = time.monotonic()
            self.tick(due, now)
            self.stopping.wait(max(0.0, min(due.values()) - time.monotonic()))
        log.info("scheduler stopped")

    def stop(self, _signum: int = 0, _frame: FrameType | None = None) -> None:
        self.stopping.set()


def main() -> None:
    argparse.ArgumentParser(prog="python -m engine.scheduler").parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    rt = runtime.Runtime.from_settings(load_settings())
    runtime.install(rt)
    scheduler = Scheduler(rt, periodic_tasks())
    signal.signal(signal.SIGTERM, scheduler.stop)
    signal.signal(signal.SIGINT, scheduler.stop)
    try:
        scheduler.run()
    finally:
        rt.close()


if __name__ == "__main__":
    main()
