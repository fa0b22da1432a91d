"""Plain words: the messages a marketer reads on pages (the problems of broken steps and
journeys and of imported files, step summaries and help, form errors, preview and flash
messages) name no field path, ISO 8601 duration, output id or Python value; the API keeps the
paths in `field`, never in `message`."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
from werkzeug.datastructures import MultiDict

from engine import durations
from engine.language import graph, nodes, rules, templates
from webapp.designer import node_forms

ROOT = Path(__file__).resolve().parents[2]

# What a developer writes and a marketer should never have to read.
JARGON = {
    "a field path": re.compile(
        r"\b(config|entry|goal|exit_on|nodes|edges|rule|where|cases|branches|message|"
        r"set|unset|increment|body|headers|port|within|reentry|max_entries)"
        r"(\.[a-z_]+|\[\d+\])"
    ),
    "an index": re.compile(r"\[\d+\]"),
    "a step id before a colon": re.compile(r"^[a-z_]+\d*: "),
    "an ISO 8601 duration": re.compile(r"(?<![A-Za-z])-?P(T?\d+[YMWDHS])+(?![A-Za-z])"),
    "an output id": re.compile(
        r"['‘“\"](out|error|timeout|event|true|false)['’”\"]|\berror\?|\bports?\b"
    ),
    "a Python value": re.compile(
        r"(?<![A-Za-z])'[^'\s][^']*'(?![A-Za-z])|\bNone\b|\bTrue\b|\bFalse\b|\{'|\['"
        r"| object at |\bdict\b|\blist of\b|\bnon-empty\b|\bnull\b"
    ),
    "a developer's word": re.compile(
        r"\b(node|nodes|config|schema|key|keys|must be an object)\b"
    ),
}


def _jargon(message: str) -> list[str]:
    return [what for what, pattern in JARGON.items() if pattern.search(message)]


# Broken configs of every node type: empty, a setting it does not have, wrong shapes.
BROKEN: dict[str, list[dict[str, Any]]] = {
    "trigger": [{}, {"event": " "}, {"event": "a", "where": {"field": "x"}}],
    "wait": [{}, {"duration": "soon"}, {"duration": "-P3D"}, {"duration": "PT0S"}],
    "wait_until": [
        {},
        {"time": "9", "weekdays": [0, 9], "timezone_trait": ""},
        {"trait": "", "offset": "later", "quiet_hours": {"start": "x"}},
        {"time": "09:00", "trait": "renewal"},
    ],
    "wait_for_event": [{}, {"event": "", "timeout": "P0D", "where": []}],
    "condition": [
        {},
        {"rule": {"all": []}},
        {"rule": {"any": [{"field": "customer.x", "op": "between", "value": 1}]}},
        {"rule": {"all": [{"field": "shoe.size", "op": "in", "value": 3}], "any": []}},
        {"rule": {"not": {"field": "", "op": "exists", "value": 1, "extra": 2}}},
        {"rule": {"field": "event.x", "op": "eq"}},
        {"rule": [1]},
    ],
    "switch": [
        {},
        {"cases": [1]},
        {
            "cases": [
                {"port": "default", "rule": {}},
                {"port": "Big Spenders", "rule": {"field": "x"}},
                {"port": "a", "rule": {"field": "event.a", "op": "exists"}},
                {"port": "a", "rule": {"field": "event.a", "op": "exists"}, "x": 1},
            ]
        },
    ],
    "split": [
        {},
        {"branches": [{"port": "a", "percent": 50}]},
        {
            "branches": [
                {"port": "a", "percent": 0, "holdout": "yes"},
                {"port": "a", "percent": 20},
                "b",
            ]
        },
        {"branches": [{"port": "a", "percent": 30}, {"port": "b", "percent": 30}]},
    ],
    "decide": [{}, {"table": "Support Tier!"}, {"table": "support_tier", "x": 1}],
    "send": [
        {},
        {"channel": "carrier-pigeon", "message": {}},
        {"channel": "email", "fallback_channel": "email", "message": {"s": "{% if %}"}},
        {"channel": "email", "message": {"s": ["x"]}},
        {"channel": "email", "message": "hi"},
    ],
    "webhook": [
        {},
        {"url": "nope"},
        {"url": "http://example.com"},
        {"url": "https://u:p@example.com"},
        {"url": "https://localhost/x", "body": {"a": "{{"}},
        {"url": "https://10.0.0.1/x", "headers": 3},
    ],
    "update_profile": [
        {},
        {"set": {"a": "{{"}, "unset": [1], "increment": {"b": "x"}},
        {"set": {"a": 1}, "unset": ["a"]},
    ],
    "exit": [{"why": "done"}],
}


def _node_problems() -> list[str]:
    ctx = nodes.CheckContext(channels=frozenset({"email", "sms"}))
    found = []
    for type_name, configs in BROKEN.items():
        for config in configs:
            found += [message for _, message in nodes.get(type_name).check(config, ctx)]
    return found


def _document(**changes: Any) -> dict[str, Any]:
    document = {
        "schema": graph.SCHEMA,
        "name": "Welcome",
        "nodes": [
            {"id": "start", "type": "trigger", "config": {"event": "signed_up"}},
            {
                "id": "wait",
                "type": "wait_for_event",
                "config": {"event": "a", "timeout": "P1D"},
            },
            {
                "id": "ask",
                "type": "condition",
                "config": {"rule": {"field": "event.x", "op": "exists"}},
            },
            {
                "id": "mail",
                "type": "send",
                "config": {"channel": "email", "message": {"s": "Hi"}},
            },
            {"id": "end", "type": "exit", "config": {}},
        ],
        "edges": [
            {"from": "start", "to": "wait"},
            {"from": "wait", "port": "event", "to": "end"},
            {"from": "wait", "port": "event", "to": "mail"},
            {"from": "wait", "port": "nope", "to": "end"},
            {"from": "mail", "to": "ghost"},
            {"from": "ghost", "to": "end"},
            {"from": "mail", "port": "error", "to": "start"},
            {"from": "ask", "port": "true", "to": "ask"},
        ],
    }
    document.update(changes)
    return document


def _journey_problems() -> list[str]:
    ctx = nodes.CheckContext(channels=frozenset({"email"}))
    documents = [
        _document(),
        _document(
            name=" ",
            entry={"reentry": "sometimes", "max_entries": 0},
            goal={"event": "", "within": "a week", "where": {"field": "x"}},
            exit_on=[{"event": " ", "where": {"all": []}}],
        ),
        _document(
            nodes=[
                {"id": "a", "type": "teleport", "config": {}},
                {"id": "a", "type": "exit", "config": {}},
                {"id": "b", "type": "trigger", "config": {"event": "x"}},
                {"id": "c", "type": "trigger", "config": {"event": "y"}},
            ],
            edges=[],
        ),
        _document(nodes=[], edges=[]),
    ]
    found = []
    for document in documents:
        _, problems = graph.check(document, ctx)
        found += [problem.message for problem in problems]
    return found


# Documents an import may bring: not a journey, another format, steps and connections that
# cannot be read, settings a journey does not have.
IMPORTED: list[Any] = [
    [1],
    {"schema": "throughline.journey/v9", "name": "x"},
    {"schema": None, "name": "x"},
    {
        "name": 3,
        "colour": "red",
        "description": 4,
        "nodes": "start",
        "edges": {"from": "a"},
        "entry": "always",
        "goal": "order_completed",
        "exit_on": {"event": "x"},
        "layout": [],
    },
    {
        "schema": graph.SCHEMA,
        "name": "x",
        "nodes": [
            "start",
            {"id": "a b", "kind": "send", "x": 1, "config": [], "label": 5},
            {"id": "c", "type": "exit", "label": "two\nlines"},
        ],
        "edges": [{"from": "a"}, {"from": "a", "to": "c", "via": "x"}, 3],
        "entry": {"reentry": "never", "limit": 2},
        "goal": {"event": 1, "window": "P7D"},
        "exit_on": [3, {"where": {}}, {"event": "x", "after": 1}],
    },
]


def _import_problems() -> list[str]:
    found = []
    for raw in IMPORTED:
        document, problems = graph.check(raw)
        assert document is None
        found += [problem.message for problem in problems]
    return found


# Configs whose one-line summary names every path, the switch's default one included.
SUMMARISED: dict[str, dict[str, Any]] = {
    "switch": {
        "cases": [
            {
                "port": "vip",
                "rule": {"field": "customer.traits.tier", "op": "eq", "value": "vip"},
            }
        ]
    },
    "split": {
        "branches": [
            {"port": "a", "percent": 50},
            {"port": "b", "percent": 50, "holdout": True},
        ]
    },
    "wait_for_event": {"event": "app_opened", "timeout": "P3D"},
    "wait": {"duration": "P1D"},
    "wait_until": {"trait": "renewal_date", "offset": "-P3D"},
}


def _summaries() -> list[str]:
    names = {"email": "Email provider"}
    found = [
        nodes.get(type_name).summary(config, names)
        for type_name, configs in BROKEN.items()
        for config in configs
    ]
    found += [
        nodes.get(type_name).summary(config, names)
        for type_name, config in SUMMARISED.items()
    ]
    return found


def _step_help() -> list[str]:
    """What the step list and each step's form say a step does."""
    return [nodes.get(type_name).help for type_name in nodes.names()]


