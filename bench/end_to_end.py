"""End-to-end benchmark: event posted -> trigger -> condition -> send -> channel received.

    python bench/end_to_end.py [--rates 100,300,1000,max] [--seconds 20] [--workers 2]
                               [--repeat 1] [--warmup 5] [--json PATH]

Uses DATABASE_URL and REDIS_URL like bench/intake.py (a fresh `throughline_bench` database
and Redis database 15 by default). Starts the web server, the RQ workers and the scheduler, and a
recording channel (bench/receiver.py). Events are posted open-loop at a fixed rate: event i
is due at t0 + i/rate and carries that time, so a slow answer or a full connection pool
counts against latency instead of lowering the rate. The message sent to the channel carries
the posting time back; latency is arrival at the channel minus that time.

Each run follows a warm-up at 100 events/s (--warmup seconds, 5 by default) whose figures are
not reported: a fresh process's first events pay for its connections, prepared statements and
caches, which a running installation paid for long ago.

"max" offers more than the machine can process and reports the delivery rate it sustains
once the backlog has built up (deliveries arriving per second after the first quarter, while
intake still takes its share of the cores) and the rate overall (every event delivered,
divided by the time from the first post to the last arrival).
Each run then waits for the backlog to drain and counts events lost (acked but never
processed) and duplicate deliveries (the same delivery id received twice with a 200), and
prints the CPU time web, workers, scheduler, PostgreSQL and Redis used per event delivered,
and the whole machine's (the load generator and the channel included).

--json PATH also writes the figures as JSON: {"benchmark", "machine", "args", "records"}, with
one record per run ("kind": "run", "repeat": its index) and, per rate, one with the median of
its runs ("kind": "median", "runs": how many). Every record has "rate" (the number offered, or
"max"), "accepted", "lost", "duplicates", "p50_ms" and "p99_ms"; for "max" also
"overall_events_per_s". The file is written again after each rate, so an interrupted run keeps
the rates it finished.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    ROOT,
    Signer,
    free_port,
    machine,
    percentile,
    stack,
)
from engine.channels import NewChannel, create_channel  # noqa: E402
from engine.crypto import SecretBox  # noqa: E402
from engine.db import Database  # noqa: E402
from engine.journeys import lifecycle
from engine.models import Delivery, Event, EventStatus  # noqa: E402

JOURNEY = {
    "schema": "throughline.journey/v1",
    "name": "Order thanks",
    "entry": {"reentry": "always", "max_entries": None},
    "nodes": [
        {"id": "start", "type": "trigger", "config": {"event": "order_completed"}},
        {
            "id": "big",
            "type": "condition",
            "config": {
                "rule": {"field": "event.properties.total", "op": "gte", "value": 10}
            },
        },
        {
            "id": "thanks",
            "type": "send",
            "config": {
                "channel": "email",
                "message": {
                    "subject": "Thanks {{ customer.traits.first_name }}",
                    "sent_at": "{{ event.properties.sent_at }}",
                },
            },
        },
        {"id": "end", "type": "exit", "config": {}},
    ],
    "edges": [
        {"from": "start", "to": "big"},
        {"from": "big", "port": "true", "to": "thanks"},
        {"from": "big", "port": "false", "to": "end"},
        {"from": "thanks", "to": "end"},
    ],
}


def requests(
    signer: Signer, rate: float, seconds: float, t0: float, tag: str
) -> list[tuple[float, bytes]]:
    """Every request of a run, signed, with the time it is due."""
    out = []
    stamp = datetime.now(UTC) + timedelta(seconds=10)
    for n in range(int(rate * seconds)):
        due = t0 + n / rate
        body = json.dumps(
            {
                "type": "order_completed",
                "customer": {"id": f"{tag}-c{n % 20_000}"},
                "traits": {"first_name": "Ada"},
                "properties": {"total": 42, "sent_at": f"{due:.6f}"},
            },
            separators=(",", ":"),
        )
        headers = signer.headers(body, f"{tag}-{n}", stamp)
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        raw = (
            f"POST /hooks/web HTTP/1.1\r\nhost: bench\r\ncontent-length: {len(body)}\r\n"
            f"{head}\r\n{body}"
        ).encode()
        out.append((due, raw))
    return out


async def post_all(
    port: int, planned: list[tuple[float, bytes]], connections: int
) -> tuple[list[float], dict[int, int]]:
    """Send each request when it is due on the first free keep-alive connection."""
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
        asyncio.Queue()
    )
    for _ in range(connections):
        pool.put_nowait(await asyncio.open_connection("127.0.0.1", port))
    acks: list[float] = []
    statuses: dict[int, int] = {}
    tasks = set()

    async def one(due: float, raw: bytes) -> None:
        reader, writer = await pool.get()
        writer.write(raw)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await reader.readexactly(length)
        acks.append(time.time() - due)
        statuses[status] = statuses.get(status, 0) + 1
        pool.put_nowait((reader, writer))

    for due, raw in planned:
        wait = due - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        task = asyncio.create_task(one(due, raw))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    while tasks:
        await asyncio.gather(*list(tasks))
    while not pool.empty():
        pool.get_nowait()[1].close()
    return acks, statuses


def pending(database: Database) -> tuple[int, int]:
    with database.session() as session:
        events = session.scalar(
            select(func.count())
            .select_from(Event)
            .where(Event.status == EventStatus.pending)
        )
        deliveries = session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(Delivery.status == "pending")
        )
    return int(events or 0), int(deliveries or 0)


def set_up(
    session: Any, box: SecretBox, settings: Any, channel_port: int
) -> tuple[NewChannel, NewChannel]:
    """The `web` channel events come from, the `email` channel (a recording channel on
    `channel_port`) and the journey between them, published; the caller commits."""
    web = create_channel(session, box, "web", "Web", "web", rate_limit=100_000)
    email = create_channel(
        session,
        box,
        "email",
        "Email",
        "email",
        outbound_url=f"http://127.0.0.1:{channel_port}/actions",
        rate_limit=100_000,
        allowed_networks=settings.outbound_allowed_networks,
    )
    ctx = lifecycle.check_context(session)
    journey, _ = lifecycle.create_journey(session, JOURNEY, ctx, None)
    lifecycle.publish(session, journey, ctx, None)
    return web, email


def run_once(
    running, database: Database, signer: Signer, rate: float, seconds: float, tag: str
) -> dict[str, Any]:
    out = Path(tempfile.mkstemp(prefix="throughline-received-")[1])
    channel_port = running.channel_port
    receiver = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "bench" / "receiver.py"),
            str(channel_port),
            str(out),
        ]
    )
    time.sleep(0.5)
    t0 = time.time() + 3
    planned = requests(signer, rate, seconds, t0, tag)
    cpu_before = running.cpu()
    acks, statuses = asyncio.run(
        post_all(int(running.url.rsplit(":", 1)[1]), planned, 32)
    )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and any(pending(database)):
        time.sleep(0.5)
    cpu_after = running.cpu()
    time.sleep(1)
    receiver.terminate()
    receiver.wait(10)
    seen = [json.loads(line) for line in out.read_text().splitlines()]
    out.unlink()
    accepted = statuses.get(202, 0) + statuses.get(200, 0)
    with database.session() as session:
        stored = session.scalar(
            select(func.count())
            .select_from(Event)
            .where(Event.webhook_id.like(f"{tag}-%"))
        )
        processed = session.scalar(
            select(func.count())
            .select_from(Event)
            .where(
                Event.webhook_id.like(f"{tag}-%"),
                Event.status == EventStatus.processed,
            )
        )
    ids = [row[0] for row in seen]
    latencies = [row[2] - row[1] for row in seen]
    last = max((row[2] for row in seen), default=t0)
    settled = [row[2] for row in seen if row[2] >= t0 + seconds / 4]
    window = max(0.001, min(last, t0 + seconds) - (t0 + seconds / 4))
    return {
        "offered": len(planned) / seconds,
        "accepted": accepted,
        "refused": sum(n for s, n in statuses.items() if s not in (200, 202)),
        "stored": int(stored or 0),
        "processed": int(processed or 0),
        "received": len(set(ids)),
        "duplicates": len(ids) - len(set(ids)),
        "ack_p99": percentile(acks, 0.99) * 1000,
        "p50": percentile(latencies, 0.5) * 1000,
        "p99": percentile(latencies, 0.99) * 1000,
        "sustained": len([t for t in settled if t <= t0 + seconds]) / window,
        "drained_after": last - (t0 + seconds),
        # Everything posted, applied and delivered, from the first post to the last arrival.
        "overall": len(set(ids)) / max(0.001, last - t0),
        "overall_seconds": last - t0,
        "cpu_ms": {  # per event applied and delivered, from the first post to the last
            part: 1000 * (cpu_after[part] - cpu_before[part]) / max(1, len(set(ids)))
            for part in cpu_before
        },
    }


def run_rate(
    running,
    database: Database,
    signer: Signer,
    label: str,
    rate: float,
    seconds: float,
    n: int,
) -> dict[str, Any]:
    """One run at `rate`, printed; the n-th of its repeats (each with its own webhook ids)."""
    figures = run_once(
        running, database, signer, rate, seconds, f"r{label}" + (f"-{n}" if n else "")
    )
    lost = figures["accepted"] - figures["processed"]
    line = (
        f"{label:>5} ev/s offered {figures['offered']:,.0f}: accepted "
        f"{figures['accepted']:,.0f}, refused {figures['refused']:,.0f}, lost {lost:,.0f}, "
        f"received {figures['received']:,.0f}, duplicates {figures['duplicates']:,.0f}; "
        f"e2e p50 {figures['p50']:,.0f} ms, p99 {figures['p99']:,.0f} ms; ack p99 "
        f"{figures['ack_p99']:,.1f} ms"
    )
    if label == "max":
        line += (
            f"; sustained {figures['sustained']:,.0f} deliveries/s, backlog "
            f"drained {figures['drained_after']:,.1f} s after the last post; "
            f"all delivered {figures['overall_seconds']:,.1f} s after the first "
            f"post, {figures['overall']:,.0f} events/s overall"
        )
    print(line, flush=True)
    print_cpu(figures["cpu_ms"])
    return figures


def spread(runs: list[dict[str, Any]], overall: bool) -> str:
    """Median and range over repeated runs: one run at a near-saturating rate says little."""

    def one(name: str, key: str, unit: str) -> str:
        values = sorted(run[key] for run in runs)
        return (
            f"{name} median {statistics.median(values):,.0f}{unit} "
            f"({values[0]:,.0f}-{values[-1]:,.0f})"
        )

    parts = [one("e2e p50", "p50", " ms"), one("p99", "p99", " ms")]
    if overall:
        parts.append(one("overall", "overall", " events/s"))
    cpu = {
        part: statistics.median(run["cpu_ms"][part] for run in runs)
        for part in runs[0]["cpu_ms"]
    }
    return (
        "; ".join(parts)
        + "; median CPU per event: "
        + ", ".join(f"{k} {v:.2f} ms" for k, v in cpu.items())
    )


def rate_value(label: str) -> float | int | str:
    """A rate as JSON records hold it: "max", or the number (whole when it is)."""
    if label == "max":
        return label
    rate = float(label)
    return int(rate) if rate.is_integer() else rate


def print_cpu(cpu_ms: dict[str, float]) -> None:
    print(
        "        CPU per event: "
        + ", ".join(f"{k} {v:.2f} ms" for k, v in cpu_ms.items()),
        flush=True,
    )


def record(label: str, figures: dict[str, Any], n: int) -> dict[str, Any]:
    """One run as a JSON record."""
    rate = rate_value(label)
    out: dict[str, Any] = {
        "kind": "run",
        "rate": rate,
        "repeat": n,
        "accepted": figures["accepted"],
        "lost": figures["accepted"] - figures["processed"],
        "duplicates": figures["duplicates"],
        "p50_ms": figures["p50"],
        "p99_ms": figures["p99"],
        "offered_per_s": figures["offered"],
        "refused": figures["refused"],
        "received": figures["received"],
        "ack_p99_ms": figures["ack_p99"],
        "cpu_ms_per_event": figures["cpu_ms"],
    }
    if label == "max":
        out["overall_events_per_s"] = figures["overall"]
        out["overall_seconds"] = figures["overall_seconds"]
        out["sustained_per_s"] = figures["sustained"]
        out["drained_after_s"] = figures["drained_after"]
    return out


def finite(value: Any) -> Any:
    """`value` with NaN (a percentile of no deliveries) as null, which JSON can carry."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


