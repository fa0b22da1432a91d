"""Timer benchmark: many waiting runs, a stream of them coming due, and how late each fires.

    python bench/timers.py [--runs 100000] [--due-rate 500] [--seconds 20]

Uses DATABASE_URL and REDIS_URL like the other benchmarks. One run is started through the
engine (trigger -> wait PT1H -> exit) and copied in SQL into `--runs` waiting runs: a stream
of `--due-rate` runs per second comes due during `--seconds`, the rest wait a day. The
scheduler process (the product's own) sweeps them. Lateness is when a run ended (the sweep
that claimed it) minus its wake time. The sweep query is also timed with every run waiting
and none due, to show that its cost follows the due runs, not all the waiting ones.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, percentile, stack  # noqa: E402
from engine import execution
from engine.channels import create_channel  # noqa: E402
from engine.crypto import SecretBox  # noqa: E402
from engine.db import Database  # noqa: E402
from engine.execution import apply, timers
from engine.journeys import lifecycle
from engine.models import Event, Run, RunStatus, utcnow  # noqa: E402

JOURNEY = {
    "schema": "throughline.journey/v1",
    "name": "Follow up in an hour",
    "entry": {"reentry": "always", "max_entries": None},
    "nodes": [
        {"id": "start", "type": "trigger", "config": {"event": "signed_up"}},
        {"id": "hour", "type": "wait", "config": {"duration": "PT1H"}},
        {"id": "end", "type": "exit", "config": {}},
    ],
    "edges": [{"from": "start", "to": "hour"}, {"from": "hour", "to": "end"}],
}

COPY = text(
    """
    INSERT INTO runs (journey_id, version_id, customer_id, status, current_node, wake_at,
                      awaiting_event, context, state, started_at, updated_at)
    SELECT r.journey_id, r.version_id, r.customer_id, r.status, r.current_node,
           CASE WHEN g <= :due THEN CAST(:first AS timestamptz) + g * CAST(:step AS interval)
                ELSE CAST(:first AS timestamptz) + interval '1 day' END,
           r.awaiting_event, r.context, r.state, r.started_at, r.updated_at
    FROM runs r, generate_series(1, :count) AS g
    WHERE r.id = :run
    ORDER BY g
    """
)


def seed(database: Database, settings, count: int, due: int, rate: float) -> tuple:
    """The journey, one real waiting run, and `count` copies; returns (first due, last id)."""
    box = SecretBox(settings.encryption_key)
    with database.session(writer=True) as session:
        channel = create_channel(session, box, "web", "Web", "web", rate_limit=10_000)
        ctx = lifecycle.check_context(session)
        journey, _ = lifecycle.create_journey(session, JOURNEY, ctx, None)
        lifecycle.publish(session, journey, ctx, None)
        session.flush()
        session.add(
            Event(
                channel_id=channel.channel.id,
                webhook_id="seed",
                type="signed_up",
                partition=0,
                payload={"type": "signed_up", "customer": {"id": "c-1"}},
                occurred_at=utcnow(),
            )
        )
    apply.drain_partition(database, 0, lambda effects, result: None)
    with database.session(writer=True) as session:
        run_id = session.scalar(select(Run.id).where(Run.status == RunStatus.waiting))
        started = time.monotonic()
        first = utcnow() + timedelta(seconds=15 + count / 200_000)
        session.execute(
            COPY,
            {
                "due": due,
                "first": first,
                "step": f"{1 / rate} seconds",
                "count": count,
                "run": run_id,
            },
        )
        for table in ("steps", "deliveries", "runs"):  # the seed run and what it left
            column = "id" if table == "runs" else "run_id"
            session.execute(
                text(f"DELETE FROM {table} WHERE {column} = :run"), {"run": run_id}
            )
        session.execute(text("ANALYZE runs"))
        print(
            f"{count:,} waiting runs written in {time.monotonic() - started:.1f} s; "
            f"{due:,} come due from {first:%H:%M:%S}, {rate:,.0f}/s"
        )
    return first


def sweep_cost(database: Database) -> float:
    """Milliseconds of one sweep query while nothing is due."""
    with database.session(writer=True) as session:
        started = time.perf_counter()
        found = timers.sweep_due_runs(
            session, utcnow() - timedelta(hours=1), execution.Effects()
        )
        elapsed = (time.perf_counter() - started) * 1000
        session.rollback()
    assert not found
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--due-rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    print(machine())
    due = int(args.due_rate * args.seconds)
    with stack() as running:
        database = Database(running.settings.database_url)
        first = seed(database, running.settings, args.runs, due, args.due_rate)
        print(
            f"sweep query with {args.runs:,} waiting and none due: {sweep_cost(database):.1f} ms"
        )
        running.start_workers(1, scheduler=True)
        deadline = time.monotonic() + args.seconds + 600
        while time.monotonic() < deadline:
            with database.session() as session:
                left = session.scalar(
                    select(func.count())
                    .select_from(Run)
                    .where(
                        Run.status == RunStatus.waiting,
                        Run.wake_at <= first + timedelta(seconds=args.seconds + 1),
                    )
                )
            if not left and utcnow() > first + timedelta(seconds=args.seconds):
                break
            time.sleep(1)
        with database.session() as session:
            rows = session.execute(
                select(Run.id, Run.ended_at)
                .where(Run.status == RunStatus.completed)
                .order_by(Run.id)
            ).all()
        first_id = rows[0][0] if rows else 0
        late = [
            (
                ended
                - (first + timedelta(seconds=(run_id - first_id + 1) / args.due_rate))
            ).total_seconds()
            for run_id, ended in rows
        ]
        print(
            f"{len(late):,} of {due:,} due runs fired; lateness p50 {percentile(late, 0.5) * 1000:,.0f} ms, "
            f"p99 {percentile(late, 0.99) * 1000:,.0f} ms, max {max(late, default=0) * 1000:,.0f} ms"
        )
        memory = running.memory()
        print(f"peak RSS of the worker: {memory['worker']:.0f} MB")
        database.dispose()


if __name__ == "__main__":
    main()
