"""Decision tables: kept once, asked by journeys' decide steps and by channels in real
time; drafted, published, restored and audited; every decision counted per outcome."""

import json

import pytest
from sqlalchemy import select

from engine.decisions import store
from engine.journeys import JourneyError, lifecycle
from engine.models import AuditEntry, Role, Step
from tests.channels import signed_headers
from tests.factories import api_client

VIP = {"field": "customer.traits.tier", "op": "eq", "value": "vip"}
TABLE = {
    "schema": "throughline.decision/v1",
    "key": "support_tier",
    "name": "Support tier",
    "rules": [
        {"when": VIP, "outcome": "premium", "values": {"queue": "vip", "sla_hours": 1}},
        {
            "when": {"field": "context.cart_value", "op": "gte", "value": 500},
            "outcome": "premium",
            "values": {"queue": "big-cart", "sla_hours": 4},
        },
    ],
    "default": {"outcome": "self_service", "values": {"queue": "faq", "sla_hours": 48}},
}
ROUTING = {
    "schema": "throughline.journey/v1",
    "name": "Support routing",
    "entry": {"reentry": "always"},
    "nodes": [
        {"id": "start", "type": "trigger", "config": {"event": "ticket_opened"}},
        {"id": "tier", "type": "decide", "config": {"table": "support_tier"}},
        {
            "id": "call",
            "type": "send",
            "config": {
                "channel": "support-desk",
                "message": {
                    "task": "Call {{ customer.id }} on the "
                    "{{ context.decisions.support_tier.queue }} queue within "
                    "{{ context.decisions.support_tier.sla_hours }} h"
                },
            },
        },
        {
            "id": "faq",
            "type": "send",
            "config": {"channel": "email", "message": {"text": "Answers"}},
        },
        {"id": "end", "type": "exit", "config": {}},
    ],
    "edges": [
        {"from": "start", "to": "tier"},
        {"from": "tier", "port": "premium", "to": "call"},
        {"from": "tier", "port": "default", "to": "faq"},
        {"from": "call", "to": "end"},
        {"from": "faq", "to": "end"},
    ],
}


@pytest.fixture(autouse=True)
def _count_every_answer(monkeypatch):
    """Write each real-time decision's count at once (the web process gathers them for a
    second), starting from none gathered."""
    from webapp.api import decisions

    monkeypatch.setattr(decisions, "FLUSH_SECONDS", 0)
    decisions._pending.clear()


def publish_table(world, document=TABLE):
    row = store.create(world.session, document, None)
    store.publish(world.session, row, None)
    world.session.commit()
    return row


def test_a_journey_routes_through_the_table_and_later_steps_read_its_values(
    world, recorders
):
    publish_table(world)
    world.publish(ROUTING)
    world.post(
        {"type": "ticket_opened", "customer": {"id": "ada"}, "traits": {"tier": "vip"}}
    )
    world.post({"type": "ticket_opened", "customer": {"id": "bob"}})
    tasks = [
        r["body"]["message"]["task"] for r in recorders["support-desk"].delivered()
    ]
    assert tasks == ["Call ada on the vip queue within 1 h"]
    assert len(recorders["email"].delivered()) == 1
    steps = world.session.scalars(
        select(Step).where(Step.node_id == "tier").order_by(Step.id)
    ).all()
    assert [(s.outcome, s.detail["outcome"], s.detail["rule"]) for s in steps] == [
        ("premium", "premium", 1),
        ("default", "self_service", None),
    ]
    assert steps[0].detail["reason"].startswith("rule 1: ")
    assert steps[1].detail["version"] == 1
    counted = store.counts(world.session, "support_tier", steps[0].at)
    assert counted == {
        "premium": {"api": 0, "journeys": 1},
        "self_service": {"api": 0, "journeys": 1},
    }


def test_a_journey_cannot_publish_a_decide_step_without_a_live_table_or_its_outcomes(
    world,
):
    ctx = lifecycle.check_context(world.session)
    journey, problems = lifecycle.create_journey(
        world.session, ROUTING, ctx, None, allow_problems=True
    )
    assert any("with a published version" in p.message for p in problems)
    publish_table(world)
    wrong = json.loads(json.dumps(ROUTING))
    wrong["edges"][1]["port"] = "gold"
    lifecycle.replace_draft(world.session, journey, wrong, ctx, None)
    try:
        lifecycle.publish(
            world.session, journey, lifecycle.check_context(world.session), None
        )
    except JourneyError as error:
        messages = [p.message for p in error.problems]
    else:
        raise AssertionError("published a decide step with an output the table lacks")
    assert any("output “gold”" in m for m in messages), messages
    assert any("connect its “premium” output" in m for m in messages), messages


