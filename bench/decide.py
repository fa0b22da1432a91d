"""Real-time decision benchmark: POST /api/v1/decide/<key> at fixed rates.

    python bench/decide.py [--rates 100,300,600] [--seconds 20] [--customers 10000]
                           [--processes 2] [--repeat 1] [--json PATH]

Uses DATABASE_URL and REDIS_URL like bench/end_to_end.py (a fresh `throughline_bench`
database and Redis database 15 by default). Starts the web server only, publishes a table of
six rules over traits and the request's context, and gives `--customers` profiles an email
identity and traits. Requests are posted open-loop: request i is due at t0 + i/rate, so a
slow answer counts against latency instead of lowering the rate. Each asks for a random
known customer by `email:` (one in ten for one without a profile), half of them signed by
the channel instead of carrying a token.

Prints per rate: answers by status, p50, p99 and max latency (due time to the last byte of
the answer), and the CPU time of the web server and PostgreSQL per request; then checks that
the decisions counted equal the 200 answers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Signer, machine, percentile, stack  # noqa: E402
from bench.end_to_end import post_all  # noqa: E402
from engine import accounts  # noqa: E402
from engine.analytics.counters import Metric  # noqa: E402
from engine.channels import create_channel  # noqa: E402
from engine.crypto import SecretBox  # noqa: E402
from engine.db import Database  # noqa: E402
from engine.decisions import store  # noqa: E402
from engine.models import Counter, Customer, Identity, Role  # noqa: E402

KEY = "support_tier"
TIERS = ("vip", "gold", "silver", "regular")


def table() -> dict[str, Any]:
    trait = "customer.traits"
    return {
        "key": KEY,
        "name": "Support tier",
        "rules": [
            {
                "when": {"field": f"{trait}.tier", "op": "eq", "value": "vip"},
                "outcome": "premium",
                "values": {"queue": "vip", "sla_hours": 1},
            },
            {
                "when": {
                    "all": [
                        {"field": f"{trait}.tier", "op": "eq", "value": "gold"},
                        {"field": f"{trait}.lifetime_value", "op": "gte", "value": 500},
                    ]
                },
                "outcome": "premium",
                "values": {"queue": "gold", "sla_hours": 4},
            },
            {
                "when": {"field": "context.cart_value", "op": "gte", "value": 1000},
                "outcome": "premium",
                "values": {"queue": "big-cart", "sla_hours": 4},
            },
            {
                "when": {"field": f"{trait}.open_tickets", "op": "gt", "value": 3},
                "outcome": "escalate",
                "values": {"queue": "escalations"},
            },
            {
                "when": {
                    "field": f"{trait}.country",
                    "op": "in",
                    "value": ["DE", "AT"],
                },
                "outcome": "standard",
                "values": {"queue": "dach"},
            },
            {
                "when": {"field": "context.channel", "op": "eq", "value": "chat"},
                "outcome": "standard",
                "values": {"queue": "chat"},
            },
        ],
        "default": {"outcome": "self_service", "values": {"queue": "faq"}},
    }


def set_up(database: Database, box: SecretBox, customers: int) -> tuple[str, Signer]:
    """The table (published), the profiles, a viewer's token and the channel's signer."""
    rng = random.Random(7)
    with database.session(writer=True) as session:
        channel = create_channel(session, box, "web", "Web", "web", rate_limit=100_000)
        user = accounts.create_user(
            session, "bench@example.com", Role.viewer, "benchmark-password"
        )
        token = accounts.create_token(session, user, "bench")
        store.publish(session, store.create(session, table(), None), None)
        for start in range(0, customers, 1000):
            ids = session.scalars(
                insert(Customer).returning(Customer.id),
                [
                    {
                        "traits": {
                            "tier": rng.choice(TIERS),
                            "lifetime_value": rng.randrange(0, 2000),
                            "open_tickets": rng.randrange(0, 6),
                            "country": rng.choice(["DE", "FR", "US", "AT"]),
                        },
                        "consent": {},
                        "seen_channels": [],
                    }
                    for _ in range(start, min(customers, start + 1000))
                ],
            ).all()
            session.execute(
                insert(Identity),
                [
                    {
                        "customer_id": cid,
                        "kind": "email",
                        "value": f"c{start + n}@example.com",
                    }
                    for n, cid in enumerate(ids)
                ],
            )
        session.commit()
    return token, Signer(channel.inbound_secret)


def requests(
    token: str, signer: Signer, rate: float, seconds: float, t0: float, customers: int
) -> list[tuple[float, bytes]]:
    rng = random.Random(int(rate))
    stamp = datetime.now(UTC) + timedelta(seconds=5)
    out = []
    for n in range(int(rate * seconds)):
        due = t0 + n / rate
        who = (
            f"email:nobody{n}@example.com"
            if n % 10 == 9
            else f"email:c{rng.randrange(customers)}@example.com"
        )
        body = json.dumps(
            {
                "customer": who,
                "context": {
                    "cart_value": rng.randrange(0, 1500),
                    "channel": rng.choice(["chat", "phone"]),
                },
            },
            separators=(",", ":"),
        )
        if n % 2:
            headers = {
                "authorization": f"Bearer {token}",
                "content-type": "application/json",
            }
            path = f"/api/v1/decide/{KEY}"
        else:
            headers = signer.headers(body, f"d-{t0:.3f}-{n}", stamp)
            path = f"/api/v1/decide/{KEY}?channel=web"
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        raw = (
            f"POST {path} HTTP/1.1\r\nhost: bench\r\n"
            f"content-length: {len(body)}\r\n{head}\r\n{body}"
        ).encode()
        out.append((due, raw))
    return out


def counted(database: Database) -> int:
    with database.session() as session:
        return int(
            session.scalar(
                select(func.coalesce(func.sum(Counter.value), 0)).where(
                    Counter.metric == Metric.DECIDED
                )
            )
            or 0
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="100,300,600")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print(machine())
    records: list[dict[str, Any]] = []
    with stack() as running:
        database = Database(running.settings.database_url)
        token, signer = set_up(
            database, SecretBox(running.settings.encryption_key), args.customers
        )
        running.start_web(args.processes)
        port = int(running.url.rsplit(":", 1)[1])
        warm = requests(token, signer, 100, 3, time.time() + 0.5, args.customers)
        asyncio.run(post_all(port, warm, args.connections))
        for rate_text in args.rates.split(","):
            rate = float(rate_text)
            for repeat in range(args.repeat):
                before_cpu, before_count = running.cpu(), counted(database)
                planned = requests(
                    token, signer, rate, args.seconds, time.time() + 1, args.customers
                )
                latencies, statuses = asyncio.run(
                    post_all(port, planned, args.connections)
                )
                after_cpu = running.cpu()
                time.sleep(0.5)
                ok = statuses.get(200, 0)
                made = counted(database) - before_count
                ms = sorted(v * 1000 for v in latencies)
                record = {
                    "rate": rate,
                    "repeat": repeat,
                    "requests": len(planned),
                    "statuses": statuses,
                    "p50_ms": round(percentile(ms, 0.5), 2),
                    "p99_ms": round(percentile(ms, 0.99), 2),
                    "max_ms": round(ms[-1], 2),
                    "web_cpu_ms": round(
                        (after_cpu["web"] - before_cpu["web"]) * 1000 / max(ok, 1), 3
                    ),
                    "postgres_cpu_ms": round(
                        (after_cpu["PostgreSQL"] - before_cpu["PostgreSQL"])
                        * 1000
                        / max(ok, 1),
                        3,
                    ),
                    "counted": made,
                }
                records.append(record)
                print(
                    f"{rate:>6.0f}/s  answers {statuses}  p50 {record['p50_ms']:.1f} ms  "
                    f"p99 {record['p99_ms']:.1f} ms  max {record['max_ms']:.1f} ms  "
                    f"CPU per request: web {record['web_cpu_ms']:.2f} ms, "
                    f"PostgreSQL {record['postgres_cpu_ms']:.2f} ms  "
                    f"counted so far {made} of {ok} (each web process writes its counts once a second)"
                )
        if args.repeat > 1:
            for rate_text in args.rates.split(","):
                runs = [r for r in records if r["rate"] == float(rate_text)]
                print(
                    f"{float(rate_text):>6.0f}/s  median of {len(runs)}: p50 "
                    f"{statistics.median(r['p50_ms'] for r in runs):.1f} ms, p99 "
                    f"{statistics.median(r['p99_ms'] for r in runs):.1f} ms"
                )
    if args.json:
        args.json.write_text(
            json.dumps(
                {"benchmark": "decide", "machine": machine(), "records": records}
            )
        )


if __name__ == "__main__":
    main()
