from datetime import UTC, datetime, timedelta

import pytest

from engine.language import nodes
from engine.language.nodes import CheckContext, NodeError, Resume, RunContext
from engine.language.nodes.split import bucket
from engine.language.nodes.webhook import url_problem

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # a Monday
CHANNELS = CheckContext(channels=frozenset({"email", "sms", "app"}))


def run(type_name, config, scope=None, resume=None, now=NOW, key="c-1", node_id="n1"):
    scope = scope or {
        "trigger": {},
        "event": {},
        "customer": {"id": key, "traits": {}},
        "context": {},
    }
    return nodes.get(type_name).run(
        RunContext(node_id, config, scope, now, key, resume)
    )


def problems(type_name, config, ctx=CHANNELS):
    return nodes.get(type_name).check(config, ctx)


def test_every_node_type_of_the_design_is_registered():
    assert set(nodes.names()) == {
        "trigger",
        "wait",
        "wait_until",
        "wait_for_event",
        "condition",
        "switch",
        "split",
        "decide",
        "send",
        "webhook",
        "update_profile",
        "exit",
    }
    for name in nodes.names():
        kind = nodes.get(name)
        assert kind.type_name == name and kind.label and kind.help


def test_an_unknown_type_is_a_clear_error():
    with pytest.raises(
        nodes.UnknownNodeType, match="'sms_blast' is not a node type; use one of"
    ):
        nodes.get("sms_blast")


def test_unknown_settings_are_named():
    assert problems("wait", {"duration": "PT1H", "durration": "PT2H"}) == [
        ("durration", "“durration” is not a setting of this step; remove it")
    ]


def test_trigger_checks_and_runs():
    assert problems("trigger", {"event": "cart_abandoned"}) == []
    assert problems("trigger", {})[0] == (
        "event",
        "name the event that starts the journey, e.g. cart_abandoned",
    )
    assert problems("trigger", {"event": " "})[0] == problems("trigger", {})[0]
    assert problems("send", {"channel": "", "message": {"text": "x"}})[0] == (
        "channel",
        "choose the channel to send through",
    )
    assert problems("trigger", {"event": "x", "where": {"op": "eq"}})
    assert run("trigger", {"event": "x"}).port == "out"


def test_wait_parks_then_leaves():
    assert problems("wait", {"duration": "PT10M"}) == []
    assert (
        "cannot be read as a length of time"
        in problems("wait", {"duration": "10 minutes"})[0][1]
    )
    assert "zero" in problems("wait", {"duration": "PT0S"})[0][1]
    assert "negative" in problems("wait", {"duration": "-PT5M"})[0][1]
    parked = run("wait", {"duration": "P1DT2H"})
    assert parked.wake_at == NOW + timedelta(days=1, hours=2) and parked.port is None
    assert run("wait", {"duration": "P1M"}).wake_at == datetime(
        2026, 12, 23, 10, tzinfo=UTC
    )
    assert run("wait", {"duration": "PT10M"}, resume=Resume("timer")).port == "out"


def test_wait_for_event_has_two_ports():
    kind = nodes.get("wait_for_event")
    assert [p.name for p in kind.ports({})] == ["event", "timeout"]
    config = {"event": "order_completed", "timeout": "PT1H"}
    assert problems("wait_for_event", config) == []
    fields = [f for f, _ in problems("wait_for_event", {"timeout": "soon"})]
    assert fields == ["event", "timeout"]
    parked = run("wait_for_event", config)
    assert parked.awaits.event == "order_completed"
    assert parked.awaits.timeout_at == NOW + timedelta(hours=1)
    assert (
        run(
            "wait_for_event",
            config,
            resume=Resume("event", {"type": "order_completed"}),
        ).port
        == "event"
    )
    assert run("wait_for_event", config, resume=Resume("timer")).port == "timeout"


def test_wait_until_a_time_of_day_in_the_customer_zone():
    scope = {"customer": {"traits": {"timezone": "America/New_York"}}}
    outcome = run("wait_until", {"time": "09:00"}, scope=scope)
    # 10:00 UTC is 05:00 in New York: 09:00 there is 14:00 UTC the same day.
    assert outcome.wake_at == datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
    weekend = run("wait_until", {"time": "09:00", "weekdays": [6, 7]}, scope=scope)
    assert weekend.wake_at == datetime(2026, 11, 28, 14, 0, tzinfo=UTC)
    no_zone = run("wait_until", {"time": "09:00"})
    assert no_zone.wake_at == datetime(
        2026, 11, 24, 9, 0, tzinfo=UTC
    )  # UTC, 09:00 passed today


