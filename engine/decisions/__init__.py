"""Decision tables: routing logic kept in one place that journeys and channels both ask.

A table is a document `throughline.decision/v1`:

    {"schema": "throughline.decision/v1", "key": "support_tier", "name": "Support tier",
     "rules": [{"when": <rule>, "outcome": "premium", "values": {"queue": "vip"}}, ...],
     "default": {"outcome": "self_service", "values": {"queue": "faq"}}}

Rules are tested in order and the first whose `when` holds decides (engine.language.rules);
when none does, the default decides. A journey's `decide` step leaves by the outcome's
output, or by `default`; the values are kept in the run as `context.decisions.<key>`.
This module reads, checks and evaluates documents; `store` keeps them in SQL.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.language import rules

SCHEMA = "throughline.decision/v1"
KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
OUTCOME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
VALUE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
# Outputs every decide step has besides the outcomes: no outcome may take their names.
RESERVED = ("default", "error")
MAX_RULES = 200
MAX_VALUES_BYTES = 8_000
MAX_NAME = 200

Problems = list[tuple[str, str]]


class DecisionError(ValueError):
    """A decision request that cannot be honoured: `status` as HTTP would say it (404, 409,
    412, 422), with the document's problems as (field, sentence) pairs when that is why."""

    def __init__(
        self,
        status: int,
        message: str,
        problems: Problems | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.problems = problems or []
        self.field = field


@dataclass(frozen=True)
class Rule:
    when: Mapping[str, Any]
    outcome: str
    values: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Table:
    key: str
    name: str
    rules: tuple[Rule, ...]
    default_outcome: str
    default_values: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    @property
    def outcomes(self) -> tuple[str, ...]:
        """The outcomes rules can give, in order of first use: a decide step's outputs
        besides `default`."""
        return tuple(dict.fromkeys(rule.outcome for rule in self.rules))

    @property
    def every_outcome(self) -> tuple[str, ...]:
        """Every outcome an answer can name, the default's included."""
        return tuple(dict.fromkeys([*self.outcomes, self.default_outcome]))


@dataclass(frozen=True)
class Decision:
    """What a table decided for one customer: the outcome, its values, the rule that
    matched (numbered from 1; None for the default) and why, in words."""

    outcome: str
    values: Mapping[str, Any]
    rule: int | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "values": dict(self.values),
            "rule": self.rule,
            "reason": self.reason,
        }


def _values(raw: Any, where: str) -> Problems:
    if raw is None:
        return []
    if not isinstance(raw, Mapping):
        return [
            (where, 'values are an object of names and values, e.g. {"queue": "vip"}')
        ]
    found: Problems = []
    for name in raw:
        if not isinstance(name, str) or not VALUE_NAME.match(name):
            found.append(
                (
                    f"{where}.{name}",
                    "a value's name is 1 to 64 letters, digits or _, not starting "
                    "with a digit (templates read it as context.decisions.<key>.<name>)",
                )
            )
    try:
        size = len(json.dumps(raw, ensure_ascii=False).encode())
    except (TypeError, ValueError):
        return [*found, (where, "values must be plain JSON")]
    if size > MAX_VALUES_BYTES:
        found.append(
            (where, f"values take {size:,} bytes; keep them under {MAX_VALUES_BYTES:,}")
        )
    return found


def _outcome(raw: Any, where: str) -> Problems:
    if not isinstance(raw, str) or not OUTCOME.match(raw):
        return [
            (
                where,
                "an outcome's name is 1 to 32 lower-case letters, digits or _, "
                "starting with a letter, e.g. premium",
            )
        ]
    if raw in RESERVED:
        return [
            (
                where,
                f"“{raw}” names an output every decide step has; choose another name",
            )
        ]
    return []


