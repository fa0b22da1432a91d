"""The rule builder: an engine rule (engine/language/rules.py) as nested groups of conditions.

A rule is a leaf `{"field", "op", "value"?}` or a group `{"all": [...]}`, `{"any": [...]}`,
`{"not": rule}`. The builder shows it as a tree of `Group` and `Condition` and posts it back
under flat, indexed names, which `parse` reads again:

    <name>.mode          builder or json
    <name>.json          the rule as JSON text (json mode: the escape hatch)
    <name>.0.kind        all, any or not: the root group
    <name>.0.bare        1 when the root stands for its single member alone (a bare leaf)
    <name>.0.1.kind      the root's second member, here a group ...
    <name>.0.1.0.field   ... whose first member is a condition: field, op, type, value

`from_rule` and `to_rule` convert between the tree and the engine's structure; any rule the
builder can show comes back from `to_rule(from_rule(rule))` unchanged. A rule it cannot show
(an unknown operator, stray keys) stays in JSON mode with the reason.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as default
from typing import Any

from engine.language import rules

OPERATORS: dict[str, str] = {
    "eq": "is", "ne": "is not", "gt": "is more than", "gte": "is at least",
    "lt": "is less than", "lte": "is at most", "in": "is one of",
    "not_in": "is none of", "contains": "contains", "starts_with": "starts with",
    "exists": "is present", "not_exists": "is missing",
}  # fmt: skip
KINDS: dict[str, str] = {
    "all": "All of these hold",
    "any": "Any of these holds",
    "not": "This does not hold",
}
VALUE_TYPES: dict[str, str] = {
    "text": "text",
    "number": "number",
    "boolean": "true/false",
    "list": "text list",
    "numbers": "number list",
    "json": "JSON",
}
SCALAR_TYPES = ("text", "number", "boolean", "json")
LIST_TYPES = ("list", "numbers", "json")
ORDERED = {"gt", "gte", "lt", "lte"}
MAX_ITEMS = 400  # conditions and groups in one posted builder
_INTEGER = re.compile(r"^-?\d+$")
_POSTED = re.compile(
    r"^(?P<path>\d+(?:\.\d+)*)\.(?P<attr>kind|bare|field|op|type|value)$"
)


class Unshowable(ValueError):
    """A rule the builder cannot show as groups and conditions; the message says why."""


@dataclass
class Condition:
    """One comparison: the value as typed, and the type it is read as."""

    field: str = ""
    op: str = "eq"
    type: str = "text"
    value: str = ""
    errors: list[str] = default(default_factory=list)


@dataclass
class Group:
    kind: str = "all"
    members: list[Node] = default(default_factory=list)
    bare: bool = False
    errors: list[str] = default(default_factory=list)


Node = Condition | Group


def value_types(op: str) -> tuple[str, ...]:
    """The value types an operator takes (none for exists / not_exists)."""
    if op in rules.NO_VALUE:
        return ()
    return LIST_TYPES if op in rules.LIST_VALUE else SCALAR_TYPES


# ---- rule -> tree ---------------------------------------------------------------------------


def _plain_text(value: Any) -> bool:
    return isinstance(value, str) and "\n" not in value and "\r" not in value


def _number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def _shown_value(op: str, value: Any) -> tuple[str, str]:
    """(type, text) of a value, chosen so that reading the text gives the value back."""
    if op in rules.LIST_VALUE and isinstance(value, list) and value:
        if all(_plain_text(v) and v == v.strip() and v for v in value):
            return "list", "\n".join(value)
        if all(_number(v) for v in value):
            return "numbers", "\n".join(json.dumps(v) for v in value)
    elif op not in rules.LIST_VALUE:
        if isinstance(value, bool):
            return "boolean", "true" if value else "false"
        if _number(value):
            return "number", json.dumps(value)
        if _plain_text(value):
            return "text", value
    return "json", json.dumps(value)


def _node(rule: Any, depth: int) -> Node:
    if depth > rules.MAX_DEPTH:
        raise Unshowable(f"it nests groups more than {rules.MAX_DEPTH} deep")
    if not isinstance(rule, Mapping):
        raise Unshowable("a part of it is neither a condition nor a group")
    keys = set(rule)
    if keys & {"all", "any", "not"}:
        if len(keys) != 1:
            raise Unshowable(
                f"a group has other settings too ({', '.join(sorted(keys))})"
            )
        kind = next(iter(keys))
        if kind == "not":
            return Group("not", [_node(rule["not"], depth + 1)])
        members = rule[kind]
        if not isinstance(members, list):
            raise Unshowable(f"the conditions of “{kind}” are not a list")
        return Group(kind, [_node(member, depth + 1) for member in members])
    if not keys <= {"field", "op", "value"}:
        raise Unshowable(
            f"a condition has settings it cannot show ({', '.join(sorted(keys))})"
        )
    name, op = rule.get("field"), rule.get("op")
    if not isinstance(name, str):
        raise Unshowable("a condition has no field")
    if op not in OPERATORS:
        raise Unshowable(f"“{op}” is not a comparison the builder knows")
    if (op in rules.NO_VALUE) == ("value" in rule):
        raise Unshowable(
            f"{op} {'takes no' if op in rules.NO_VALUE else 'needs a'} value"
        )
    kind, text = (
        ("text", "") if op in rules.NO_VALUE else _shown_value(op, rule["value"])
    )
    return Condition(name, op, kind, text)


def from_rule(rule: Any) -> Group:
    """The builder's tree for an engine rule; a leaf becomes a bare group of one.

    Raises Unshowable for a rule that the builder cannot show (edit it as JSON).
    """
    node = _node(rule, 0)
    return node if isinstance(node, Group) else Group("all", [node], bare=True)


def new_root() -> Group:
    """What a new rule starts as: one empty condition."""
    return Group("all", [Condition()], bare=True)


# ---- tree -> rule ---------------------------------------------------------------------------


def _read_number(text: str) -> int | float:
    text = text.strip()
    if _INTEGER.match(text):
        return int(text)
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(text)
    return number


def _read_value(condition: Condition) -> Any:
    """The typed value; on a mistake, adds a sentence to the condition and keeps the text."""
    kind, text = condition.type, condition.value
    try:
        if kind == "number":
            try:
                return _read_number(text)
            except ValueError:
                raise ValueError("Write a number, such as 42 or 9.5") from None
        if kind == "boolean":
            if text not in {"true", "false"}:
                raise ValueError("Choose true or false")
            return text == "true"
        if kind in {"list", "numbers"}:
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            if not lines:
                raise ValueError("Write at least one value, one per line")
            if kind == "list":
                return lines
            numbers = []
            for number, line in enumerate(lines, 1):
                try:
                    numbers.append(_read_number(line))
                except ValueError:
                    raise ValueError(
                        f"Line {number}: {line!r} is not a number"
                    ) from None
            return numbers
        if kind == "json":
            try:
                return json.loads(text)
            except json.JSONDecodeError as error:
                raise ValueError(
                    f"This is not JSON: {error.msg} (line {error.lineno})"
                ) from None
    except ValueError as error:
        condition.errors.append(str(error))
    return text


def _rule(node: Node, where: str, places: dict[str, Node]) -> Any:
    places[where] = node
    if isinstance(node, Condition):
        if not node.field.strip():
            node.errors.append("Name the field to compare, e.g. customer.traits.tier")
        leaf: dict[str, Any] = {"field": node.field.strip(), "op": node.op}
        if node.op not in rules.NO_VALUE:
            leaf["value"] = _read_value(node)
        return leaf
    if node.kind == "not":
        if len(node.members) != 1:
            node.errors.append("Add the condition this negates")
            return {"not": {}}
        return {"not": _rule(node.members[0], f"{where}.not", places)}
    return {
        node.kind: [
            _rule(member, f"{where}.{node.kind}[{index}]", places)
            for index, member in enumerate(node.members)
        ]
    }


def _clear(node: Node) -> None:
    node.errors = []
    if isinstance(node, Group):
        for member in node.members:
            _clear(member)


def to_rule(root: Group, where: str = "rule") -> tuple[Any, dict[str, Node]]:
    """The engine rule of a tree, and which node each engine path (`rule.all[1]`) names.

    Values that cannot be read leave a sentence in their condition's `errors` (see
    `has_errors`); the rule then holds the text as typed.
    """
    _clear(root)
    places: dict[str, Node] = {}
    if root.bare and len(root.members) == 1 and root.kind != "not":
        return _rule(root.members[0], where, places), places
    return _rule(root, where, places), places


def has_errors(node: Node) -> bool:
    if node.errors:
        return True
    return isinstance(node, Group) and any(has_errors(m) for m in node.members)


def annotate(root: Group, where: str = "rule") -> Any:
    """Build the rule and put each of the engine's problems on the node it concerns."""
    rule, places = to_rule(root, where)
    for at, message in rules.problems(rule, where):
        path = max(
            (p for p in places if at == p or at.startswith((f"{p}.", f"{p}["))),
            key=len,
            default=None,
        )
        node = places[path] if path else root
        if isinstance(node, Condition) and node.errors:
            continue  # what the builder already said about it comes first
        node.errors.append(_sentence(message))
    return rule


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:]


