"""`throughline up` as an operator runs it: a real web server (granian), workers, scheduler, Redis."""

import http.cookiejar
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid):
    out = subprocess.run(
        ["ps", "-ww", "-o", "pid=,args=", "--ppid", str(pid)],
        capture_output=True,
        text=True,
    )
    return {int(line.split()[0]): line for line in out.stdout.strip().splitlines()}


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = (
        Path(f"/proc/{pid}/stat").read_text().split()[2]
        if Path(f"/proc/{pid}/stat").exists()
        else "X"
    )
    return state != "Z"


@pytest.mark.slow
def test_up_serves_signs_in_and_stops_everything(tmp_path, database_url):
    port = _free_port()
    env = {
        k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}
    }
    env.update(THROUGHLINE_HOME=str(tmp_path / "home"), DATABASE_URL=database_url)
    launcher = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "webapp.cli",
            "up",
            "--port",
            str(port),
            "--workers",
            "2",
            "--demo",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        lines, deadline = [], time.monotonic() + 90
        while time.monotonic() < deadline:
            line = launcher.stdout.readline()
            lines.append(line)
            if line.startswith("Running ") or launcher.poll() is not None:
                break
        text = "".join(lines)
        assert f"Throughline is up at http://127.0.0.1:{port}/" in text, text
        email, password = re.search(
            r"Sign in as (\S+) with password (\S+)", text
        ).groups()

        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{base}/healthz", timeout=5) as health:
            assert health.status == 200
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        with opener.open(f"{base}/login", timeout=5) as answer:
            login_page = answer.read().decode()
        token = re.search(r'name="csrf-token" content="([^"]+)"', login_page).group(1)
        form = urllib.parse.urlencode(
            {"email": email, "password": password, "csrf_token": token}
        )
        with opener.open(f"{base}/login", data=form.encode(), timeout=10) as answer:
            journeys = answer.read().decode()
        assert "Cart recovery" in journeys  # signed in, demo data loaded

        children = _children(launcher.pid)
        kinds = " ".join(children.values())
        assert kinds.count("engine.worker") == 2
        assert (
            "engine.scheduler" in kinds
            and "webapp.serve" in kinds
            and "redis-server" in kinds
        )
        grandchildren = [
            p for pid in children for p in _children(pid)
        ]  # the web server's workers
        assert len(grandchildren) == 2, children

        launcher.send_signal(signal.SIGTERM)
        assert launcher.wait(timeout=40) == 0
        for pid in [*children, *grandchildren]:
            deadline = time.monotonic() + 10
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not _alive(pid), f"{children.get(pid, pid)} outlived the launcher"
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
        launcher.stdout.close()