def _preview_errors() -> list[str]:
    """What the preview says about traits typed under it."""
    from types import SimpleNamespace

    from webapp.designer.previews import _sample_traits

    found = []
    for text in ('{"first_name": Ada}', '["Ada"]', "first_name: Ada", "null"):
        _traits, error = _sample_traits(
            SimpleNamespace(sample=SimpleNamespace(data=text))
        )
        assert error, text
        found.append(error)
    return found


def _form_errors(form_app) -> list[str]:
    """What each step's form says about fields left empty or filled with nonsense."""
    found: list[str] = []

    def flatten(errors: Any) -> None:
        if isinstance(errors, dict):
            for value in errors.values():
                flatten(value)
        elif isinstance(errors, list | tuple):
            for value in errors:
                flatten(value)
        elif errors:
            found.append(str(errors))

    with form_app.test_request_context():
        for cls in node_forms.FORMS.values():
            for junk in ("", "P3D", "{'a': 1}", "-5", "x: {{"):
                blank = cls(meta={"csrf": False}, prefix="n")
                pairs = [
                    (field.name, junk)
                    for field in blank
                    if field.short_name not in {"csrf_token", "revision"}
                ]
                form = cls(formdata=MultiDict(pairs), meta={"csrf": False}, prefix="n")
                if hasattr(form, "set_channels"):
                    form.set_channels(["email"])
                form.validate()
                flatten(form.errors)
    return found


