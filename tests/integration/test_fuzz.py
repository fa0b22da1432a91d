"""No input gets a 5xx: thousands of seeded malformed requests, signed and unsigned, to the
webhooks and every /api/v1 route, with /healthz still ok throughout."""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from engine import accounts
from engine.channels import create_channel
from engine.crypto import SecretBox
from engine.decisions import store as decision_store
from engine.journeys import lifecycle, starters
from engine.models import Role
from tests.channels import post_event
from tests.factories import make_user
from webapp.hooks.channels import forget

pytestmark = [pytest.mark.slow, pytest.mark.security]

SEED = 20261204
REQUESTS = 3000
GOOD_EVENT = {"type": "signed_up", "customer": {"id": "c-1"}, "traits": {"a": 1}}

# Raw JSON fragments a careless or hostile sender may put anywhere.
ATOMS = [
    "null",
    "true",
    "false",
    "0",
    "-0",
    "1e400",
    "-1e400",
    "NaN",
    "Infinity",
    "-Infinity",
    "9" * 30,
    "-" + "9" * 30,
    "1" * 5000,
    "1.5",
    "1e-400",
    '""',
    '"\\u0000"',
    '"a\\u0000b"',
    '"\\ud800"',
    '"x\\udfffy"',
    '"\\ud83d\\ude00"',
    '"PT0S"',
    '"P1D"',
    '"P99999999Y"',
    '"-P1D"',
    '"2026-01-01T00:00:00Z"',
    '"0001-01-01T00:00:00+01:00"',
    '"9999-12-31T23:59:59-14:00"',
    '"draft"',
    '"live"',
    '"stay"',
    '"exit"',
    '"email:a@b.c"',
    '"web"',
    '"' + "x" * 70_000 + '"',
    "[]",
    "{}",
]
KEYS = [
    "type",
    "customer",
    "traits",
    "properties",
    "occurred_at",
    "id",
    "events",
    "slug",
    "kind",
    "name",
    "rate_limit",
    "outbound_url",
    "grace_period",
    "migrate",
    "version",
    "schema",
    "nodes",
    "edges",
    "entry",
    "email",
    "sms",
    "after",
    "\\u0000",
    "\\ud800",
    "k" * 300,
    "v²:wait",
    "v" + "1" * 5000 + ":wait",
    "",
]
JUNK_TEXT = [
    "",
    " ",
    "\t",
    "0",
    "-1",
    "1" * 40,
    "abc",
    "\xff\xfe",
    "é" * 10,
    "²",
    "1" * 5000,
    "%00",
    "a\x00b",
    "v1,",
    "v1,!!!",
    "v2,AAAA",
    "v1," + "A" * 5000,
    "Bearer",
    "Bearer ",
    "Bearer tl_" + "x" * 40,
    "Basic dXNlcjpwYXNz",
    "x" * 9000,
]


