"""Each step says what it does in one plain sentence, from its config alone."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import durations
from engine.journeys import starters
from engine.language import nodes, rules, templates

CHANNELS = {"email": "Email", "sms": "SMS", "app": "Mobile app"}


def summary(type_name, config, channels=CHANNELS):
    return nodes.summarize(type_name, config, channels)


@pytest.mark.parametrize(
    ("type_name", "config", "expected"),
    [
        (
            "trigger",
            {
                "event": "cart_abandoned",
                "where": {
                    "all": [
                        {
                            "field": "event.properties.cart_value",
                            "op": "gte",
                            "value": 50,
                        }
                    ]
                },
            },
            "When cart_abandoned where cart_value ≥ 50",
        ),
        ("trigger", {"event": ""}, "When …"),
        ("wait", {"duration": "PT90M"}, "Wait 1 hour 30 minutes"),
        ("wait", {"duration": "P14D"}, "Wait 2 weeks"),
        ("wait", {"duration": "soon"}, "Wait soon"),
        (
            "wait_for_event",
            {"event": "order_completed", "timeout": "PT3S"},
            "Wait for order_completed, up to 3 seconds",
        ),
        (
            "wait_for_event",
            {
                "event": "app_opened",
                "timeout": "P3D",
                "where": {"field": "event.properties.os", "op": "eq", "value": "ios"},
            },
            "Wait for app_opened where os is ios, up to 3 days",
        ),
        (
            "wait_until",
            {"time": "09:00", "weekdays": [1, 2, 3, 4, 5]},
            "Wait until 09:00 their time on Mon–Fri",
        ),
        (
            "wait_until",
            {"time": "18:30", "weekdays": [6, 7]},
            "Wait until 18:30 their time on weekends",
        ),
        (
            "wait_until",
            {"time": "07:00", "weekdays": [1, 3]},
            "Wait until 07:00 their time on Mon, Wed",
        ),
        (
            "wait_until",
            {
                "trait": "renewal_date",
                "offset": "-P3D",
                "quiet_hours": {"start": "21:00", "end": "08:00"},
            },
            "Wait until 3 days before renewal_date, not 21:00–08:00",
        ),
        (
            "wait_until",
            {"trait": "birthday", "offset": "PT2H"},
            "Wait until 2 hours after birthday",
        ),
        ("wait_until", {"trait": "birthday"}, "Wait until birthday"),
        (
            "condition",
            {
                "rule": {
                    "any": [
                        {"field": "customer.traits.tier", "op": "eq", "value": "vip"},
                        {
                            "field": "customer.traits.lifetime_value",
                            "op": "gte",
                            "value": 1000,
                        },
                    ]
                }
            },
            "If tier is vip or lifetime_value ≥ 1000",
        ),
        (
            "condition",
            {
                "rule": {
                    "all": [
                        {"not": {"field": "customer.traits.plan", "op": "exists"}},
                        {
                            "any": [
                                {
                                    "field": "event.properties.items",
                                    "op": "lt",
                                    "value": 2,
                                },
                                {"field": "customer.email", "op": "ends", "value": "x"},
                            ]
                        },
                    ]
                }
            },
            "If plan is not set and (items < 2 or email ? x)",
        ),
        (
            "switch",
            {
                "cases": [
                    {
                        "port": "vip",
                        "rule": {
                            "field": "customer.traits.tier",
                            "op": "eq",
                            "value": "vip",
                        },
                    },
                    {
                        "port": "urgent",
                        "rule": {
                            "field": "event.properties.priority",
                            "op": "in",
                            "value": ["high", "urgent"],
                        },
                    },
                ]
            },
            "Switch: vip if tier is vip; urgent if priority is high or urgent; otherwise if none of these",
        ),
        (
            "split",
            {"branches": [{"port": "a", "percent": 50}, {"port": "b", "percent": 50}]},
            "Split 50% a / 50% b",
        ),
        (
            "split",
            {
                "branches": [
                    {"port": "treat", "percent": 90},
                    {"port": "control", "percent": 10, "holdout": True},
                ]
            },
            "Split 90% treat / 10% control (holdout)",
        ),
        (
            "send",
            {
                "channel": "email",
                "fallback_channel": "sms",
                "message": {"subject": "You left {{ trigger.properties.items }} items"},
            },
            "Send via Email (SMS if it fails): You left [items] items",
        ),
        (
            "send",
            {
                "channel": "push",
                "message": {
                    "body": "x" * 10,
                    "title": "Welcome back, {{ customer.traits.first_name | default: 'friend' }}, we kept your cart",
                },
            },
            "Send via push: Welcome back, [first_name], we kept…",
        ),
        ("send", {"channel": "", "message": {"text": ""}}, "Send via a channel"),
        (
            "webhook",
            {"url": "https://chat.example.com/start?x=1"},
            "Call chat.example.com/start",
        ),
        ("webhook", {"url": "https://"}, "Call …"),
        (
            "update_profile",
            {
                "set": {"last_recovery": "{{ trigger.occurred_at }}"},
                "increment": {"recoveries": 1},
            },
            "Set last_recovery, recoveries + 1",
        ),
        (
            "update_profile",
            {"increment": {"credits": -2.5}, "unset": ["draft", "cart"]},
            "Set credits − 2.5, clear draft and cart",
        ),
        ("update_profile", {}, "Change …"),
        ("exit", {}, "End the journey"),
    ],
)
def test_summary_says_what_the_step_does(type_name, config, expected):
    assert summary(type_name, config) == expected


def test_every_node_type_has_its_own_summary():
    generic = nodes.NodeType.summary
    assert [
        name for name in nodes.names() if type(nodes.get(name)).summary is generic
    ] == []


def test_an_unknown_type_is_named_not_raised():
    assert summary("teleport", {}) == "Unknown step type 'teleport'"


STARTER_SUMMARIES = {
    "cart_recovery": {
        "start": "When cart_abandoned where cart_value ≥ 50",
        "wait": "Wait for order_completed, up to 1 hour",
        "vip": "If tier is vip",
        "call": "Send via support-desk: Call [first_name]",
        "mail": "Send via Email (SMS if it fails): Still thinking?",
        "end": "End the journey",
    },
    "vip_routing": {
        "start": "When ticket_opened",
        "route": "Switch: vip if tier is vip; urgent if priority is high or urgent or plan is not set; otherwise if none of these",
        "premium": "Send via support-desk: Call [first_name] about [topic]",
        "ab": "Split 45% bot / 45% article / 10% holdout",
        "bot": "Call chat.example.com/start",
        "article": "Send via Email (SMS if it fails): Help with [topic]",
        "count": "Set last_topic, tickets + 1",
        "pause": "Wait 1 day",
        "morning": "Wait until 09:00 their time on Mon–Fri",
        "end": "End the journey",
    },
    "onboarding": {
        "start": "When signed_up",
        "welcome": "Send via Email: Welcome, [first_name]",
        "wait": "Wait for app_opened, up to 2 days",
        "tip": "Send via Mobile app: Create your first project",
        "nudge": "Send via SMS: Your account is ready: open the app to…",
        "end": "End the journey",
    },
    "form_resume": {
        "start": "When form_started where form starts with loan",
        "wait": "Wait for form_submitted, up to 30 minutes",
        "remind": "Wait until 3 days before renewal_date, not 21:00–08:00",
        "app": "Send via Mobile app (Email if it fails): Pick up where you left off",
        "again": "Wait for form_submitted, up to 1 day",
        "mark": "Set form_abandoned, clear form_draft",
        "end": "End the journey",
    },
}


@pytest.mark.parametrize("name", sorted(STARTER_SUMMARIES))
def test_every_step_of_every_starter_reads_as_it_does(name):
    document = starters.document(name)
    found = {n["id"]: summary(n["type"], n["config"]) for n in document["nodes"]}
    assert found == STARTER_SUMMARIES[name]


def test_starters_are_all_covered():
    assert set(STARTER_SUMMARIES) == {s.key for s in starters.CATALOGUE}


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
KEYS = st.sampled_from(
    ["event", "where", "duration", "timeout", "time", "weekdays", "trait", "offset", "quiet_hours",
     "rule", "cases", "branches", "channel", "fallback_channel", "message", "url", "set", "unset",
     "increment", "port", "percent", "holdout"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    type_name=st.sampled_from(list(nodes.names())),
    config=st.dictionaries(KEYS, JSON, max_size=4) | JSON,
)
def test_a_summary_never_raises_whatever_a_draft_holds(type_name, config):
    text = summary(type_name, config)
    assert isinstance(text, str) and text


@pytest.mark.parametrize(
    ("text", "words"),
    [("PT90M", "1 hour 30 minutes"), ("P1D", "1 day"), ("P21D", "3 weeks"), ("P1M2DT3H", "1 month 2 days 3 hours"),
     ("-P3D", "3 days"), ("PT0S", "no time"), ("P1Y", "1 year"), ("nope", "nope"), (None, "")],
)  # fmt: skip
def test_durations_in_words(text, words):
    assert durations.in_words(text) == words


@pytest.mark.parametrize(
    ("source", "gist"),
    [
        ("Hi {{ customer.traits.first_name }}!", "Hi [first_name]!"),
        ("{{ 'x' | upcase }} and {{ a.b[0].c }}", "{{ … }} and {{ a.b[0].c }}"),
        ("{% if vip %}Dear VIP{% endif %}  thanks", "Dear VIP thanks"),
        # A name of the template's own (a loop's, an assigned one) is not a slip.
        ("{% for i in event.properties.items %}{{ i.name }}{% endfor %}", "[name]"),
        ("{% assign n = customer.traits.first_name %}Hi {{ n }}", "Hi [n]"),
        (
            "{{ customer.traits.tags[0] }} and {{ first_name }}",
            "[tags] and {{ first_name }}",
        ),
        (
            "one two three four five six seven eight nine ten",
            "one two three four five six seven eight…",
        ),
        ("x" * 60, "x" * 40 + "…"),
        (None, ""),
    ],
)
def test_template_gist(source, gist):
    assert templates.gist(source) == gist


def test_a_rule_field_reads_by_its_last_part_and_customer_id_by_name():
    assert (
        rules.describe({"field": "customer.id", "op": "starts_with", "value": "c-"})
        == "customer id starts with c-"
    )
    assert (
        rules.describe(
            {"not": {"field": "event.properties.n", "op": "gt", "value": 1.0}}
        )
        == "not (n > 1)"
    )
