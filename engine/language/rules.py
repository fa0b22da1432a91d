"""The rule language: `all`, `any`, `not` and leaf comparisons, evaluated without `eval`.

A leaf is `{"field": "event.properties.cart_value", "op": "gte", "value": 50}`. Fields are
dotted paths under `trigger`, `event`, `customer` or `context`. Comparisons are type-aware:
numbers compare as numbers (a numeric string counts as a number when compared with one),
ISO 8601 dates and date-times compare as instants, other strings compare exactly. A field
that is missing makes every comparison false except `ne`, `not_in` and `not_exists`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

ROOTS = ("trigger", "event", "customer", "context")
OPERATORS = (
    "eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in",
    "contains", "starts_with", "exists", "not_exists",
)  # fmt: skip
NO_VALUE = {"exists", "not_exists"}
LIST_VALUE = {"in", "not_in"}
MAX_DEPTH = 20


class _Missing:
    def __repr__(self) -> str:
        return "missing"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class Verdict:
    """Whether a rule matched, and a sentence saying why."""

    matched: bool
    reason: str


def check(rule: object, where: str = "rule") -> list[str]:
    """Every problem with the shape of `rule`, as plain sentences; empty when well formed."""
    return [message for _, message in problems(rule, where)]


def problems(
    rule: object, where: str = "rule", depth: int = 0
) -> list[tuple[str, str]]:
    """Every problem with the shape of `rule` as (path of the part, plain sentence) pairs.

    The path (`rule.all[1]`) says which part of a rule is wrong, for a form to mark it; the
    sentence says what to do in a marketer's words, without the path.
    """
    if depth > MAX_DEPTH:
        return [
            (
                where,
                f"the conditions are nested more than {MAX_DEPTH} groups deep; simplify them",
            )
        ]
    if not isinstance(rule, Mapping):
        return [(where, "a condition needs a field, a comparison and a value")]
    groups = [key for key in ("all", "any") if key in rule]
    if groups or "not" in rule:
        if len(rule) != 1:
            return [
                (
                    where,
                    "a group matches all, any or none of its conditions: choose one",
                )
            ]
        key = next(iter(rule))
        if key == "not":
            return problems(rule["not"], f"{where}.not", depth + 1)
        members = rule[key]
        if not isinstance(members, list) or not members:
            return [(where, "add at least one condition to this group")]
        found: list[tuple[str, str]] = []
        for index, member in enumerate(members):
            found += problems(member, f"{where}.{key}[{index}]", depth + 1)
        return found
    found = []
    unknown = set(rule) - {"field", "op", "value"}
    if unknown:
        names = ", ".join(sorted(str(key) for key in unknown))
        found.append(
            (
                where,
                f"a condition has only a field, a comparison and a value; remove {names}",
            )
        )
    field = rule.get("field")
    if not isinstance(field, str) or not field:
        found.append(
            (where, "choose the field to compare, e.g. event.properties.cart_value")
        )
    elif field.split(".")[0] not in ROOTS or "" in field.split("."):
        found.append(
            (
                where,
                f"the field “{field}” must start with trigger, event, customer or context, "
                "then a name, e.g. customer.traits.tier",
            )
        )
    op = rule.get("op")
    if op is None:
        found.append((where, "choose how to compare"))
    elif op not in OPERATORS:
        found.append(
            (
                where,
                f"“{op}” is not a comparison; choose one from the list "
                f"(in JSON: {', '.join(OPERATORS)})",
            )
        )
    elif op in NO_VALUE:
        if "value" in rule:
            found.append((where, f"“{SYMBOLS[op]}” compares with no value; remove it"))
    elif "value" not in rule:
        found.append((where, "give the value to compare with"))
    elif op in LIST_VALUE and not isinstance(rule["value"], list):
        found.append((where, "give a list of values, one per line"))
    return found


def list_index(part: str) -> int:
    """The list index a path part names (ASCII digits), else a number past any list's end."""
    if part.isascii() and part.isdigit() and len(part) <= 9:
        return int(part)
    return sys.maxsize


def resolve(field: str, scope: Mapping[str, Any]) -> Any:
    """The value at the dotted path `field` in `scope`, or MISSING."""
    value: Any = scope
    for part in field.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and list_index(part) < len(value):
            value = value[int(part)]
        else:
            return MISSING
    return value


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def instant(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) < 10 or not value[:4].isdigit():
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = datetime.combine(date.fromisoformat(value), datetime.min.time())
        except ValueError:
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _comparable(left: Any, right: Any) -> tuple[Any, Any] | None:
    """Both sides as numbers, instants or strings of the same kind, or None."""
    if isinstance(left, int | float) or isinstance(right, int | float):
        a, b = _number(left), _number(right)
        return (a, b) if a is not None and b is not None else None
    a_time, b_time = instant(left), instant(right)
    if a_time is not None and b_time is not None:
        return a_time, b_time
    if isinstance(left, str) and isinstance(right, str):
        return left, right
    return None


def _equal(left: Any, right: Any) -> bool:
    if isinstance(left, bool) or isinstance(right, bool):
        return left is right
    pair = _comparable(left, right)
    if pair is not None:
        return bool(pair[0] == pair[1])
    return bool(left == right)