# ---- posted fields -> tree ------------------------------------------------------------------


def parse(formdata: Any, name: str) -> Group | None:
    """The tree posted under `name` (see the module docstring), or None when there is none."""
    prefix = name + "."
    posted: dict[tuple[int, ...], dict[str, str]] = {}
    for key in formdata.keys():
        if not key.startswith(prefix):
            continue
        found = _POSTED.match(key[len(prefix) :])
        if not found:
            continue
        path = tuple(int(part) for part in found["path"].split("."))
        if len(path) > rules.MAX_DEPTH + 2:
            continue
        posted.setdefault(path, {})[found["attr"]] = formdata.get(key) or ""
        if len(posted) > MAX_ITEMS:
            break
    if (0,) not in posted:
        return None
    nodes: dict[tuple[int, ...], Node] = {}
    for path in sorted(posted, key=lambda p: (len(p), p)):
        attrs = posted[path]
        parent = nodes.get(path[:-1]) if len(path) > 1 else None
        if len(path) > 1 and not isinstance(parent, Group):
            continue  # a member whose group was not posted
        node: Node
        if "kind" in attrs or path == (0,):
            node = Group(attrs.get("kind", "all"), bare=attrs.get("bare") == "1")
        else:
            node = Condition(
                attrs.get("field", "").strip(),
                attrs.get("op", "eq"),
                attrs.get("type", "text"),
                attrs.get("value", ""),
            )
        nodes[path] = node
        if isinstance(parent, Group):
            parent.members.append(node)
    root = nodes[(0,)]
    assert isinstance(root, Group)
    tidy(root)
    return root