class Fuzzer:
    """Seeded request bodies and headers: random JSON shapes and the known hostile ones."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def value(self, depth: int = 0) -> str:
        """JSON text (often not quite JSON) of a random shape."""
        rng = self.rng
        roll = rng.random()
        if depth > 4 or roll < 0.45:
            return rng.choice(ATOMS)
        if roll < 0.7:
            members = [
                f'"{rng.choice(KEYS)}": {self.value(depth + 1)}'
                for _ in range(rng.randint(0, 6))
            ]
            return "{" + ", ".join(members) + "}"
        if roll < 0.9:
            items = [self.value(depth + 1) for _ in range(rng.randint(0, 5))]
            return "[" + ", ".join(items) + "]"
        return json.dumps(rng.choice(JUNK_TEXT))

    def shaped(self, template: dict[str, Any]) -> str:
        """`template` with some members replaced by hostile values or removed."""
        rng = self.rng
        members = []
        for key, value in template.items():
            roll = rng.random()
            if roll < 0.15:
                continue
            text = self.value(2) if roll < 0.6 else json.dumps(value)
            members.append(f"{json.dumps(key)}: {text}")
        if rng.random() < 0.3:
            members.append(f'"{rng.choice(KEYS)}": {self.value(1)}')
        return "{" + ", ".join(members) + "}"

    def body(self, template: dict[str, Any] | None) -> str | bytes:
        rng = self.rng
        roll = rng.random()
        if roll < 0.06:
            depth = rng.choice([33, 500, 5000, 50_000])
            return '{"a": ' * depth + "1" + "}" * depth
        if roll < 0.1:
            return "[" * rng.choice([100, 2000, 100_000])
        if roll < 0.13:
            return rng.choice([b"\xff\xfe\x00", b'{"a": "\xed\xa0\x80"}', b"\x00" * 10])
        if roll < 0.16:
            return '{"a": "' + "x" * rng.choice([300_000, 5_000_000]) + '"}'
        if roll < 0.2:
            keys = rng.choice([501, 5000])
            return json.dumps({f"k{n}": n for n in range(keys)})
        if roll < 0.25:
            return rng.choice(["", "{", "}", "nul", "[1,]", '{"a":1,}', "'a'", "\x00"])
        if template is not None and roll < 0.7:
            return self.shaped(template)
        return self.value()

    def header(self) -> str:
        return self.rng.choice(JUNK_TEXT)


def _path_values(journey_id: int, customer_id: int) -> dict[str, list[str]]:
    return {
        "journey_id": [str(journey_id)] * 4
        + ["0", "999999", "9" * 19, "9" * 40, "-1", "1.5", "%00"],
        "slug": ["spare"] * 3 + ["nope", "%00", "%ED%A0%80", "a" * 300, "..", "%2F"],
        "event_type": ["cart_abandoned"] * 4
        + ["nope", "%00", "%ED%A0%80", "a" * 300, "%2F"],
        "key": ["tier"] * 4 + ["nope", "%00", "%ED%A0%80", "a" * 300, "Tier", "%2F"],
        "ref": [str(customer_id), "email:c-1@example.com", "id:c-1"] * 2
        + [
            "0",
            "9" * 40,
            "a:b",
            "nocolon",
            "id:%00",
            "email:%ED%A0%80",
            "x" * 5000,
            "id:c-1/timeline",
            "%C2%B2",
            ":",
        ],
    }


TIER = {
    "key": "tier",
    "name": "Tier",
    "rules": [
        {
            "when": {"field": "customer.traits.tier", "op": "eq", "value": "vip"},
            "outcome": "premium",
            "values": {"queue": "vip"},
        }
    ],
    "default": {"outcome": "standard", "values": {}},
}
TEMPLATES: dict[str, dict[str, Any]] = {
    "api.create_channel_call": {"slug": "s", "kind": "web", "name": "S"},
    "api.rotate_channel": {"grace_period": "PT1H"},
    "api.put_consent": {"email": False, "sms": True},
    "api.create_journey": starters.document("cart_recovery"),
    "api.replace_draft": starters.document("cart_recovery"),
    "api.publish_journey": {"migrate": {"wait": "stay"}},
    "api.simulate_journey": {
        "version": "draft",
        "customer": {"traits": {"a": 1}},
        "events": [{"type": "cart_abandoned", "properties": {}, "after": "PT1H"}],
    },
    "api.create_decision": {**TIER, "key": "tier_two"},
    "api.replace_decision_draft": TIER,
    "api.put_schema": {
        "schema": {"type": "object", "properties": {"cart_value": {"type": "number"}}},
        "mode": "flag",
        "channels": ["web"],
    },
    "api.decide_now": {"customer": "id:c-1", "context": {"cart_value": 3}},
    "hooks.receive": GOOD_EVENT,
    "hooks.receive_batch": {"events": [{"id": "e-1", **GOOD_EVENT}]},
}
QUERIES = ["", "?page=", "?page=-1", "?page=99999999999999999999", "?status=live"]
QUERIES += ["?status=nope", "?limit=0", "?limit=9999", "?before=", "?before=x~y~z"]
QUERIES += ["?before=2026-01-01T00:00:00Z~delivery~%00", "?page=%00&limit=%ED%A0%80"]
QUERIES += [
    "?limit=%C2%B2",
    "?page=%C2%B2",
    "?before=2026-01-01T00:00:00Z~event~%C2%B2",
]


def _routes(app) -> list[tuple[str, str, str]]:
    """(endpoint, rule, method) of every webhook and /api/v1 route."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(("/api/v1/", "/hooks/")):
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                found.append((rule.endpoint, rule.rule, method))
    return sorted(found)


def _fill(rule: str, values: dict[str, list[str]], rng: random.Random) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if rule.startswith("/hooks/") and rng.random() < 0.9:
            return "web"
        return rng.choice(values[name])

    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", one, rule)


