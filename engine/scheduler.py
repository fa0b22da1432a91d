"""The scheduler process: runs the periodic work declared in `periodic_tasks`.

Any number of schedulers may run; one leads (engine.leadership) and only it works. Periods
are counted in slots since the epoch (slot = seconds // period), so every scheduler agrees on
which slot is due, and the housekeeping jobs a leader queues run at most once per slot.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from types import FrameType

from engine import heap, jobs, leadership, logs, runtime, tracing
from engine.execution import drains
from engine.queues import queue
from engine.settings import load_settings

log = logging.getLogger("throughline.scheduler")
HEARTBEAT_KEY = "throughline:scheduler:heartbeat"


@dataclass(frozen=True)
class Periodic:
    """Work done every `every` seconds: `run`, given the process runtime, in the scheduler
    itself, or with `run` None, the housekeeping job of the same name queued for a worker
    (`engine.jobs.HOUSEKEEPING`) with its slot and the leader's token."""

    name: str
    every: float
    run: Callable[[runtime.Runtime], object] | None = None


def beat(rt: runtime.Runtime) -> None:
    """Record that a scheduler is alive and leading (read by /metrics)."""
    rt.redis.set(HEARTBEAT_KEY, f"{time.time():.3f}", ex=300)


def periodic_tasks() -> list[Periodic]:
    """Everything the scheduler does, and how often."""
    return [
        Periodic("timers", 1, drains.sweep_timers),
        Periodic("recover", 2, drains.recover),
        Periodic("heartbeat", 5, beat),
        Periodic("expire_rotated_secrets", 60),
        Periodic("compact_counters", 300),
        Periodic("purge_schema_violations", 3600),
        Periodic("maintain_partitions", 3600),
    ]


HOUSEKEEPING_TIMEOUT = 600


class Scheduler:
    def __init__(
        self,
        rt: runtime.Runtime,
        tasks: list[Periodic],
        lease_seconds: float = 10.0,
    ) -> None:
        self.rt = rt
        self.tasks = tasks
        self.stopping = threading.Event()
        self.leadership = leadership.Leadership(rt.redis, lease_seconds)
        # The slot each task last ran in, while this process leads.
        self.ran: dict[str, int] = {}

    def tick(self, now: float, fence: int) -> None:
        """Run every task whose slot at `now` (seconds since the epoch) has not run yet."""
        for task in self.tasks:
            slot = int(now // task.every)
            if self.ran.get(task.name) == slot:
                continue
            self.ran[task.name] = slot
            try:
                if task.run is None:
                    queue("default", self.rt.redis).enqueue(
                        jobs.housekeeping,
                        task.name,
                        slot,
                        fence,
                        job_timeout=HOUSEKEEPING_TIMEOUT,
                    )
                else:
                    task.run(self.rt)
            except Exception:
                log.exception(
                    "periodic task %s failed; it runs again next time", task.name
                )

    def next_slot_in(self, now: float) -> float:
        """Seconds from `now` until the earliest task's next slot begins."""
        return min((now // t.every + 1) * t.every - now for t in self.tasks)

    def newest_fence(self) -> int | None:
        with self.rt.database.session() as session:
            return leadership.current_fence(session)

    def take_fence(self, holder: str) -> int:
        with self.rt.database.session(writer=True) as session:
            return leadership.next_fence(session, holder)

    def run(self) -> None:
        log.info(
            "scheduler %s started with %s",
            self.leadership.holder,
            ", ".join(t.name for t in self.tasks),
        )
        while not self.stopping.is_set():
            if time.monotonic() >= self.leadership.due():
                try:
                    self.leadership.poll(self.take_fence, self.newest_fence)
                except Exception:
                    log.exception("could not take a fencing token; not leading")
            fence = self.leadership.fence
            if fence is not None and self.leadership.leading():
                self.tick(time.time(), fence)
            else:
                self.ran.clear()  # on taking over, every task's current slot is due
            wait = self.leadership.due() - time.monotonic()
            if self.leadership.leading():
                wait = min(wait, self.next_slot_in(time.time()))
            self.stopping.wait(max(0.0, wait))
        self.leadership.release()
        log.info("scheduler stopped")

    def stop(self, _signum: int = 0, _frame: FrameType | None = None) -> None:
        self.stopping.set()


def with_periods(tasks: list[Periodic], overrides: Sequence[str]) -> list[Periodic]:
    """Apply `name=seconds` overrides of the tasks' periods."""
    by_name = {task.name: task for task in tasks}
    for override in overrides:
        name, _, seconds = override.partition("=")
        if name not in by_name:
            raise SystemExit(
                f"--every {override}: no periodic task is named {name!r}; "
                f"they are {', '.join(by_name)}"
            )
        try:
            every = float(seconds)
        except ValueError:
            every = 0.0
        if every <= 0:
            raise SystemExit(f"--every {override}: the period is a number of seconds")
        by_name[name] = replace(by_name[name], every=every)
    return list(by_name.values())


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m engine.scheduler")
    parser.add_argument(
        "--every",
        action="append",
        default=[],
        metavar="TASK=SECONDS",
        help="run a periodic task at another period than its own",
    )
    args = parser.parse_args(argv)
    logs.setup()
    tracing.configure("throughline-scheduler")
    settings = load_settings()
    rt = runtime.Runtime.from_settings(settings)
    runtime.install(rt)
    heap.freeze_startup()
    scheduler = Scheduler(
        rt,
        with_periods(periodic_tasks(), args.every),
        lease_seconds=settings.scheduler_lease_seconds,
    )
    signal.signal(signal.SIGTERM, scheduler.stop)
    signal.signal(signal.SIGINT, scheduler.stop)
    try:
        scheduler.run()
    finally:
        rt.close()


if __name__ == "__main__":
    main()
