"""Overload benchmark: intake past its backlog bound refuses with 429 and keeps memory flat.

    python bench/overload.py [--bound 5000] [--seconds 30] [--connections 32]

Uses DATABASE_URL and REDIS_URL like the other benchmarks. No worker runs, so every accepted
event stays in the backlog; once the backlog reaches `--bound`, intake must answer 429 with
`Retry-After` instead of taking more. The RSS of the web processes is read every second.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
from pathlib import Path

import httpx
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, rss_mb, stack, web_channel  # noqa: E402
from bench.intake import run_wrk, write_pool  # noqa: E402
from engine.db import Database  # noqa: E402
from engine.models import Event  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bound", type=int, default=5_000)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    print(machine())
    with stack(THROUGHLINE_BACKLOG_LIMIT=str(args.bound)) as running:
        database = Database(running.settings.database_url)
        signer = web_channel(database, running.settings)
        running.start_web()
        pids = running.web_pids()
        samples: list[float] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                samples.append(sum(rss_mb(pid) for pid in pids))
                stop.wait(1)

        watcher = threading.Thread(target=sample, daemon=True)
        watcher.start()
        work = Path(tempfile.mkdtemp(prefix="throughline-pool-"))
        write_pool(work / "flood", signer, 2, 4_000 * args.seconds, 0, "flood")
        figures = run_wrk(
            running.url,
            "/hooks/web",
            work / "flood",
            args.seconds,
            args.connections,
            2,
        )
        body = json.dumps({"type": "page_viewed", "customer": {"id": "late"}})
        refused = httpx.post(
            f"{running.url}/hooks/web",
            content=body,
            headers=signer.headers(body, "after-the-flood"),
        )
        stop.set()
        watcher.join()
        with database.session() as session:
            stored = session.scalar(select(func.count()).select_from(Event))
        accepted = figures["requests"] - figures["non_2xx"]
        print(
            f"{figures['requests']:,.0f} requests in {figures['seconds']:.0f} s "
            f"({args.connections} connections): {accepted:,.0f} accepted, "
            f"{figures['non_2xx']:,.0f} refused; {stored:,} events stored against a bound of "
            f"{args.bound:,}; refused ack p50 {figures['p50']:.1f} ms, p99 {figures['p99']:.1f} ms"
        )
        print(
            f"a request after the flood: {refused.status_code}, Retry-After "
            f"{refused.headers.get('retry-after')!r}, {refused.json()}"
        )
        print(
            f"web RSS (all processes): first {samples[0]:.0f} MB, after the first 5 s "
            f"{samples[min(5, len(samples) - 1)]:.0f} MB, peak {max(samples):.0f} MB, "
            f"last {samples[-1]:.0f} MB"
        )
        database.dispose()


if __name__ == "__main__":
    main()