def _signed(secret: str, data: str, rng: random.Random) -> dict[str, str]:
    at = datetime.now(UTC)
    if rng.random() < 0.1:
        at -= timedelta(minutes=rng.choice([10, -10, 60 * 24 * 365]))
    webhook_id = rng.choice(["m-1", f"m-{rng.random()}", "x" * 255, "é", "m-\x00"])
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(webhook_id, at, data),
    }


@pytest.fixture
def world(session, settings, client):
    """A channel to sign with, a spare one to rotate, a live journey, a customer, tokens."""
    forget()
    box = SecretBox(settings.encryption_key)
    web = create_channel(session, box, "web", "Web", "web", rate_limit=100_000)
    create_channel(session, box, "spare", "Spare", "app", rate_limit=100_000)
    for slug in ("email", "sms", "support-desk"):  # the starter journey's channels
        create_channel(session, box, slug, slug, "other")
    users = {role: make_user(session, role) for role in Role}
    tokens = {role: accounts.create_token(session, users[role]) for role in Role}
    journey, problems = lifecycle.create_journey(
        session,
        starters.document("cart_recovery"),
        lifecycle.check_context(session),
        users[Role.admin],
        allow_problems=True,
    )
    assert problems == [], problems
    lifecycle.publish(
        session, journey, lifecycle.check_context(session), users[Role.admin]
    )
    decision_store.publish(
        session, decision_store.create(session, TIER, users[Role.admin]), None
    )
    session.commit()
    answer = post_event(client, "web", web.inbound_secret, GOOD_EVENT)
    assert answer.status_code == 202
    return web.inbound_secret, tokens, journey.id


def test_no_malformed_request_gets_a_5xx(client, world):
    secret, tokens, journey_id = world
    fuzzer = Fuzzer(SEED)
    rng = fuzzer.rng
    routes = _routes(client.application)
    hooks = [route for route in routes if route[1].startswith("/hooks/")]
    api = [route for route in routes if route not in hooks]
    assert len(hooks) == 2 and len(api) >= 19
    values = _path_values(journey_id, 1)
    counts: Counter[str] = Counter()
    failures: list[tuple[str, str, int, str]] = []
    for number in range(REQUESTS):
        # Half to the webhooks, half spread over the API's routes.
        turn = number // 2
        endpoint, rule, method = hooks[turn % 2] if number % 2 else api[turn % len(api)]
        path = _fill(rule, values, rng) + (
            rng.choice(QUERIES) if method == "GET" else ""
        )
        data = fuzzer.body(TEMPLATES.get(endpoint)) if method != "GET" else b""
        headers: dict[str, str] = {}
        if rng.random() < 0.8:
            headers["Content-Type"] = rng.choice(
                ["application/json"] * 4
                + ["text/plain", "application/x-www-form-urlencoded", fuzzer.header()]
            )
        if rule.startswith("/hooks/"):
            if isinstance(data, str) and rng.random() < 0.6:
                headers.update(_signed(secret, data, rng))
                counts["signed"] += 1
            else:
                for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
                    if rng.random() < 0.7:
                        headers[name] = fuzzer.header()
                counts["unsigned"] += 1
        else:
            roll = rng.random()
            if roll < 0.85:
                headers["Authorization"] = (
                    f"Bearer {tokens[rng.choice([Role.admin] * 3 + list(Role))]}"
                )
                counts["with a token"] += 1
            elif roll < 0.95:
                headers["Authorization"] = fuzzer.header()
                counts["bad token"] += 1
            else:
                counts["anonymous"] += 1
            if rng.random() < 0.2:
                headers["If-Match"] = fuzzer.header()
        response = client.open(path, method=method, data=data, headers=headers)
        counts[f"{response.status_code // 100}xx"] += 1
        if response.status_code >= 500:
            failures.append(
                (
                    method,
                    path[:80],
                    response.status_code,
                    response.get_data(as_text=True)[:200],
                )
            )
        if rule.endswith("/batch") and response.status_code == 200:
            stored = [r for r in response.get_json()["results"] if r["status"] >= 500]
            if stored:
                failures.append((method, path, 200, json.dumps(stored)[:200]))
        if number % 200 == 199:
            assert client.get("/healthz").get_json()["status"] == "ok"
    health = client.get("/healthz")
    print(
        f"\nfuzzed {REQUESTS} requests over {len(routes)} routes:",
        ", ".join(f"{name} {n}" for name, n in sorted(counts.items())),
    )
    for failure in failures:
        print("5xx:", failure[:3])
    assert failures == []
    assert health.status_code == 200
    assert counts["signed"] >= 500 and counts["unsigned"] >= 500