def tidy(node: Node) -> None:
    """Make a posted tree one the builder can show: known kinds, operators and types."""
    if isinstance(node, Condition):
        if node.op not in OPERATORS:
            node.op = "eq"
        allowed = value_types(node.op)
        if allowed and node.type not in allowed:
            if node.op in rules.LIST_VALUE:
                node.type = "numbers" if node.type == "number" else "list"
            else:
                lines = node.value.splitlines()
                node.value = lines[0] if lines else ""
                node.type = "number" if node.type == "numbers" else "text"
        return
    if node.kind not in KINDS:
        node.kind = "all"
    if node.kind == "not" and len(node.members) > 1:
        node.members = [Group("all", node.members)]
    for member in node.members:
        tidy(member)


# ---- tree -> posted fields (what the page posts; tests use it) -----------------------------


def fields(root: Group | None, name: str) -> list[tuple[str, str]]:
    """The (name, value) pairs a browser posts for this tree."""
    pairs: list[tuple[str, str]] = [(f"{name}.mode", "builder")]

    def walk(node: Node, path: str) -> None:
        if isinstance(node, Group):
            pairs.append((f"{name}.{path}.kind", node.kind))
            if node.bare:
                pairs.append((f"{name}.{path}.bare", "1"))
            for index, member in enumerate(node.members):
                walk(member, f"{path}.{index}")
            return
        pairs.append((f"{name}.{path}.field", node.field))
        pairs.append((f"{name}.{path}.op", node.op))
        if value_types(node.op):
            pairs.append((f"{name}.{path}.type", node.type))
            pairs.append((f"{name}.{path}.value", node.value))

    if root is not None:
        walk(root, "0")
    return pairs


# ---- edits ----------------------------------------------------------------------------------


def find(root: Group, path: str) -> tuple[Group | None, int, Node] | None:
    """(parent, index in it, node) at a path such as `0.1.2`; None for a path not there."""
    parts = path.split(".")
    if parts[0] != "0" or not all(
        part.isascii() and part.isdigit() and len(part) <= 9 for part in parts
    ):
        return None
    parent: Group | None = None
    index = 0
    node_: Node = root
    for part in parts[1:]:
        if not isinstance(node_, Group) or int(part) >= len(node_.members):
            return None
        parent, index, node_ = node_, int(part), node_.members[int(part)]
    return parent, index, node_


def add(root: Group, path: str, what: Node) -> str | None:
    """Add a condition or group to the group at `path`; returns the new member's path.

    A `not` group holds one member: adding a second puts both under an `all` group.
    """
    found = find(root, path)
    if found is None or not isinstance(found[2], Group):
        return None
    group = found[2]
    if group.kind == "not" and group.members:
        inner = Group("all", [*group.members, what])
        group.members = [inner]
        return f"{path}.0.{len(inner.members) - 1}"
    group.members.append(what)
    return f"{path}.{len(group.members) - 1}"


def remove(root: Group, path: str) -> str | None:
    """Remove the node at `path`, and a group it leaves empty; returns the path of the group
    that held what is gone (the root, "0", may be left empty), or None for a bad path."""
    found = find(root, path)
    if found is None:
        return None
    parent, index, _node = found
    if parent is None:
        return None
    del parent.members[index]
    holder = path.rsplit(".", 1)[0]
    if not parent.members and holder != "0":
        return remove(root, holder)
    return holder


def operator_changed(root: Group, path: str) -> None:
    """After a new operator: an ordering comparison of an empty or numeric text is a number."""
    found = find(root, path)
    if found is None or not isinstance(found[2], Condition):
        return
    condition = found[2]
    if condition.op in ORDERED and condition.type == "text":
        try:
            if condition.value.strip():
                _read_number(condition.value)
        except ValueError:
            return
        condition.type = "number"
