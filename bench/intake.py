"""Intake benchmark: signed single events and batches against gunicorn, printed as figures.

    DATABASE_URL=postgresql://postgres@127.0.0.1/throughline_bench \\
    REDIS_URL=redis://127.0.0.1:6379/15 python bench/intake.py [--seconds 15] [--connections 32]

Creates (again) the database named in DATABASE_URL, starts `throughline web`, posts from
threads on the same machine (so client and server share its cores), and prints events/s and
ack latency percentiles. Only loopback addresses are used.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime

import httpx
from sqlalchemy import make_url, text
from standardwebhooks.webhooks import Webhook

from engine.channels import create_channel
from engine.crypto import SecretBox
from engine.db import Database, create_db_engine
from engine.migrate import upgrade
from engine.settings import load_settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


def signed(secret: str, body: str, webhook_id: str) -> dict[str, str]:
    now = datetime.now(UTC)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(webhook_id, now, body),
        "content-type": "application/json",
    }


def hammer(
    url: str, secret: str, seconds: float, connections: int, batch: int
) -> tuple[int, list[float]]:
    latencies: list[float] = []
    sent = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def loop(worker: int) -> None:
        n = 0
        with httpx.Client(base_url=url, timeout=10) as client:
            while time.monotonic() < stop:
                n += 1
                if batch:
                    events = [
                        {
                            "id": f"{worker}-{n}-{i}",
                            "type": "viewed",
                            "customer": {"id": f"c-{worker}-{n}-{i}"},
                            "properties": {"n": i},
                        }
                        for i in range(batch)
                    ]
                    body, path = json.dumps({"events": events}), "/hooks/web/batch"
                else:
                    body, path = (
                        json.dumps(
                            {
                                "type": "viewed",
                                "customer": {"id": f"c-{worker}-{n}"},
                                "properties": {"n": n},
                            }
                        ),
                        "/hooks/web",
                    )
                started = time.perf_counter()
                response = client.post(
                    path, content=body, headers=signed(secret, body, f"w{worker}-{n}")
                )
                elapsed = time.perf_counter() - started
                if response.status_code not in (200, 202):
                    raise SystemExit(
                        f"unexpected answer {response.status_code}: {response.text[:200]}"
                    )
                with lock:
                    latencies.append(elapsed)
                    sent[0] += batch or 1

    threads = [threading.Thread(target=loop, args=(w,)) for w in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sent[0], latencies


def percentile(values: list[float], q: float) -> float:
    return (
        statistics.quantiles(values, n=1000)[int(q * 1000) - 1]
        if len(values) > 10
        else max(values)
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    database_url = os.environ.get(
        "DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/throughline_bench"
    )
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")
    home = tempfile.mkdtemp(prefix="throughline-bench-")
    env = {
        **os.environ,
        "THROUGHLINE_HOME": home,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "THROUGHLINE_BACKLOG_LIMIT": "100000000",
    }
    fresh_database(database_url)
    settings = load_settings(env)
    upgrade(settings.database_url)
    database = Database(settings.database_url)
    with database.session() as session:
        secret = create_channel(
            session,
            SecretBox(settings.encryption_key),
            "web",
            "Web",
            "web",
            rate_limit=1_000_000,
        ).inbound_secret
    database.dispose()
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    port = free_port()
    web = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "webapp.cli",
            "web",
            "--port",
            str(port),
            "--processes",
            str(args.processes),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                httpx.get(f"{url}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        hammer(url, secret, 2, 4, 0)  # warm up
        for label, batch in (("single", 0), ("batch of 500", 500)):
            connections = args.connections if not batch else 4
            count, latencies = hammer(url, secret, args.seconds, connections, batch)
            print(
                f"{label:>13}: {count / args.seconds:8.0f} events/s acked and durable over {args.seconds:.0f} s, "
                f"{connections} connections; ack p50 {percentile(latencies, 0.5) * 1000:.1f} ms, "
                f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms ({len(latencies)} requests)"
            )
    finally:
        web.terminate()
        web.wait(20)


if __name__ == "__main__":
    main()