def test_wait_until_a_date_trait_with_offset_and_quiet_hours():
    scope = {
        "customer": {
            "traits": {"renewal_date": "2026-12-10", "timezone": "Europe/Paris"}
        }
    }
    outcome = run(
        "wait_until", {"trait": "renewal_date", "offset": "-P3D"}, scope=scope
    )
    assert outcome.wake_at == datetime(2026, 12, 7, tzinfo=UTC)
    quiet = run(
        "wait_until",
        {
            "trait": "renewal_date",
            "offset": "-P3D",
            "quiet_hours": {"start": "21:00", "end": "08:00"},
        },
        scope=scope,
    )
    assert quiet.wake_at == datetime(2026, 12, 7, 7, 0, tzinfo=UTC)  # 08:00 in Paris
    passed = run(
        "wait_until", {"trait": "renewal_date", "offset": "-P30D"}, scope=scope
    )
    assert passed.port == "out" and "passed" in passed.detail["reason"]
    missing = run("wait_until", {"trait": "birthday"}, scope=scope)
    assert missing.port == "out" and "holds no date" in missing.detail["reason"]


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({}, "time"),
        ({"time": "09:00", "trait": "x"}, "time"),
        ({"time": "9am"}, "time"),
        ({"time": "09:00", "weekdays": [0, 8]}, "weekdays"),
        ({"trait": "renewal", "offset": "three days"}, "offset"),
        ({"trait": "renewal", "quiet_hours": {"start": "late"}}, "quiet_hours"),
        ({"trait": "renewal", "weekdays": [1]}, "weekdays"),
    ],
)
def test_wait_until_config_problems(config, field):
    assert field in [f for f, _ in problems("wait_until", config)]


def test_condition_takes_true_or_false():
    config = {"rule": {"field": "customer.traits.tier", "op": "eq", "value": "vip"}}
    vip = {"customer": {"traits": {"tier": "vip"}}}
    assert run("condition", config, scope=vip).port == "true"
    assert run("condition", config).port == "false"
    assert "is vip: yes" in run("condition", config, scope=vip).detail["reason"]
    assert problems("condition", {})[0] == ("rule", "add a condition")


def test_switch_takes_the_first_matching_case_or_default():
    config = {
        "cases": [
            {
                "port": "big",
                "rule": {"field": "event.properties.value", "op": "gte", "value": 100},
            },
            {
                "port": "some",
                "rule": {"field": "event.properties.value", "op": "gt", "value": 0},
            },
        ]
    }
    assert [p.name for p in nodes.get("switch").ports(config)] == [
        "big",
        "some",
        "default",
    ]
    assert (
        run("switch", config, scope={"event": {"properties": {"value": 500}}}).port
        == "big"
    )
    assert (
        run("switch", config, scope={"event": {"properties": {"value": 5}}}).port
        == "some"
    )
    assert run("switch", config, scope={"event": {"properties": {}}}).port == "default"
    assert problems("switch", config) == []
    bad = {
        "cases": [
            {"port": "default", "rule": {"field": "event.x", "op": "exists"}},
            {"port": "Big One"},
        ]
    }
    fields = [f for f, _ in problems("switch", bad)]
    assert fields == ["cases[0].port", "cases[1].port", "cases[1].rule"]


def test_split_is_stable_per_customer_and_close_to_its_percents():
    config = {
        "branches": [
            {"port": "a", "percent": 70},
            {"port": "b", "percent": 20},
            {"port": "c", "percent": 10, "holdout": True},
        ]
    }
    assert problems("split", config) == []
    first = run("split", config, key="c-42").port
    assert all(run("split", config, key="c-42").port == first for _ in range(5))
    counts = {"a": 0, "b": 0, "c": 0}
    for n in range(5000):
        counts[run("split", config, key=f"c-{n}").port] += 1
    assert (
        3300 < counts["a"] < 3700
        and 800 < counts["b"] < 1200
        and 350 < counts["c"] < 650
    )
    held = next(
        run("split", config, key=f"k{n}")
        for n in range(999)
        if run("split", config, key=f"k{n}").port == "c"
    )
    assert held.detail["holdout"] is True
    assert bucket("c-1", "n1") != bucket("c-1", "n2") or bucket("c-2", "n1") != bucket(
        "c-2", "n2"
    )


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"branches": [{"port": "a", "percent": 100}]}, "at least two branches"),
        (
            {"branches": [{"port": "a", "percent": 50}, {"port": "b", "percent": 40}]},
            "add up to 90%; make them add up to 100%",
        ),
        (
            {"branches": [{"port": "a", "percent": 50}, {"port": "a", "percent": 50}]},
            "two branches are named “a”",
        ),
        (
            {"branches": [{"port": "a", "percent": 0}, {"port": "b", "percent": 100}]},
            "above 0",
        ),
        (
            {
                "branches": [
                    {"port": "a", "percent": 50, "holdout": "yes"},
                    {"port": "b", "percent": 50},
                ]
            },
            "holdout: yes or no",
        ),
    ],
)
def test_split_config_problems(config, message):
    assert any(message in m for _, m in problems("split", config))


