"""Servers a test starts for itself: PgBouncer in front of the suite's PostgreSQL."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import make_url

PGBOUNCER = "/usr/sbin/pgbouncer"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing answered on {host}:{port} within {timeout:.0f} s")


@contextmanager
def pgbouncer(database_url: str, pool_size: int = 2) -> Iterator[str]:
    """PgBouncer in transaction mode in front of `database_url`'s server; yields the URL
    of the same database through it. It refuses to run as root, so it runs as the owner of
    the PostgreSQL server when the suite runs as root."""
    assert Path(PGBOUNCER).exists(), f"{PGBOUNCER} is missing: `make setup` installs it"
    target = make_url(database_url)
    folder = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    port = free_port()
    user = target.username or "postgres"
    (folder / "users.txt").write_text(f'"{user}" ""\n')
    (folder / "pgbouncer.ini").write_text(
        f"""[databases]
* = host={target.host or "127.0.0.1"} port={target.port or 5432}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {folder / "users.txt"}
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = 500
logfile = {folder / "pgbouncer.log"}
pidfile = {folder / "pgbouncer.pid"}
"""
    )
    command = [PGBOUNCER, str(folder / "pgbouncer.ini")]
    if os.geteuid() == 0:
        os.chmod(folder, 0o755)
        shutil.chown(folder, "postgres")
        for path in folder.iterdir():
            shutil.chown(path, "postgres")
        command[1:1] = ["-u", "postgres"]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_port("127.0.0.1", port)
        yield target.set(host="127.0.0.1", port=port).render_as_string(
            hide_password=False
        )
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(folder, ignore_errors=True)
