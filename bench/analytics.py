"""Analytics benchmark: a journey with millions of step records, and how fast its page renders.

    python bench/analytics.py [--steps 10000000] [--days 90] [--requests 20]

Builds a fresh PostgreSQL database (DATABASE_URL, default throughline_bench on the local
server), publishes the cart-recovery journey and fills it in SQL with `--steps` step records
over `--steps / 10` runs and customers spread across `--days` days, then the counters those
records would have produced (one row per hour, node, outcome and shard, as the drains write
them), and folds them as the scheduler's compaction does. It then renders the journey's analytics page and the overview through the app (the
Flask test client: no network, no browser) and prints the server time per request.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select, text  # noqa: E402

from bench.common import DEFAULT_DATABASE, fresh_database, machine  # noqa: E402
from engine.accounts import create_user  # noqa: E402
from engine.analytics import counters
from engine.channels import create_channel  # noqa: E402
from engine.crypto import SecretBox  # noqa: E402
from engine.db import Database  # noqa: E402
from engine.demo import starter  # noqa: E402
from engine.journeys import lifecycle
from engine.migrate import upgrade  # noqa: E402
from engine.models import Counter, Role, Step, utcnow  # noqa: E402
from engine.settings import load_settings  # noqa: E402

PASSWORD = "benchmark password 1"
SHARDS = 8
# A cart-recovery run's steps, in order: (node, outcome); every run takes this path or its
# call branch, so per-node figures look like a real journey's.
PATHS = [
    [("start", "out"), ("wait", "waiting"), ("wait", "timeout"), ("vip", "false")]
    + [("mail", "out"), ("end", "completed")],
    [("start", "out"), ("wait", "waiting"), ("wait", "timeout"), ("vip", "true")]
    + [("call", "out"), ("end", "completed")],
    [("start", "out"), ("wait", "waiting"), ("wait", "converted"), ("wait", "event")]
    + [("end", "completed")],
]


def fill(
    database: Database, journey_id: int, version_id: int, args: argparse.Namespace
) -> None:
    runs = max(args.steps // 10, 1)
    seconds = args.days * 86400
    with database.engine.begin() as connection:
        connection.execute(text("SET LOCAL synchronous_commit = off"))
        started = time.perf_counter()
        connection.execute(
            text(
                "INSERT INTO customers (id, traits, consent, seen_channels, created_at, updated_at)"
                " SELECT g, '{}'::jsonb, '{}'::jsonb, '[1]'::jsonb, now(), now()"
                " FROM generate_series(1, :runs) g"
            ),
            {"runs": runs},
        )
        connection.execute(
            text(
                "INSERT INTO runs (id, journey_id, version_id, customer_id, status, current_node,"
                " context, state, started_at, updated_at, ended_at, converted_at)"
                " SELECT g, :journey, :version, g, 'completed', 'end', '{}'::jsonb,"
                " '{}'::jsonb, now() - make_interval(secs => ((g::bigint * 7919) % :seconds)::int),"
                " now(), now(), CASE WHEN g % 3 = 2 THEN now() END"
                " FROM generate_series(1, :runs) g"
            ),
            {
                "runs": runs,
                "journey": journey_id,
                "version": version_id,
                "seconds": seconds,
            },
        )
        print(f"{runs:,} customers and runs in {time.perf_counter() - started:.0f} s")
        started = time.perf_counter()
        # Step k of run r is step k (cycled) of path r % 3.
        per_run = max(args.steps // runs, 1)
        values = ", ".join(
            f"({p}, {k}, '{path[k % len(path)][0]}', '{path[k % len(path)][1]}')"
            for p, path in enumerate(PATHS)
            for k in range(per_run)
        )
        connection.execute(
            text(
                "CREATE TEMP TABLE path_steps (path int, k int, node text, outcome text);"
                f" INSERT INTO path_steps VALUES {values}"
            )
        )
        connection.execute(
            text(
                "INSERT INTO steps (run_id, node_id, node_type, outcome, detail, at)"
                " SELECT r.id, s.node, 'step', s.outcome, '{}'::jsonb,"
                "  r.started_at + make_interval(secs => s.k * 60)"
                " FROM runs r JOIN path_steps s ON s.path = r.id % 3"
            )
        )
        print(f"steps in {time.perf_counter() - started:.0f} s")
        started = time.perf_counter()
        common = f"{journey_id}, :metric, date_trunc('hour', at), {version_id}"
        connection.execute(
            text(
                f"INSERT INTO counters SELECT {common.replace(':metric', quote('step'))},"
                f" node_id, 0, outcome, run_id % {SHARDS}, count(*)"
                " FROM steps GROUP BY 3, 5, 7, 8"
            )
        )
        connection.execute(
            text(
                f"INSERT INTO counters SELECT {common.replace(':metric', quote('arrived'))},"
                f" node_id, 0, '', run_id % {SHARDS}, count(*)"
                " FROM steps WHERE outcome NOT IN ('timeout', 'event', 'converted')"
                " GROUP BY 3, 5, 8"
            )
        )
        for metric, column, label, where in (
            ("entered", "started_at", "", "true"),
            ("ended", "ended_at", "completed", "true"),
            ("converted", "converted_at", "", "converted_at IS NOT NULL"),
            (
                "converted_cross",
                "converted_at",
                "",
                "converted_at IS NOT NULL AND id % 2 = 0",
            ),
        ):
            connection.execute(
                text(
                    f"INSERT INTO counters SELECT {journey_id}, '{metric}',"
                    f" date_trunc('hour', {column}), {version_id}, '', 1, '{label}',"
                    f" id % {SHARDS}, count(*) FROM runs WHERE {where} GROUP BY 3, 8"
                )
            )
        for metric, label in (("delivery", "delivered"), ("latency", "50")):
            connection.execute(
                text(
                    f"INSERT INTO counters SELECT {journey_id}, '{metric}',"
                    f" date_trunc('hour', started_at), {version_id},"
                    " CASE WHEN id % 3 = 0 THEN 'mail' ELSE 'call' END,"
                    f" CASE WHEN id % 3 = 0 THEN 2 ELSE 4 END, '{label}', id % {SHARDS},"
                    " count(*) FROM runs WHERE id % 3 < 2 GROUP BY 3, 5, 6, 8"
                )
            )
        print(f"counters in {time.perf_counter() - started:.0f} s")
    with database.engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(
            text("VACUUM ANALYZE")
        )


def quote(value: str) -> str:
    return f"'{value}'"


def timed(client, path: str, requests: int) -> list[float]:  # type: ignore[no-untyped-def]
    client.get(path)  # warm: templates compiled, connections opened
    timings = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(path)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE)
    fresh_database(url)
    home = tempfile.mkdtemp(prefix="throughline-bench-analytics-")
    env = {
        **os.environ,
        "THROUGHLINE_HOME": home,
        "DATABASE_URL": url,
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14"),
    }
    settings = load_settings(env)
    upgrade(settings.database_url)
    database = Database(settings.database_url)
    box = SecretBox(settings.encryption_key)
    with database.session() as session:
        for slug in ("web", "email", "sms", "support-desk"):
            create_channel(session, box, slug, slug, "other")
        create_user(session, "bench@example.com", Role.viewer, PASSWORD)
        ctx = lifecycle.check_context(session)
        journey, _ = lifecycle.create_journey(
            session, starter("cart_recovery"), ctx, None
        )
        version = lifecycle.publish(session, journey, ctx, None)
        session.commit()
        journey_id, version_id = journey.id, version.id
    fill(database, journey_id, version_id, args)
    with database.session() as session:
        raw_rows = session.scalar(select(func.count()).select_from(Counter))
    started = time.perf_counter()
    with database.session(writer=True) as session:
        folded = counters.compact(session, utcnow())
    print(
        f"compaction folded {folded:,} of {raw_rows:,} counter rows"
        f" in {time.perf_counter() - started:.1f} s"
    )
    with database.session() as session:
        steps = session.scalar(select(func.count()).select_from(Step))
        rows = session.scalar(select(func.count()).select_from(Counter))
    print(machine())
    print(f"{steps:,} step records; {rows:,} counter rows")

    from webapp import create_app

    app = create_app(settings)
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    client.post(
        "/login",
        data={"email": "bench@example.com", "password": PASSWORD, "csrf_token": token},
    )
    for label, path in (
        ("journey page, last 7 days", f"/journeys/{journey_id}/analytics?period=7d"),
        ("journey page, last 90 days", f"/journeys/{journey_id}/analytics?period=90d"),
        (
            "journey page, all time, by day",
            f"/journeys/{journey_id}/analytics?period=all",
        ),
        (
            "funnel CSV, all time",
            f"/journeys/{journey_id}/analytics.csv?table=funnel&period=all",
        ),
        ("overview, last 30 days", "/analytics/?period=30d"),
    ):
        timings = timed(client, path, args.requests)
        print(
            f"{label}: median {statistics.median(timings):.0f} ms,"
            f" p95 {sorted(timings)[int(0.95 * (len(timings) - 1))]:.0f} ms,"
            f" max {max(timings):.0f} ms ({args.requests} requests)"
        )


if __name__ == "__main__":
    main()