def test_publishing_a_table_whose_outcomes_no_longer_match_a_live_journey_is_refused(
    world,
):
    row = publish_table(world)
    world.publish(ROUTING)
    changed = json.loads(json.dumps(TABLE))
    changed["rules"][1]["outcome"] = "gold"
    store.replace_draft(world.session, row, changed, None)
    try:
        store.publish(world.session, row, None)
    except store.DecisionError as error:
        assert error.status == 409
        assert "“Support routing”" in str(error)
    else:
        raise AssertionError("published outcomes a live journey does not connect")
    world.session.rollback()
    # The same outcomes with other values publish, and restore brings an old draft back.
    changed["rules"][1]["outcome"] = "premium"
    changed["default"]["values"]["sla_hours"] = 24
    store.replace_draft(world.session, row, changed, None)
    assert store.publish(world.session, row, None).number == 2
    store.restore_version(world.session, row, 1, None)
    world.session.commit()
    assert row.draft["default"]["values"]["sla_hours"] == 48
    assert row.live_version == 2
    actions = world.session.scalars(
        select(AuditEntry.action).where(AuditEntry.target_type == "decision")
    ).all()
    assert actions == [
        "decision.create",
        "decision.publish",
        "decision.draft",
        "decision.publish",
        "decision.draft",
        "decision.restore_version",
    ]


def test_a_channel_asks_the_table_in_real_time(world):
    publish_table(world)
    world.post(
        {
            "type": "hello",
            "customer": {"email": "vip@example.com"},
            "traits": {"tier": "vip"},
        },
        slug="email",
    )
    client = api_client(world.client, world.session, Role.viewer)
    answer = client.post(
        "/api/v1/decide/support_tier", json={"customer": "email:vip@example.com"}
    )
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert {k: body[k] for k in ("outcome", "values", "rule", "version")} == {
        "outcome": "premium",
        "values": {"queue": "vip", "sla_hours": 1},
        "rule": 1,
        "version": 1,
    }
    assert "customer.traits.tier" in body["reason"] or "tier" in body["reason"]
    # What the channel knows now decides too; an unknown customer has no traits.
    cart = client.post(
        "/api/v1/decide/support_tier",
        json={"customer": "email:new@example.com", "context": {"cart_value": 900}},
    ).get_json()
    assert (cart["outcome"], cart["rule"], cart["profile_id"]) == ("premium", 2, None)
    plain = client.post(
        "/api/v1/decide/support_tier", json={"customer": "email:new@example.com"}
    ).get_json()
    assert (plain["outcome"], plain["rule"]) == ("self_service", None)
    # Clear errors: an unknown table, a table never published, a malformed request.
    assert (
        client.post("/api/v1/decide/nope", json={"customer": "id:1"}).status_code == 404
    )
    bad = client.post("/api/v1/decide/support_tier", json={"customer": 3})
    assert bad.status_code == 422 and bad.get_json()["error"]["field"] == "customer"
    counted = store.counts(
        world.session, "support_tier", world.session.scalar(select(AuditEntry.at))
    )
    assert counted == {
        "premium": {"api": 2, "journeys": 0},
        "self_service": {"api": 1, "journeys": 0},
    }


def test_a_channel_may_ask_by_its_inbound_signature_instead_of_a_token(world):
    publish_table(world)
    body = json.dumps({"customer": "id:someone"})
    url = "/api/v1/decide/support_tier?channel=web"
    headers = signed_headers(world.secrets["web"], body)
    signed = world.client.post(url, data=body, headers=headers)
    assert signed.status_code == 200, signed.get_json()
    assert signed.get_json()["outcome"] == "self_service"
    # The same signed request sent again is refused: it cannot be replayed elsewhere.
    again = world.client.post(
        "/api/v1/decide/support_tier?channel=web", data=body, headers=headers
    )
    assert again.status_code == 409, again.get_json()
    assert again.get_json()["error"]["code"] == "replayed"
    forged = world.client.post(
        url, data=body, headers=signed_headers(world.secrets["email"], body)
    )
    assert forged.status_code == 401
    assert forged.get_json()["error"]["code"] == "bad_signature"
    unsigned = world.client.post("/api/v1/decide/support_tier", data=body)
    assert unsigned.status_code == 401
    assert unsigned.get_json()["error"]["code"] == "unauthorized"
    assert unsigned.headers["WWW-Authenticate"].startswith("Bearer")


