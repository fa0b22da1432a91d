"""Scale-out: the same backlog applied and delivered by 1, 2 and 4 worker processes.

    python bench/scale_out.py [--events 10000] [--workers 1,2,4] [--partitions 8] [--repeat 1]

For each worker count, on a fresh database (DATABASE_URL and REDIS_URL as in
bench/end_to_end.py): the journey and channels of bench/end_to_end.py with its recording
channel, `--events` events stored straight into SQL across the partitions as intake stores
them, then the workers and the scheduler started. Timed from their start until every event is
processed and every delivery received, it prints events/s and the CPU each event cost the
workers (with the scheduler), PostgreSQL and Redis.

What it shows: CPU per event should stay flat as workers are added (no lock, claim or queue
contention that grows with them); events/s grows only while cores are free, so on a 2-core
machine 4 workers share the cores that 2 use.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    ROOT,
    cpu_seconds,
    free_port,
    machine,
    pids_named,
    stack,
)
from bench.end_to_end import set_up  # noqa: E402
from engine.crypto import SecretBox  # noqa: E402
from engine.db import Database  # noqa: E402
from engine.intake.contract import parse_event  # noqa: E402
from engine.intake.store import ToStore, store_events  # noqa: E402
from engine.models import Delivery, DeliveryStatus, Event, EventStatus  # noqa: E402
from engine.queues import connect  # noqa: E402


def store_backlog(
    database: Database, channel_id: int, events: int, partitions: int
) -> None:
    now = datetime.now(UTC)
    for first in range(0, events, 1000):
        items = []
        for n in range(first, min(first + 1000, events)):
            body = {
                "type": "order_completed",
                "customer": {"id": f"c-{n}"},
                "traits": {"first_name": "Ada"},
                "properties": {"total": 42, "sent_at": f"{time.time():.6f}"},
            }
            items.append(ToStore(f"e-{n}", body, parse_event(body)))
        with database.engine.begin() as connection:
            store_events(connection, channel_id, items, partitions, now)


def jobs_done(redis_url: str) -> int:
    """RQ jobs the workers have finished (each counts its own in Redis)."""
    client = connect(redis_url)
    try:
        return sum(
            int(client.hget(key, "successful_job_count") or 0)
            for key in client.smembers("rq:workers")
        )
    finally:
        client.close()


def used_so_far(name: str) -> float:
    """CPU seconds of the processes named `name`, those that ended included: an ended
    backend's time moves to the server's own process, so totals (not per process) compare."""
    return sum(cpu_seconds(pid, reaped=True) for pid in pids_named(name))


def done(database: Database, events: int) -> bool:
    with database.session() as session:
        processed = session.scalar(
            select(func.count()).where(Event.status == EventStatus.processed)
        )
        delivered = session.scalar(
            select(func.count()).where(Delivery.status == DeliveryStatus.delivered)
        )
    return processed == events and delivered == events


def run(workers: int, events: int, partitions: int) -> dict[str, Any]:
    with stack(
        THROUGHLINE_PARTITIONS=str(partitions),
        # the recording channel listens on this machine
        THROUGHLINE_OUTBOUND_ALLOWED_NETWORKS="127.0.0.1/32",
    ) as running:
        database = Database(running.settings.database_url)
        box = SecretBox(running.settings.encryption_key)
        port = free_port()
        out = tempfile.mkstemp(prefix="throughline-received-")[1]
        receiver = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "receiver.py"), str(port), out]
        )
        try:
            with database.session() as session:
                web, _ = set_up(session, box, running.settings, port)
                channel_id = web.channel.id
            store_backlog(database, channel_id, events, partitions)
            before = {name: used_so_far(name) for name in ("postgres", "redis-server")}
            started = time.monotonic()
            running.start_workers(workers)
            while not done(database, events):
                if time.monotonic() - started > 900:
                    raise SystemExit("not done within 15 minutes")
                time.sleep(0.5)
            seconds = time.monotonic() - started
            jobs = jobs_done(running.settings.redis_url)
            used = {
                "workers": sum(cpu_seconds(p.pid) for p in running.workers)
                + (cpu_seconds(running.scheduler.pid) if running.scheduler else 0.0),
                "PostgreSQL": used_so_far("postgres") - before["postgres"],
                "Redis": used_so_far("redis-server") - before["redis-server"],
            }
        finally:
            receiver.terminate()
            receiver.wait(10)
            database.dispose()
        ids = [json.loads(line)[0] for line in Path(out).read_text().splitlines()]
        Path(out).unlink()
    per_event = {name: value * 1000 / events for name, value in used.items()}
    return {
        "workers": workers,
        "events_per_s": events / seconds,
        "seconds": seconds,
        "cpu_ms": per_event,
        "cpu_ms_total": sum(per_event.values()),
        "jobs_per_100": jobs * 100 / events,
        "received": len(ids),
        "duplicates": len(ids) - len(set(ids)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(
        f"{args.events} events stored, then applied and delivered by N workers "
        f"({args.partitions} partitions); CPU in ms per event"
    )
    print(
        "| workers | events/s | workers' CPU | PostgreSQL | Redis | total "
        "| jobs per 100 events | received, duplicates |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for workers in [int(w) for w in args.workers.split(",")]:
        runs = [run(workers, args.events, args.partitions) for _ in range(args.repeat)]
        middle = sorted(runs, key=lambda r: r["cpu_ms_total"])[len(runs) // 2]
        rates = [r["events_per_s"] for r in runs]
        print(
            f"| {workers} | {statistics.median(rates):,.0f} "
            f"| {middle['cpu_ms']['workers']:.2f} | {middle['cpu_ms']['PostgreSQL']:.2f} "
            f"| {middle['cpu_ms']['Redis']:.2f} | {middle['cpu_ms_total']:.2f} "
            f"| {middle['jobs_per_100']:.1f} "
            f"| {middle['received']:,}, {middle['duplicates']} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