def test_send_renders_its_message_and_names_unknown_channels():
    config = {
        "channel": "email",
        "message": {"subject": "Hi {{ customer.traits.first_name }}"},
        "fallback_channel": "sms",
    }
    assert problems("send", config) == []
    outcome = run("send", config, scope={"customer": {"traits": {"first_name": "Ada"}}})
    assert outcome.port == "out"
    assert (
        outcome.sends[0].message == {"subject": "Hi Ada"}
        and outcome.sends[0].fallback_channel == "sms"
    )
    assert [p.name for p in nodes.get("send").ports(config)] == [
        "out",
        "error",
        "suppressed",
    ]
    assert not nodes.get("send").ports(config)[1].required
    bad = {
        "channel": "fax",
        "message": {"subject": "{% if %}"},
        "fallback_channel": "fax",
    }
    found = dict(problems("send", bad))
    assert "there is no channel “fax”" in found["channel"]
    assert "does not parse" in found["message.subject"]
    assert "another channel" in found["fallback_channel"]


def test_a_template_that_fails_at_send_time_is_a_node_error():
    config = {
        "channel": "email",
        "message": {"body": "{% for i in (1..5000) %}x{% endfor %}"},
    }
    with pytest.raises(NodeError, match="loops would run more than 1,000 times"):
        run("send", config)


@pytest.mark.parametrize(
    ("url", "allowed", "fragment"),
    [
        ("https://hooks.example.com/x", set(), None),
        ("http://hooks.example.com/x", set(), "must start with https://"),
        ("https://127.0.0.1/x", set(), "a loopback address"),
        ("https://10.0.0.8/x", set(), "a private address"),
        ("https://169.254.169.254/latest", set(), "a cloud metadata address"),
        ("https://[::1]/x", set(), "a loopback address"),
        ("https://localhost/x", set(), "a loopback address"),
        ("https://localhost./x", set(), "a loopback address"),
        ("https://api.localhost/x", set(), "a loopback address"),
        ("https://db.internal/x", set(), "a local name"),
        ("https://user:pw@example.com/x", set(), "credentials"),
        ("not a url", set(), "not a full URL"),
        ("http://localhost:8080/x", {"localhost"}, None),
    ],
)
def test_webhook_urls_are_guarded(url, allowed, fragment):
    message = url_problem(url, frozenset(allowed))
    assert (message is None) if fragment is None else (fragment in message)


def test_webhook_renders_body_and_headers():
    config = {
        "url": "https://example.com/h",
        "body": {"who": "{{ customer.id }}", "n": 3},
        "headers": {"X-Id": "{{ customer.id }}"},
    }
    assert problems("webhook", config) == []
    outcome = run("webhook", config, key="c-9", scope={"customer": {"id": "c-9"}})
    assert outcome.webhooks[0].body == {"who": "c-9", "n": 3}
    assert outcome.webhooks[0].headers == {"X-Id": "c-9"}
    assert dict(
        problems("webhook", {"url": "https://example.com", "headers": {"X": 1}})
    )["headers"]
    framing = {"Transfer-Encoding": "chunked", "content-length": "3", "X-Id": "a"}
    assert dict(
        problems("webhook", {"url": "https://example.com", "headers": framing})
    )["headers"] == (
        "Transfer-Encoding, content-length: the HTTP client sets these headers itself"
    )


def test_update_profile_sets_unsets_and_counts():
    config = {
        "set": {"greeted": True, "hello": "Hi {{ customer.traits.first_name }}"},
        "unset": ["draft"],
        "increment": {"visits": 2},
    }
    assert problems("update_profile", config) == []
    outcome = run(
        "update_profile", config, scope={"customer": {"traits": {"first_name": "Ada"}}}
    )
    assert outcome.profile.set == {"greeted": True, "hello": "Hi Ada"}
    assert outcome.profile.unset == ["draft"] and outcome.profile.increment == {
        "visits": 2
    }
    assert "at least one trait" in problems("update_profile", {})[0][1]
    twice = problems("update_profile", {"set": {"a": 1}, "unset": ["a"]})
    assert ("set", "the trait “a” is changed twice; change it once") in twice
    assert dict(problems("update_profile", {"increment": {"a": "one"}}))["increment"]


def test_exit_ends_the_run():
    assert nodes.get("exit").ports({}) == []
    outcome = run("exit", {})
    assert outcome.port is None and not outcome.waits
    assert problems("exit", {"x": 1}) == [
        ("x", "“x” is not a setting of this step; remove it")
    ]
