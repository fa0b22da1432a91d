"""Fault tests: real worker and scheduler processes, a Redis of their own (so it can be
restarted), the suite's SQL database, a recording channel on 127.0.0.1. Every wait is bounded."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from engine.db import Database
from engine.embedded_redis import EmbeddedRedis
from engine.models import Delivery, DeliveryStatus, Event, EventStatus
from engine.queues import connect
from tests.conftest import LOCAL_CHANNELS, make_settings


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/faults/" in str(item.path):
            item.add_marker(pytest.mark.faults)
            item.add_marker(pytest.mark.slow)


class Stack:
    """Worker and scheduler processes sharing one database and one restartable Redis."""

    def __init__(
        self,
        home: Path,
        database_url: str,
        extra_env: dict[str, str],
        redis_url: str | None = None,
    ) -> None:
        """`redis_url`: a Redis the test runs itself, instead of an embedded one."""
        self.redis_server = EmbeddedRedis(home / "redis")
        if redis_url is None:
            self.redis_server.start()
            redis_url = self.redis_server.url
        self.env = {
            **os.environ,
            "THROUGHLINE_HOME": str(home),
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            **LOCAL_CHANNELS,
            **extra_env,
        }
        self.settings = make_settings(home, database_url, redis_url, **extra_env)
        self.workers: list[subprocess.Popen[bytes]] = []
        self.scheduler: subprocess.Popen[bytes] | None = None
        self.others: list[subprocess.Popen[bytes]] = []
        self.revived: list[tuple[str, int | None]] = []  # (name, exit code) restarted
        self.logs = home / "logs"
        self.logs.mkdir(exist_ok=True)
        self.database = Database(database_url)
        self.redis = connect(redis_url)

    def _spawn(
        self, module: str, name: str, args: tuple[str, ...] = ()
    ) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"{name}.log", "ab")  # closed with the process
        process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        return process

    def start_workers(self, count: int) -> None:
        for _ in range(count):
            self.workers.append(
                self._spawn("engine.worker", f"worker-{len(self.workers)}")
            )

    def start_scheduler(self) -> None:
        self.scheduler = self._spawn("engine.scheduler", "scheduler")

    def spawn_scheduler(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """One more scheduler process, not restarted by `revive`."""
        process = self._spawn("engine.scheduler", name, args)
        self.others.append(process)
        return process

    def kill_worker(self, index: int) -> None:
        """kill -9 one worker and start another in its place."""
        self.workers[index].send_signal(signal.SIGKILL)
        self.workers[index].wait(10)
        self.workers[index] = self._spawn("engine.worker", f"worker-{index}")

    def revive(self) -> None:
        """Start again any worker that exited (as `throughline up` would)."""
        for index, worker in enumerate(self.workers):
            if worker.poll() is not None:
                self.revived.append((f"worker-{index}", worker.returncode))
                self.workers[index] = self._spawn("engine.worker", f"worker-{index}")
        if self.scheduler is not None and self.scheduler.poll() is not None:
            self.revived.append(("scheduler", self.scheduler.returncode))
            self.start_scheduler()

    def restart_redis(self, lose_everything: bool = True) -> None:
        """Stop Redis, optionally lose all it held, start it again."""
        self.redis_server.stop()
        if lose_everything:
            for path in self.redis_server.folder.glob("appendonly*"):
                if path.is_dir():
                    for inner in path.iterdir():
                        inner.unlink()
                else:
                    path.unlink()
        self.redis_server.start()

    def counts(self) -> dict[str, int]:
        with self.database.session() as session:
            events = dict(
                session.execute(
                    select(Event.status, func.count()).group_by(Event.status)
                ).all()
            )
            deliveries = dict(
                session.execute(
                    select(Delivery.status, func.count()).group_by(Delivery.status)
                ).all()
            )
        return {
            "pending_events": events.get(EventStatus.pending, 0),
            "processed_events": events.get(EventStatus.processed, 0),
            "failed_events": events.get(EventStatus.failed, 0),
            "delivered": deliveries.get(DeliveryStatus.delivered, 0),
            "pending_deliveries": deliveries.get(DeliveryStatus.pending, 0),
            "undelivered": sum(
                v
                for k, v in deliveries.items()
                if k not in {DeliveryStatus.delivered, DeliveryStatus.pending}
            ),
        }

    def wait_for(
        self,
        done: Callable[[dict[str, int]], bool],
        timeout: float,
        during: Callable[[], Any] | None = None,
    ) -> dict[str, int]:
        deadline = time.monotonic() + timeout
        counts = self.counts()
        while time.monotonic() < deadline:
            counts = self.counts()
            if done(counts):
                return counts
            if during:
                during()
            self.revive()
            time.sleep(0.25)
        raise AssertionError(
            f"not done within {timeout:.0f} s: {counts}; logs in {self.logs}"
        )

    def stop(self) -> None:
        processes = [
            *self.workers,
            *([self.scheduler] if self.scheduler else []),
            *self.others,
        ]
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.redis.close()
        self.database.dispose()
        self.redis_server.stop()


@pytest.fixture
def stack_factory(tmp_path: Path, database_url: str) -> Iterator[Callable[..., Stack]]:
    made: list[Stack] = []

    def build(redis_url: str | None = None, **extra_env: str) -> Stack:
        stack = Stack(
            tmp_path / f"stack{len(made)}", database_url, extra_env, redis_url
        )
        made.append(stack)
        return stack

    yield build
    for stack in made:
        stack.stop()
