"""What one drain costs, in process: an event drain and the delivery drain after it.

    python bench/drain.py [--sizes 1,12,100] [--rounds 20] [--profile PATH]
                          [--returning] [--policies JSON]

Uses DATABASE_URL and REDIS_URL like bench/end_to_end.py (a fresh `throughline_bench`
database and Redis database 15 by default) and the same journey (trigger -> condition ->
send) with a recording channel (bench/receiver.py) on loopback. For each batch size it stores
that many events of new customers in one partition, then applies them in one event drain
batch and sends them in one delivery drain (two hops, as a batch asking for more deliveries
than THROUGHLINE_DRAIN_SENDS_UP_TO goes), `--rounds` times; then, as many times, the same
events applied and sent by one event drain job (one hop: `engine.execution.drains.
drain_events`, with its Redis lock and signals, then a delivery drain for what a batch larger
than THROUGHLINE_DRAIN_SENDS_UP_TO left). It prints per batch and per event: this
process's CPU (median and least), PostgreSQL's CPU, the wall time and the SQL statements sent.
Nothing else runs: no web server, no workers, no load generator, so the figures are the
drains' own and repeat within a few per cent. `--profile PATH` also writes a cProfile of the
largest size's rounds (read it with `python -m pstats PATH`).

`--returning`: every round's events name the same customers (known profiles, as most events
of a live brand do) instead of new ones. `--policies JSON`: brand-wide policies set before
measuring (`{"frequency_caps": [{"channels": ["email"], "max": 1000000, "per": "P1D"}]}`
counts every send against a cap that none reaches).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event

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
from engine.execution import apply, drains  # noqa: E402
from engine.intake.contract import parse_event  # noqa: E402
from engine.intake.store import ToStore, store_events  # noqa: E402
from engine.policies import store as policies  # noqa: E402
from engine.runtime import Runtime  # noqa: E402


class Statements:
    """Counts the statements an engine sends (executemany counts once)."""

    def __init__(self, engine: Any) -> None:
        self.count = 0
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args: Any) -> None:
        self.count += 1


def store(rt: Runtime, channel_id: int, size: int, tag: str, round_: str) -> None:
    """`size` events of the customers `tag` names, each with its own webhook id."""
    now = datetime.now(UTC)
    items = []
    for n in range(size):
        body = {
            "type": "order_completed",
            "customer": {"id": f"{tag}-c{n}"},
            "traits": {"first_name": "Ada"},
            "properties": {"total": 42, "sent_at": f"{time.time():.6f}"},
        }
        items.append(ToStore(f"{tag}-{round_}-{n}", body, parse_event(body)))
    with rt.database.engine.begin() as connection:
        store_events(connection, channel_id, items, 1, now)  # one partition: 0


def measure(action: Any, statements: Statements) -> dict[str, float]:
    postgres = pids_named("postgres")
    pg_before = sum(cpu_seconds(p) for p in postgres)
    count_before = statements.count
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "cpu": cpu * 1000,
        "pg": (sum(cpu_seconds(p) for p in postgres) - pg_before) * 1000,
        "wall": wall * 1000,
        "statements": statements.count - count_before,
    }


def summary(name: str, size: int, runs: list[dict[str, float]]) -> str:
    def median(key: str) -> float:
        return statistics.median(run[key] for run in runs)

    least = min(run["cpu"] for run in runs)

    return (
        f"{name:<15} {size:>5} {median('cpu'):>9.2f} {median('cpu') / size:>9.3f}"
        f" {median('pg') / size:>9.3f} {median('wall'):>9.2f} {median('statements'):>6.0f}"
        f" {least / size:>9.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,12,100")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--profile", metavar="PATH")
    parser.add_argument("--returning", action="store_true")
    parser.add_argument("--policies", metavar="JSON")
    args = parser.parse_args()
    print(machine())
    sizes = [int(s) for s in args.sizes.split(",")]
    with stack(
        THROUGHLINE_OUTBOUND_ALLOWED_NETWORKS="127.0.0.1/32",
        THROUGHLINE_PARTITIONS="1",
    ) as running:
        port = free_port()
        out = Path(tempfile.mkstemp(prefix="throughline-received-")[1])
        receiver = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "receiver.py"), str(port), str(out)]
        )
        rt = Runtime.from_settings(running.settings)
        try:
            with rt.database.session() as session:
                web, email = set_up(session, rt.box, running.settings, port)
                if args.policies:
                    policies.save(session, json.loads(args.policies), None)
                session.commit()
                web_id, email_id = web.channel.id, email.channel.id
            statements = Statements(rt.database.engine)
            time.sleep(0.5)
            print(
                f"{'drain':<15} {'batch':>5} {'CPU ms':>9} {'per event':>9}"
                f" {'PG/event':>9} {'wall ms':>9} {'stmts':>6} {'least/ev':>9}"
            )
            profiler = cProfile.Profile(time.process_time) if args.profile else None
            for size in sizes:
                events: list[dict[str, float]] = []
                deliveries: list[dict[str, float]] = []
                # The first rounds warm the caches and prepared statements.
                for n in range(args.rounds + 3):
                    tag = f"s{size}" if args.returning else f"s{size}r{n}"
                    store(rt, web_id, size, tag, f"r{n}")
                    profiling = profiler and size == sizes[-1] and n >= 3
                    if profiling:
                        profiler.enable()
                    applied = measure(
                        lambda s=size: apply._apply_batch(rt.database, 0, s),
                        statements,
                    )
                    sent = measure(
                        lambda: drains.drain_deliveries(rt, email_id), statements
                    )
                    if profiling:
                        profiler.disable()
                    if n >= 3:
                        events.append(applied)
                        deliveries.append(sent)
                print(summary("event drain", size, events))
                print(summary("delivery drain", size, deliveries))
                one_hop: list[dict[str, float]] = []
                for n in range(args.rounds + 3):
                    tag = f"h{size}" if args.returning else f"h{size}r{n}"
                    store(rt, web_id, size, tag, f"r{n}")
                    sent = measure(
                        lambda: (
                            drains.drain_events(rt, 0),
                            # what a larger batch left to a delivery drain (none if sent)
                            drains.drain_deliveries(rt, email_id),
                        ),
                        statements,
                    )
                    if n >= 3:
                        one_hop.append(sent)
                print(summary("drain + sends", size, one_hop))
            if profiler and args.profile:
                profiler.dump_stats(args.profile)
            time.sleep(1)
        finally:
            rt.close()
            receiver.terminate()
            receiver.wait(10)
        seen = out.read_text().splitlines()
        out.unlink()
        expected = sum(2 * size * (args.rounds + 3) for size in sizes)
        print(f"deliveries received: {len(seen)} of {expected}")
        if len(seen) != expected:
            raise SystemExit("not every event was delivered once")


if __name__ == "__main__":
    main()