def median_record(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of each figure over the runs of one rate; lost and duplicates also summed.
    Words (not figures) are taken from the first run."""
    out: dict[str, Any] = {"kind": "median", "rate": runs[0]["rate"], "runs": len(runs)}
    for key, value in runs[0].items():
        if key in ("kind", "rate", "repeat"):
            continue
        if isinstance(value, str):
            out[key] = value
        elif isinstance(value, dict):
            out[key] = {
                part: statistics.median(run[key][part] for run in runs)
                for part in value
            }
        else:
            out[key] = statistics.median(run[key] for run in runs)
    out["lost_total"] = sum(run["lost"] for run in runs)
    out["duplicates_total"] = sum(run["duplicates"] for run in runs)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="100,300,1000,max")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--processes", type=int, default=2, help="web server processes")
    parser.add_argument("--max-rate", type=float, default=3000)
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs of each rate; with more than one, the median and range are printed too",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=5,
        help="seconds at 100 events/s before the measured rates, not reported (0: none)",
    )
    parser.add_argument(
        "--json",
        metavar="PATH",
        help="also write every run and the median per rate as JSON to PATH",
    )
    args = parser.parse_args()
    described = machine()
    print(described)
    records: list[dict[str, Any]] = []

    def write_json(memory: dict[str, float] | None = None) -> None:
        if args.json:
            document = {
                "benchmark": "end_to_end",
                "machine": described,
                "args": vars(args),
                "records": records,
                "peak_rss_mb": memory,
            }
            Path(args.json).write_text(json.dumps(finite(document), indent=1) + "\n")

    with stack(
        THROUGHLINE_BACKLOG_LIMIT="100000000",
        # the receiver listens on this machine
        THROUGHLINE_OUTBOUND_ALLOWED_NETWORKS="127.0.0.1/32",
    ) as running:
        running.channel_port = free_port()
        database = Database(running.settings.database_url)
        box = SecretBox(running.settings.encryption_key)
        with database.session() as session:
            web, _ = set_up(session, box, running.settings, running.channel_port)
            secret = web.inbound_secret
            session.commit()
        running.start_web(args.processes)
        running.start_workers(args.workers)
        signer = Signer(secret)
        print(
            f"{args.processes} web processes, {args.workers} workers, 1 scheduler; "
            f"{args.seconds:.0f} s per rate, after {args.warmup:.0f} s of warm-up"
        )
        if args.warmup > 0:
            # Fresh processes open their connections, prepare their statements and fill
            # their caches on the first events; a running installation has done so long ago.
            warm = run_once(running, database, signer, 100, args.warmup, "warmup")
            if warm["accepted"] != warm["processed"]:
                raise SystemExit("warm-up events were not all applied")
        for label in args.rates.split(","):
            rate = args.max_rate if label == "max" else float(label)
            runs = [
                run_rate(running, database, signer, label, rate, args.seconds, n)
                for n in range(args.repeat)
            ]
            if len(runs) > 1:
                print(
                    f"{label:>5} ev/s, {len(runs)} runs: "
                    + spread(runs, label == "max"),
                    flush=True,
                )
            per_run = [record(label, figures, n) for n, figures in enumerate(runs)]
            records.extend(per_run)
            records.append(median_record(per_run))
            write_json()
        memory = running.memory()
        print(
            f"peak RSS: largest web process {memory['web']:.0f} MB, largest worker "
            f"{memory['worker']:.0f} MB"
        )
        write_json(memory)
        database.dispose()


if __name__ == "__main__":
    main()
