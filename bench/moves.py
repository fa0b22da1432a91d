"""Moving customers between versions: many waiting runs moved by a publish's plan while
intake keeps answering.

    python bench/moves.py [--runs 100000] [--workers 1] [--rate 100]

Uses DATABASE_URL and REDIS_URL like the other benchmarks (PostgreSQL by default). One run
is started through the engine (trigger -> wait P1D -> exit) and copied in SQL into `--runs`
waiting runs of as many customers. Then version 2 (the wait changed to PT2H) is published
with the default plan, which moves every run to the changed wait (each one re-enters it: a
new wake time, a "moved" step, its counters). The product's own worker processes apply the
move; meanwhile a client posts signed events to the web server at `--rate` per second. It
prints how long the move took and intake's answers and latency during it.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import httpx
from sqlalchemy import select, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Signer, machine, percentile, stack, web_channel  # noqa: E402
from engine.db import Database  # noqa: E402
from engine.execution import apply, drains
from engine.journeys import lifecycle
from engine.models import Event, Journey, MoveStatus, Run, RunMove, utcnow  # noqa: E402
from engine.queues import connect  # noqa: E402

JOURNEY = {
    "schema": "throughline.journey/v1",
    "name": "Follow up in a day",
    "entry": {"reentry": "always", "max_entries": None},
    "nodes": [
        {"id": "start", "type": "trigger", "config": {"event": "signed_up"}},
        {"id": "hold", "type": "wait", "config": {"duration": "P1D"}},
        {"id": "end", "type": "exit", "config": {}},
    ],
    "edges": [{"from": "start", "to": "hold"}, {"from": "hold", "to": "end"}],
}

CUSTOMERS = text(
    """
    INSERT INTO customers (traits, consent, seen_channels, created_at, updated_at)
    SELECT '{}', '{}', '[]', now(), now() FROM generate_series(1, :count)
    """
)
RUNS = text(
    """
    INSERT INTO runs (journey_id, version_id, customer_id, status, current_node, wake_at,
                      awaiting_event, context, state, started_at, updated_at)
    SELECT r.journey_id, r.version_id, c.id, r.status, r.current_node, r.wake_at,
           r.awaiting_event, r.context, r.state, r.started_at, r.updated_at
    FROM runs r, customers c
    WHERE r.id = :run AND c.id > :seed_customer
    ORDER BY c.id
    """
)


def seed(database: Database, settings, count: int) -> tuple[int, Signer]:
    """The journey with `count` waiting runs, one customer each; its id and a signer."""
    signer = web_channel(database, settings)
    with database.session(writer=True) as session:
        ctx = lifecycle.check_context(session)
        journey, _ = lifecycle.create_journey(session, JOURNEY, ctx, None)
        lifecycle.publish(session, journey, ctx, None)
        channel_id = session.scalar(text("SELECT id FROM channels WHERE slug = 'web'"))
        session.add(
            Event(
                channel_id=channel_id,
                webhook_id="seed",
                type="signed_up",
                partition=0,
                payload={"type": "signed_up", "customer": {"id": "c-0"}},
                occurred_at=utcnow(),
            )
        )
        journey_id = journey.id
    apply.drain_partition(database, 0, lambda effects, result: None)
    with database.session(writer=True) as session:
        run_id, customer_id = session.execute(select(Run.id, Run.customer_id)).one()
        started = time.monotonic()
        session.execute(CUSTOMERS, {"count": count})
        session.execute(RUNS, {"run": run_id, "seed_customer": customer_id})
        for table in ("steps", "deliveries", "runs"):  # the seed run and what it left
            column = "id" if table == "runs" else "run_id"
            session.execute(
                text(f"DELETE FROM {table} WHERE {column} = :run"), {"run": run_id}
            )
        session.execute(text("ANALYZE runs"))
        session.execute(text("ANALYZE customers"))
    print(f"{count:,} waiting runs written in {time.monotonic() - started:.1f} s")
    return journey_id, signer


def post_events(
    url: str, signer, rate: float, stop: threading.Event, out: list
) -> None:
    """Signed single events at `rate` per second until `stop`; (status, seconds) each."""
    n = 0
    with httpx.Client(timeout=30) as client:
        started = time.monotonic()
        while not stop.is_set():
            n += 1
            body = f'{{"type": "page_viewed", "customer": {{"id": "v-{n}"}}}}'
            sent = time.perf_counter()
            try:
                status = client.post(
                    f"{url}/hooks/web",
                    content=body,
                    headers=signer.headers(body, f"m-{n}"),
                ).status_code
            except httpx.HTTPError:
                status = 0
            out.append((status, time.perf_counter() - sent))
            pause = started + n / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--rate", type=float, default=100)
    args = parser.parse_args()
    print(machine())
    with stack() as running:
        database = Database(running.settings.database_url)
        journey_id, signer = seed(database, running.settings, args.runs)
        running.start_web(2)
        running.start_workers(args.workers, scheduler=True)
        redis = connect(running.settings.redis_url)

        answers: list[tuple[int, float]] = []
        stop = threading.Event()
        client = threading.Thread(
            target=post_events, args=(running.url, signer, args.rate, stop, answers)
        )
        client.start()
        time.sleep(3)  # intake's figures before the move, for comparison
        before = len(answers)

        with database.session(writer=True) as session:
            journey = session.get(Journey, journey_id)
            changed = {**JOURNEY, "nodes": [dict(node) for node in JOURNEY["nodes"]]}
            changed["nodes"][1] = {
                "id": "hold",
                "type": "wait",
                "config": {"duration": "PT2H"},
            }
            ctx = lifecycle.check_context(session)
            lifecycle.replace_draft(session, journey, changed, ctx, None)
            started = time.monotonic()
            _version, move = lifecycle.publish_with_plan(session, journey, ctx, None)
            move_id = move.id
        drains.enqueue_move(redis, move_id)
        while True:
            with database.session() as session:
                found = session.get(RunMove, move_id)
                status, moved = found.status, sum(found.moved.values())
            if status is MoveStatus.done:
                break
            time.sleep(0.2)
        took = time.monotonic() - started
        during = answers[before:]
        stop.set()
        client.join()
        print(
            f"moved {moved:,} runs in {took:.1f} s ({moved / took:,.0f} runs/s) "
            f"with {args.workers} worker process(es)"
        )
        for label, part in (("before the move", answers[:before]), ("during", during)):
            statuses: dict[int, int] = {}
            for code, _ in part:
                statuses[code] = statuses.get(code, 0) + 1
            latencies = [seconds for code, seconds in part if code == 202]
            print(
                f"intake {label}: {len(part):,} events, answers {dict(sorted(statuses.items()))}, "
                f"p50 {percentile(latencies, 0.5) * 1000:,.0f} ms, "
                f"p99 {percentile(latencies, 0.99) * 1000:,.0f} ms"
            )
        redis.close()
        database.dispose()


if __name__ == "__main__":
    main()