def test_the_api_creates_drafts_publishes_and_names_each_problem(client, session):
    marketer = api_client(client, session, Role.marketer)
    made = marketer.post("/api/v1/decisions", json=TABLE)
    assert made.status_code == 201, made.get_json()
    assert made.headers["Location"].endswith("/api/v1/decisions/support_tier")
    assert made.get_json()["live_version"] is None
    again = marketer.post("/api/v1/decisions", json=TABLE)
    assert again.status_code == 409
    broken = {**TABLE, "rules": [{"when": {"field": "x"}, "outcome": "default"}]}
    refused = marketer.put("/api/v1/decisions/support_tier/draft", json=broken)
    assert refused.status_code == 422
    fields = {p["field"] for p in refused.get_json()["problems"]}
    assert {"rules[0].when", "rules[0].outcome"} <= fields
    stale = marketer.put(
        "/api/v1/decisions/support_tier/draft", json=TABLE, headers={"If-Match": "7"}
    )
    assert stale.status_code == 412
    published = marketer.post("/api/v1/decisions/support_tier/publish")
    assert published.get_json()["live_version"] == 1
    read = marketer.get("/api/v1/decisions/support_tier").get_json()
    assert read["live"]["default"]["outcome"] == "self_service"
    listed = marketer.get("/api/v1/decisions").get_json()
    assert [d["key"] for d in listed["decisions"]] == ["support_tier"]
    viewer = api_client(client, session, Role.viewer)
    assert viewer.post("/api/v1/decisions/support_tier/publish").status_code == 403


def test_answers_are_counted_together_and_a_revoked_token_is_refused(
    world, monkeypatch
):
    from webapp.api import decisions

    publish_table(world)
    client = api_client(world.client, world.session, Role.viewer)
    monkeypatch.setattr(decisions, "FLUSH_SECONDS", 3600)
    since = world.session.scalar(select(AuditEntry.at))

    def ask():
        answer = client.post("/api/v1/decide/support_tier", json={"customer": "id:x"})
        assert answer.status_code == 200

    decisions._flushed[0] = float("-inf")  # no write yet: this answer writes
    ask()
    ask()
    ask()
    world.session.rollback()
    assert store.counts(world.session, "support_tier", since) == {
        "self_service": {"api": 1, "journeys": 0}
    }
    decisions._flushed[0] = float("-inf")
    ask()
    world.session.rollback()
    assert store.counts(world.session, "support_tier", since) == {
        "self_service": {"api": 4, "journeys": 0}
    }
    # A revoked token is refused once the few seconds it is remembered have passed.
    from engine.models import ApiToken, utcnow

    for token in world.session.scalars(select(ApiToken)):
        token.revoked_at = utcnow()
    world.session.commit()
    decisions._tokens.clear()
    refused = client.post("/api/v1/decide/support_tier", json={"customer": "id:x"})
    assert refused.status_code == 401


def test_a_decide_step_may_take_its_error_output_when_the_table_is_gone(
    world, recorders
):
    row = publish_table(world)
    routing = json.loads(json.dumps(ROUTING))
    routing["nodes"].append(
        {
            "id": "sorry",
            "type": "send",
            "config": {"channel": "sms", "message": {"text": "sorry"}},
        }
    )
    routing["edges"] += [
        {"from": "tier", "port": "error", "to": "sorry"},
        {"from": "sorry", "to": "end"},
    ]
    world.publish(routing)
    row.live_version = None  # as if the table had no live version any more
    world.session.commit()
    store.forget()
    world.post({"type": "ticket_opened", "customer": {"id": "ada"}})
    assert [r["body"]["message"] for r in recorders["sms"].delivered()] == [
        {"text": "sorry"}
    ]