def problems(raw: Any) -> Problems:
    """Every problem with a document, as (field, sentence) pairs; empty when it is valid."""
    if not isinstance(raw, Mapping):
        return [("", "a decision table is a JSON object")]
    found: Problems = []
    allowed = {"schema", "key", "name", "description", "rules", "default"}
    for extra in sorted(set(raw) - allowed, key=str):
        found.append(
            (str(extra), f"“{extra}” is not part of a decision table; remove it")
        )
    if raw.get("schema", SCHEMA) != SCHEMA:
        found.append(("schema", f"the schema is {SCHEMA}"))
    key = raw.get("key")
    if not isinstance(key, str) or not KEY.match(key):
        found.append(
            (
                "key",
                "the key is 1 to 64 lower-case letters, digits or _, starting with a "
                "letter, e.g. support_tier (channels ask for the table by it)",
            )
        )
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        found.append(("name", "give the table a name"))
    elif len(name) > MAX_NAME:
        found.append(("name", f"keep the name under {MAX_NAME} characters"))
    description = raw.get("description", "")
    if not isinstance(description, str) or len(description) > 2000:
        found.append(
            ("description", "the description is text of at most 2,000 characters")
        )
    table_rules = raw.get("rules", [])
    if not isinstance(table_rules, list):
        found.append(("rules", "rules are a list, tested in order"))
        table_rules = []
    if len(table_rules) > MAX_RULES:
        found.append(("rules", f"a table has at most {MAX_RULES} rules"))
    for index, item in enumerate(table_rules[:MAX_RULES]):
        where = f"rules[{index}]"
        if not isinstance(item, Mapping):
            found.append(
                (where, "a rule has a condition (when), an outcome and values")
            )
            continue
        for extra in sorted(set(item) - {"when", "outcome", "values"}, key=str):
            found.append(
                (f"{where}.{extra}", f"“{extra}” is not part of a rule; remove it")
            )
        found += rules.problems(item.get("when"), f"{where}.when")
        found += _outcome(item.get("outcome"), f"{where}.outcome")
        found += _values(item.get("values"), f"{where}.values")
    default = raw.get("default")
    if not isinstance(default, Mapping):
        found.append(
            (
                "default",
                "say what is decided when no rule matches: an outcome and values",
            )
        )
    else:
        for extra in sorted(set(default) - {"outcome", "values"}, key=str):
            found.append(
                (f"default.{extra}", f"“{extra}” is not part of the default; remove it")
            )
        found += _outcome(default.get("outcome"), "default.outcome")
        found += _values(default.get("values"), "default.values")
    return found


def parse(raw: Any) -> Table:
    """The table a valid document describes; DecisionError(422) naming every problem."""
    found = problems(raw)
    if found:
        where, sentence = found[0]
        raise DecisionError(
            422,
            f"the decision table has {len(found)} problem(s); the first: "
            f"{where or 'the document'}: {sentence}",
            found,
            where or None,
        )
    default = raw["default"]
    return Table(
        key=raw["key"],
        name=raw["name"].strip(),
        description=raw.get("description", ""),
        rules=tuple(
            Rule(item["when"], item["outcome"], dict(item.get("values") or {}))
            for item in raw.get("rules", [])
        ),
        default_outcome=default["outcome"],
        default_values=dict(default.get("values") or {}),
    )


def to_dict(table: Table) -> dict[str, Any]:
    """The canonical document of a table."""
    found: dict[str, Any] = {"schema": SCHEMA, "key": table.key, "name": table.name}
    if table.description:
        found["description"] = table.description
    found["rules"] = [
        {"when": rule.when, "outcome": rule.outcome, "values": dict(rule.values)}
        for rule in table.rules
    ]
    found["default"] = {
        "outcome": table.default_outcome,
        "values": dict(table.default_values),
    }
    return found


def decide(table: Table, scope: Mapping[str, Any]) -> Decision:
    """Test the rules in order against `scope` (trigger, event, customer, context); the
    first that holds decides, else the default."""
    for number, rule in enumerate(table.rules, start=1):
        verdict = rules.evaluate(rule.when, scope)
        if verdict.matched:
            return Decision(
                rule.outcome, rule.values, number, f"rule {number}: {verdict.reason}"
            )
    return Decision(
        table.default_outcome,
        table.default_values,
        None,
        "no rule matched, so the default decided",
    )


def describe_rule(rule: Rule) -> str:
    """A rule as one line: “premium if tier is vip”."""
    return f"{rule.outcome} if {rules.describe(rule.when)}"
