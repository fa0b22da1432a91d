"""`throughline up`: start web, workers and scheduler, watch them, stop them all together."""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType

from engine.embedded_redis import EmbeddedRedis
from engine.settings import Settings

PR_SET_PDEATHSIG = 1
MAX_RESTARTS = 5
RESTART_WINDOW = 60.0


def die_with_parent() -> None:
    """In the child: get SIGTERM if the launcher dies, even by kill -9 (Linux only)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def web_command(host: str, port: int, processes: int = 2) -> list[str]:
    """The web server (webapp.serve): granian serving the Flask app."""
    return [
        sys.executable, "-m", "webapp.serve",
        "--host", host,
        "--port", str(port),
        "--processes", str(processes),
    ]  # fmt: skip


@dataclass
class Child:
    name: str
    command: list[str]
    process: subprocess.Popen[bytes] | None = None
    restarts: list[float] = field(default_factory=list)

    def start(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            self.command, env=env, start_new_session=True, preexec_fn=die_with_parent
        )

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Supervisor:
    """Keeps its children running until told to stop; a crashing child is restarted."""

    def __init__(
        self, children: list[Child], env: dict[str, str], log: Callable[[str], None]
    ):
        self.children = children
        self.env = env
        self.log = log
        self.stopping = False

    def request_stop(self, signum: int, _frame: FrameType | None = None) -> None:
        if not self.stopping:
            self.log(f"received {signal.Signals(signum).name}, stopping every process")
        self.stopping = True

    def start_all(self) -> None:
        for child in self.children:
            child.start(self.env)

    def watch(self) -> int:
        """Block until a stop is requested or a child keeps crashing; returns the exit code."""
        while not self.stopping:
            for child in self.children:
                if child.alive or self.stopping:
                    continue
                code = child.process.returncode if child.process else None
                now = time.monotonic()
                child.restarts = [t for t in child.restarts if now - t < RESTART_WINDOW]
                if len(child.restarts) >= MAX_RESTARTS:
                    self.log(
                        f"{child.name} exited {MAX_RESTARTS} times in a minute; giving up"
                    )
                    self.stop_all()
                    return 1
                self.log(f"{child.name} exited with code {code}; restarting it")
                child.restarts.append(now)
                child.start(self.env)
            time.sleep(0.2)
        self.stop_all()
        return 0

    def stop_all(self, timeout: float = 15.0) -> None:
        for child in self.children:
            if child.alive and child.process:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in self.children:
            if child.process is None:
                continue
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.log(f"{child.name} did not stop in {timeout:.0f} s; killing it")
                child.process.kill()
                child.process.wait()


@contextmanager
def embedded_redis(settings: Settings, log: Callable[[str], None]) -> Iterator[None]:
    """Run the embedded redis-server for the duration, unless REDIS_URL names another or
    another process already serves it."""
    if not settings.embedded_redis:
        yield
        return
    server = EmbeddedRedis(settings.redis_socket.parent)
    if server.running_elsewhere():
        yield
        return
    server.start()
    log(f"embedded Redis started on {server.socket}")
    try:
        yield
    finally:
        server.stop()
        log("embedded Redis stopped")


def wait_until_ready(
    host: str, port: int, alive: Callable[[], bool], timeout: float = 90.0
) -> bool:
    """True once the web server answers /healthz with 200 (its workers have booted)."""
    target = (
        "127.0.0.1" if host in {"0.0.0.0", ""} else ("::1" if host == "::" else host)
    )
    url = f"http://{f'[{target}]' if ':' in target else target}:{port}/healthz"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                if answer.status == 200:
                    return True
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.2)
    return False


def child_environment(settings: Settings) -> dict[str, str]:
    """The environment every child gets: the same home, and a shared metrics folder."""
    env = dict(os.environ)
    env["THROUGHLINE_HOME"] = str(settings.home)
    metrics = settings.home / "metrics"
    shutil.rmtree(metrics, ignore_errors=True)
    metrics.mkdir(parents=True)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)
    return env


def install_signal_handlers(handler: Callable[[int, FrameType | None], None]) -> None:
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