def _ordered(test: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def compare(left: Any, right: Any) -> bool:
        pair = _comparable(left, right)
        return pair is not None and test(*pair)

    return compare


def _contains(left: Any, right: Any) -> bool:
    if isinstance(left, str) and isinstance(right, str):
        return right in left
    if isinstance(left, list):
        return any(_equal(item, right) for item in left)
    return False


LEAF: dict[str, Callable[[Any, Any], bool]] = {
    "eq": _equal,
    "ne": lambda left, right: not _equal(left, right),
    "gt": _ordered(lambda a, b: a > b),
    "gte": _ordered(lambda a, b: a >= b),
    "lt": _ordered(lambda a, b: a < b),
    "lte": _ordered(lambda a, b: a <= b),
    "in": lambda left, right: any(_equal(left, item) for item in right),
    "not_in": lambda left, right: not any(_equal(left, item) for item in right),
    "contains": _contains,
    "starts_with": lambda left, right: (
        isinstance(left, str) and isinstance(right, str) and left.startswith(right)
    ),
    "exists": lambda left, right: left is not None,
    "not_exists": lambda left, right: left is None,
}


def evaluate(rule: Mapping[str, Any], scope: Mapping[str, Any]) -> Verdict:
    """Evaluate a well-formed rule (see `check`) against `scope`."""
    if "all" in rule:
        for member in rule["all"]:
            verdict = evaluate(member, scope)
            if not verdict.matched:
                return Verdict(False, verdict.reason)
        return Verdict(
            True, "all of: " + "; ".join(evaluate(m, scope).reason for m in rule["all"])
        )
    if "any" in rule:
        reasons = []
        for member in rule["any"]:
            verdict = evaluate(member, scope)
            if verdict.matched:
                return Verdict(True, verdict.reason)
            reasons.append(verdict.reason)
        return Verdict(False, "none of: " + "; ".join(reasons))
    if "not" in rule:
        inner = evaluate(rule["not"], scope)
        return Verdict(not inner.matched, f"not ({inner.reason})")
    field, op = rule["field"], rule["op"]
    expected = rule.get("value")
    actual = resolve(field, scope)
    if actual is MISSING:
        matched = op in {"ne", "not_in", "not_exists"}
    else:
        matched = LEAF[op](actual, expected)
    found = "not set" if actual is MISSING or actual is None else _shown(actual)
    outcome = "yes" if matched else "no"
    return Verdict(matched, f"{_leaf(rule, SYMBOLS)}: {outcome} (it is {found})")


# In words ------------------------------------------------------------------------------------

SYMBOLS = {
    "eq": "is", "ne": "is not", "gt": ">", "gte": "≥", "lt": "<", "lte": "≤",
    "in": "is", "not_in": "is not", "contains": "contains",
    "starts_with": "starts with", "exists": "is set", "not_exists": "is not set",
}  # fmt: skip


# `not` over a leaf reads as the leaf said the other way round, where that is exact (a missing
# field makes `eq` false and `ne` true, so "not (x is 1)" and "x is not 1" agree).
NEGATED = {
    "eq": "is not", "ne": "is", "in": "is not", "not_in": "is",
    "contains": "does not contain", "starts_with": "does not start with",
    "exists": "is not set", "not_exists": "is set",
}  # fmt: skip


def field_name(field: object) -> str:
    """A field as a marketer names it: the last part of its path (`cart_value`)."""
    if not isinstance(field, str) or not field:
        return "?"
    parts = [part for part in field.split(".") if part]
    if len(parts) == 2 and parts[0] == "customer" and parts[1] == "id":
        return "customer id"
    return parts[-1] if parts else "?"


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str):
        return value if value.strip() else '""'
    if isinstance(value, int | float):
        return str(value)
    return "…"


def _choices(values: Any) -> str:
    if not isinstance(values, list) or not values:
        return "…"
    shown = [_shown(v) for v in values]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]


def describe(rule: object, depth: int = 0) -> str:
    """A rule as one plain line: `tier is vip or lifetime_value ≥ 1000`.

    Groups nested in other groups are put in brackets; a rule of the wrong shape reads as
    far as it can, never raises.
    """
    if not isinstance(rule, Mapping) or depth > MAX_DEPTH:
        return "…"
    if "not" in rule and len(rule) == 1:
        inner = rule["not"]
        if isinstance(inner, Mapping) and inner.get("op") in NEGATED:
            return _leaf(inner, NEGATED)
        return f"not ({describe(inner, depth + 1)})"
    for key, joiner in (("all", " and "), ("any", " or ")):
        if key in rule and len(rule) == 1:
            members = rule[key] if isinstance(rule[key], list) else []
            if len(members) == 1:
                return describe(members[0], depth)
            text = joiner.join(describe(m, depth + 1) for m in members) or "…"
            return f"({text})" if depth and len(members) > 1 else text
    return _leaf(rule, SYMBOLS)


def _leaf(rule: Mapping[str, Any], words: Mapping[str, str]) -> str:
    op = rule.get("op")
    name = field_name(rule.get("field"))
    word = words.get(op, "?") if isinstance(op, str) else "?"
    if op in NO_VALUE:
        return f"{name} {word}"
    if op in LIST_VALUE:
        return f"{name} {word} {_choices(rule.get('value'))}"
    return f"{name} {word} {_shown(rule.get('value'))}"
