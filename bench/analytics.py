"""Analytics benchmark: a journey with millions of step records, and how fast its figures read.

    python bench/analytics.py [--steps 10000000] [--days 90] [--waiting 100000]
        [--requests 20] [--polls 50]

Builds a fresh PostgreSQL database (DATABASE_URL, default throughline_bench on the local
server), publishes the cart-recovery journey and fills it in SQL with `--steps` step records
over `--steps / 10` runs and customers spread across `--days` days, `--waiting` of the runs
still waiting at the wait, then the counters those records would have produced (one row per
hour, node, outcome and shard, as the drains write them), and folds them as the scheduler's
compaction does. It then renders the journey's analytics page and the overview through the
app (the Flask test client: no network, no browser) and prints the server time per request;
then it polls the canvas's live figures (`/journeys/<id>/counts`, as the open designer page
does) and the journey's stats in the API, and prints their p50 and p99.
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

from bench.common import (  # noqa: E402
    DEFAULT_DATABASE,
    DEFAULT_REDIS,
    fresh_database,
    machine,
    percentile,
)
from engine.accounts import create_token, create_user  # noqa: E402
from engine.analytics import counters
from engine.channels import create_channel  # noqa: E402
from engine.crypto import SecretBox  # noqa: E402
from engine.db import Database  # noqa: E402
from engine.demo import starter  # noqa: E402
from engine.journeys import lifecycle
from engine.migrate import upgrade  # noqa: E402
from engine.models import (  # noqa: E402
    Counter,
    Journey,
    Role,
    Run,
    RunStatus,
    Step,
    User,
    utcnow,
)
from engine.settings import Settings, load_settings  # noqa: E402

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
    waiting = min(args.waiting, runs)
    seconds = args.days * 86400
    with database.engine.begin() as connection:
        connection.execute(text("SET LOCAL synchronous_commit = off"))
        connection.execute(text("SET LOCAL work_mem = '256MB'"))
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
                " context, state, started_at, updated_at, ended_at, converted_at, wake_at)"
                " SELECT g, :journey, :version, g,"
                " CASE WHEN g <= :waiting THEN 'waiting' ELSE 'completed' END,"
                " CASE WHEN g <= :waiting THEN 'wait' ELSE 'end' END, '{}'::jsonb,"
                " '{}'::jsonb, now() - make_interval(secs => ((g::bigint * 7919) % :seconds)::int),"
                " now(), CASE WHEN g > :waiting THEN now() END,"
                " CASE WHEN g % 3 = 2 THEN now() END,"
                " CASE WHEN g <= :waiting THEN now() + interval '1 hour' END"
                " FROM generate_series(1, :runs) g"
            ),
            {
                "runs": runs,
                "waiting": waiting,
                "journey": journey_id,
                "version": version_id,
                "seconds": seconds,
            },
        )
        print(
            f"{runs:,} customers and runs ({waiting:,} waiting)"
            f" in {time.perf_counter() - started:.0f} s"
        )
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
        # Each run once per node: entered, went on, failed (at its first such step there).
        firsts = " UNION ALL ".join(
            f"SELECT run_id, node_id, '{label}' AS label, min(at) AS first_at FROM steps"
            f" WHERE {where} GROUP BY run_id, node_id"
            for label, where in (
                ("entered", "outcome NOT IN ('converted', 'exited')"),
                (
                    "completed",
                    "outcome NOT IN ('waiting', 'failed', 'converted', 'exited')",
                ),
                ("failed", "outcome = 'failed'"),
            )
        )
        connection.execute(
            text(
                f"INSERT INTO counters SELECT {journey_id}, 'visited',"
                f" date_trunc('hour', first_at), {version_id}, node_id, 0, label,"
                f" run_id % {SHARDS}, count(*) FROM ({firsts}) f GROUP BY 3, 5, 7, 8"
            )
        )
        for metric, column, label, where in (
            ("entered", "started_at", "", "true"),
            ("ended", "ended_at", "completed", "ended_at IS NOT NULL"),
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


def timed(client, path: str, requests: int, **headers: str) -> list[float]:  # type: ignore[no-untyped-def]
    client.get(path, headers=headers)  # warm: templates compiled, connections opened
    timings = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(path, headers=headers)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument(
        "--waiting", type=int, default=100_000, help="runs waiting at the wait"
    )
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument(
        "--polls", type=int, default=50, help="reads of the canvas figures and stats"
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="measure the journey an earlier run built, without building it again",
    )
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE)
    home = tempfile.mkdtemp(prefix="throughline-bench-analytics-")
    env = {
        **os.environ,
        "THROUGHLINE_HOME": home,
        "DATABASE_URL": url,
        "REDIS_URL": os.environ.get("REDIS_URL", DEFAULT_REDIS),
    }
    settings = load_settings(env)
    if args.reuse:
        database = Database(settings.database_url)
        with database.session() as session:
            journey_id = session.scalar(select(func.min(Journey.id))) or 0
    else:
        started = time.perf_counter()
        journey_id = build(settings, args)
        print(f"built in {time.perf_counter() - started:.0f} s")
    measure(settings, journey_id, args)


def build(settings: Settings, args: argparse.Namespace) -> int:
    """A fresh database with the journey filled in and its counters compacted."""
    fresh_database(settings.database_url)
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
    # Months of history were written and folded at once, leaving a hundred times the live
    # rows behind as dead ones; a server folding hour by hour reuses that space as it goes
    # (autovacuum). Rewrite the table, so the readers scan the rows a server would hold.
    with database.engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(
            text("VACUUM FULL ANALYZE counters")
        )
    return journey_id


def measure(settings: Settings, journey_id: int, args: argparse.Namespace) -> None:
    """Render the analytics pages and poll the canvas's figures and the API's stats."""
    database = Database(settings.database_url)
    with database.session() as session:
        steps = session.scalar(select(func.count()).select_from(Step))
        rows = session.scalar(select(func.count()).select_from(Counter))
        waiting = session.scalar(
            select(func.count()).select_from(Run).where(Run.status == RunStatus.waiting)
        )
        user = session.scalars(select(User)).one()
        api_token = create_token(session, user, "bench")
        session.commit()
    print(machine())
    print(f"{steps:,} step records; {rows:,} counter rows; {waiting:,} runs waiting")

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
    for label, path, headers in (
        (
            "canvas live figures",
            f"/journeys/{journey_id}/counts",
            {"HX-Request": "true"},
        ),
        (
            "journey stats (API)",
            f"/api/v1/journeys/{journey_id}/stats",
            {"Authorization": f"Bearer {api_token}"},
        ),
    ):
        timings = timed(client, path, args.polls, **headers)
        print(
            f"{label}: p50 {percentile(timings, 0.5):.1f} ms,"
            f" p99 {percentile(timings, 0.99):.1f} ms,"
            f" max {max(timings):.1f} ms ({args.polls} polls)"
        )


if __name__ == "__main__":
    main()