def _flash_messages() -> list[str]:
    """The words of every flash() call in the web app (the text around its values), and of
    the journey errors that views flash as they are."""
    found = []
    calls = [(path, "flash", 0) for path in (ROOT / "webapp").rglob("*.py")]
    calls += [
        (path, "JourneyError", 1)
        for path in (ROOT / "engine" / "journeys").glob("*.py")
    ]
    for path, name, place in calls:
        for call in ast.walk(ast.parse(path.read_text())):
            if not (
                isinstance(call, ast.Call)
                and getattr(call.func, "id", getattr(call.func, "attr", "")) == name
                and len(call.args) > place
            ):
                continue
            message = call.args[place]
            if isinstance(message, ast.Constant) and isinstance(message.value, str):
                found.append(message.value)
            elif isinstance(message, ast.JoinedStr):
                found.append(
                    "".join(
                        part.value if isinstance(part, ast.Constant) else "X"
                        for part in message.values
                    )
                )
    return found


def test_every_step_type_has_broken_configs_here():
    assert set(BROKEN) == set(nodes.names())


@pytest.mark.parametrize(
    "source",
    [
        "node problems",
        "journey problems",
        "imported documents",
        "step summaries",
        "step help",
        "preview traits",
        "form errors",
        "flash messages",
        "durations",
    ],
)
def test_messages_on_pages_read_plainly(source, form_app):
    messages = {
        "node problems": _node_problems,
        "journey problems": _journey_problems,
        "imported documents": _import_problems,
        "step summaries": _summaries,
        "step help": _step_help,
        "preview traits": _preview_errors,
        "form errors": lambda: _form_errors(form_app),
        "flash messages": _flash_messages,
        "durations": lambda: [
            str(error)
            for text in ("", "soon", "-P3D", "PT0S")
            for error in _duration_errors(text)
        ],
    }[source]()
    assert messages, "nothing collected"
    wrong = {message: _jargon(message) for message in messages if _jargon(message)}
    assert wrong == {}


def test_a_switch_summary_names_its_last_path_as_the_canvas_does():
    summary = nodes.get("switch").summary(SUMMARISED["switch"], {})
    assert summary == "Switch: vip if tier is vip; otherwise if none of these"
    names = {"email": "Email provider"}
    shown = [nodes.get(t).summary(c, names) for t, c in SUMMARISED.items()]
    assert not [s for s in shown if re.search(r"\bdefault\b", s)]


def _duration_errors(text: str) -> list[Exception]:
    try:
        durations.parse(text)
    except durations.DurationError as error:
        return [error]
    return []


def test_rule_problems_keep_their_path_apart_from_their_words():
    found = rules.problems({"all": [{"field": "x", "op": "eq", "value": 1}]})
    assert found == [
        (
            "rule.all[0]",
            "the field “x” must start with trigger, event, customer or context, "
            "then a name, e.g. customer.traits.tier",
        )
    ]
    assert templates.check("{{ customer.first_name }}") is None
