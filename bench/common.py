"""What the benchmarks share: a fresh PostgreSQL database, the product's processes, signing,
percentiles and memory readings. Everything listens on loopback only."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import redis
from sqlalchemy import make_url, text
from standardwebhooks.webhooks import Webhook

from engine.db import create_db_engine
from engine.migrate import upgrade
from engine.settings import Settings, load_settings
from webapp.launcher import web_command

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/throughline_bench"
DEFAULT_REDIS = "redis://127.0.0.1:6379/15"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def machine() -> str:
    """One line describing where the figures come from."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown CPU",
    )
    memory = int(Path("/proc/meminfo").read_text().split()[1]) // (1024 * 1024)
    versions = subprocess.run(
        ["psql", "--version"], capture_output=True, text=True
    ).stdout.strip()
    return f"{os.cpu_count()} cores ({cpu}), {memory} GiB, Python {sys.version.split()[0]}, {versions}"


def fresh_database(url: str) -> None:
    parsed = make_url(url).set(drivername="postgresql+psycopg")
    admin = create_db_engine(
        parsed.set(database="postgres").render_as_string(hide_password=False),
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as connection:
        connection.execute(
            text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
        )
        connection.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()


class Signer:
    """Signs bodies as a channel would (Standard Webhooks)."""

    def __init__(self, secret: str) -> None:
        self.webhook = Webhook(secret)

    def headers(
        self, body: str, webhook_id: str, at: datetime | None = None
    ) -> dict[str, str]:
        at = at or datetime.now(UTC)
        return {
            "webhook-id": webhook_id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": self.webhook.sign(webhook_id, at, body),
            "content-type": "application/json",
        }


def web_channel(database: Any, settings: Settings) -> Signer:
    """Create the `web` channel every intake benchmark posts to; a signer with its secret."""
    from engine.channels import create_channel
    from engine.crypto import SecretBox

    with database.session() as session:
        secret = create_channel(
            session,
            SecretBox(settings.encryption_key),
            "web",
            "Web",
            "web",
            rate_limit=100_000,
        ).inbound_secret
        session.commit()
    return Signer(secret)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) < 10:
        return max(values)
    return statistics.quantiles(values, n=1000, method="inclusive")[
        min(998, int(q * 1000) - 1)
    ]


def peak_rss_mb(pid: int) -> float:
    """The peak resident set (VmHWM) of a live process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int, reaped: bool = False) -> float:
    """User and system CPU time a process has used so far (0 if it is gone); with `reaped`,
    also that of its children that have ended and been waited for."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    used = int(fields[11]) + int(fields[12])
    if reaped:
        used += int(fields[13]) + int(fields[14])
    return used / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU time all cores have spent on anything but idling and waiting for the disk so far
    (/proc/stat): every process, the load generator and the channel included."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = map(int, fields[:7])
    busy = user + nice + system + irq + softirq
    return busy / os.sysconf("SC_CLK_TCK")


def pids_named(name: str) -> list[int]:
    """Live processes whose command name is `name` (postgres, redis-server)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def children(pid: int) -> list[int]:
    out = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True
    ).stdout
    return [int(p) for p in out.split()]


@dataclass
class Stack:
    """The product's processes on a fresh database: web (granian), workers, scheduler."""

    settings: Settings
    env: dict[str, str]
    url: str = ""
    web: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    scheduler: subprocess.Popen[bytes] | None = None

    def start_web(self, processes: int = 2) -> None:
        port = free_port()
        self.web = subprocess.Popen(
            web_command("127.0.0.1", port, processes),
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise SystemExit("the web server did not start")

    def start_workers(self, count: int, scheduler: bool = True) -> None:
        for _ in range(count):
            self.workers.append(self._python("engine.worker"))
        if scheduler:
            self.scheduler = self._python("engine.scheduler")

    def _python(self, module: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", module],
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def web_pids(self) -> list[int]:
        return children(self.web.pid) if self.web else []

    def cpu(self) -> dict[str, float]:
        """CPU seconds used so far by each part of the product and by its services, and by
        the whole machine (the load generator and the channel included)."""
        web = [self.web.pid, *self.web_pids()] if self.web else []
        return {
            "web": sum(cpu_seconds(p) for p in web),
            "workers": sum(cpu_seconds(p.pid) for p in self.workers),
            "scheduler": cpu_seconds(self.scheduler.pid) if self.scheduler else 0.0,
            # The server's own process waits for each backend that ends: with its children's
            # time, backends closed during a run still count.
            "PostgreSQL": sum(
                cpu_seconds(p, reaped=True) for p in pids_named("postgres")
            ),
            "Redis": sum(cpu_seconds(p) for p in pids_named("redis-server")),
            "machine": machine_busy_seconds(),
        }

    def memory(self) -> dict[str, float]:
        """Peak RSS in MB of the largest web process and the largest worker so far."""
        web = [peak_rss_mb(p) for p in self.web_pids()]
        workers = [peak_rss_mb(p.pid) for p in self.workers if p.poll() is None]
        return {
            "web": max(web, default=float("nan")),
            "worker": max(workers, default=float("nan")),
        }

    def stop(self) -> None:
        processes = [p for p in [self.web, self.scheduler, *self.workers] if p]
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()


@contextmanager
def _alone(database_url: str) -> Iterator[None]:
    """Hold the benchmark database for this process: a second benchmark would drop it under
    the first one's processes, which would go on writing into the new one's figures."""
    name = hashlib.sha256(database_url.encode()).hexdigest()[:12]
    with (Path(tempfile.gettempdir()) / f"throughline-bench-{name}.lock").open(
        "w"
    ) as held:
        try:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            database = make_url(database_url).database
            raise SystemExit(
                f"another benchmark is using the database {database}; run one at a time"
            ) from None
        yield


@contextmanager
def stack(**extra_env: str) -> Iterator[Stack]:
    """A fresh database and Redis database, migrated, with the product's environment; one
    benchmark at a time per database."""
    database_url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE)
    with _alone(database_url):
        yield from _stack(database_url, extra_env)


def _stack(database_url: str, extra_env: dict[str, str]) -> Iterator[Stack]:
    redis_url = os.environ.get("REDIS_URL", DEFAULT_REDIS)
    home = tempfile.mkdtemp(prefix="throughline-bench-")
    metrics = Path(home) / "metrics"
    metrics.mkdir()
    env = {
        **os.environ,
        "THROUGHLINE_HOME": home,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
        "PYTHONPATH": str(ROOT),
        **extra_env,
    }
    fresh_database(database_url)
    redis.Redis.from_url(redis_url).flushdb()
    settings = load_settings(env)
    upgrade(settings.database_url)
    running = Stack(settings, env)
    try:
        yield running
    finally:
        running.stop()
        shutil.rmtree(home, ignore_errors=True)
