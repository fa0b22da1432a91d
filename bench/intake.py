"""Intake benchmark: signed single events and batches against the web server.

    python bench/intake.py [--seconds 20] [--connections 32] [--processes 2]

Needs wrk (`apt-get install wrk`). Uses DATABASE_URL (default: a `throughline_bench`
database on the local PostgreSQL, dropped and created again) and REDIS_URL (default: database
15 of the local Redis server, flushed). Requests are signed beforehand, each with its own
`webhook-id`, and replayed by wrk; the load generator shares the machine's cores with the
server. After each run the events in SQL are counted against the 2xx answers.
"""

from __future__ import annotations

import argparse
import atexit
import json
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, Signer, machine, stack, web_channel  # noqa: E402
from engine.db import Database  # noqa: E402
from engine.models import Event  # noqa: E402

SCRIPT = ROOT / "bench" / "pool.lua"


def write_pool(
    prefix: Path,
    signer: Signer,
    threads: int,
    count: int,
    batch: int,
    tag: str,
) -> None:
    """`count` signed requests spread over one file per wrk thread."""
    at = datetime.now(UTC) + timedelta(seconds=30)  # inside the 5-minute tolerance
    files = [open(f"{prefix}.{t}", "w") for t in range(threads)]
    try:
        for n in range(count):
            if batch:
                body = json.dumps(
                    {
                        "events": [
                            {
                                "id": f"{tag}-{n}-{i}",
                                "type": "page_viewed",
                                "customer": {"id": f"c-{(n * batch + i) % 50_000}"},
                                "properties": {"path": "/pricing", "n": i},
                            }
                            for i in range(batch)
                        ]
                    },
                    separators=(",", ":"),
                )
            else:
                body = json.dumps(
                    {
                        "type": "page_viewed",
                        "customer": {"id": f"c-{n % 50_000}"},
                        "properties": {"path": "/pricing", "n": n},
                    },
                    separators=(",", ":"),
                )
            headers = signer.headers(body, f"{tag}-{n}", at)
            files[n % threads].write(
                f"{headers['webhook-id']}\t{headers['webhook-timestamp']}\t"
                f"{headers['webhook-signature']}\t{body}\n"
            )
    finally:
        for handle in files:
            handle.close()


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(
    url: str,
    path: str,
    prefix: Path,
    seconds: int,
    connections: int,
    threads: int,
    pause_ms: int = 0,
) -> dict[str, float]:
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "--timeout",
            "10s",
            "-s",
            str(SCRIPT),
            url,
            "--",
            str(prefix),
            path,
            str(pause_ms),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    figures: dict[str, float] = {}
    for label in ("50%", "90%", "99%"):
        found = re.search(rf"^\s+{re.escape(label)}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if found:
            figures[f"p{label[:-1]}"] = _ms(*found.groups())
    found = re.search(r"(\d+) requests in ([\d.]+)(s|m)", out)
    if not found:
        raise SystemExit(f"could not read wrk's output:\n{out}")
    figures["requests"] = int(found.group(1))
    figures["seconds"] = float(found.group(2)) * (60 if found.group(3) == "m" else 1)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    figures["non_2xx"] = int(bad.group(1)) if bad else 0
    errors = re.search(r"Socket errors: (.*)", out)
    figures["socket_errors"] = (
        sum(int(n) for n in re.findall(r"\d+", errors.group(1))) if errors else 0
    )
    return figures


def _count(session: Session, tag: str) -> int:
    """Events stored by one phase (its webhook ids start with `tag`)."""
    found = session.scalar(
        select(func.count()).select_from(Event).where(Event.webhook_id.like(f"{tag}%"))
    )
    return int(found or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--processes", type=int, default=2, help="web server processes")
    parser.add_argument(
        "--batch",
        type=int,
        default=500,
        help="events per batch (0: single events only)",
    )
    args = parser.parse_args()
    print(machine())
    with stack(THROUGHLINE_BACKLOG_LIMIT="100000000") as running:
        database = Database(running.settings.database_url)
        signer = web_channel(database, running.settings)
        running.start_web(args.processes)
        work = Path(tempfile.mkdtemp(prefix="throughline-pool-"))
        atexit.register(shutil.rmtree, work, True)  # hundreds of MB of signed requests
        threads = 2

        write_pool(work / "warm", signer, threads, 2_000, 0, "warm")
        run_wrk(running.url, "/hooks/web", work / "warm", 2, 4, threads)

        write_pool(work / "single", signer, threads, 8_000 * args.seconds, 0, "one")
        single = run_wrk(
            running.url,
            "/hooks/web",
            work / "single",
            args.seconds,
            args.connections,
            threads,
        )
        acked = single["requests"] - single["non_2xx"]
        with database.session() as session:
            stored = _count(session, "one-")
        print(
            f"single events: {acked / single['seconds']:,.0f} events/s acked and durable "
            f"({args.connections} connections, {args.seconds} s); ack p50 "
            f"{single['p50']:.1f} ms, p90 {single['p90']:.1f} ms, p99 {single['p99']:.1f} ms; "
            f"non-2xx {single['non_2xx']:.0f}, socket errors {single['socket_errors']:.0f}; "
            f"events in SQL {stored:,} for {acked:,.0f} acks"
        )

        if args.batch:
            _batches(running.url, database, signer, work, args.seconds, args.batch)
        memory = running.memory()
        print(f"peak RSS of the largest web process: {memory['web']:.0f} MB")
        database.dispose()


def _batches(
    url: str, database: Database, signer: Signer, work: Path, seconds: int, size: int
) -> None:
    """Batches of `size` events on 4 connections for `seconds`."""
    threads, connections = 2, 4
    write_pool(
        work / "batch",
        signer,
        threads,
        max(400, 200 * seconds),  # more than wrk sends: no id is replayed
        size,
        "many",
    )
    batches = run_wrk(
        url, "/hooks/web/batch", work / "batch", seconds, connections, threads
    )
    acked = batches["requests"] - batches["non_2xx"]
    with database.session() as session:
        stored = _count(session, "many-")
    print(
        f"batches of {size}: {acked * size / batches['seconds']:,.0f} "
        f"events/s acked and durable ({connections} connections); per batch p50 "
        f"{batches['p50']:.0f} ms, p99 {batches['p99']:.0f} ms; non-2xx "
        f"{batches['non_2xx']:.0f}; events in SQL {stored:,} for {acked * size:,.0f} acked"
    )


if __name__ == "__main__":
    main()
