"""Which event properties a journey's steps read, against the schemas of their events: a
rule or template reading a property its event's schema does not name is worth a warning
(a renamed `cart_value` would leave it always empty)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from engine.language import templates
from engine.schemas import EventSchema

# Where a step's config holds rules, and where it holds templates.
RULE_KEYS = ("where", "rule", "cases", "goal_where")
TEMPLATE_KEYS = ("message", "body", "headers", "set")


@dataclass(frozen=True)
class Missing:
    """A property a step reads that the schemas of its event do not name."""

    node: str
    path: str  # as the step reads it: event.properties.cart_value
    event_types: tuple[str, ...]

    @property
    def message(self) -> str:
        kinds = " or ".join(self.event_types)
        return (
            f"{self.path} is not in the schema of {kinds}: it is empty unless the "
            "channel sends it; check its name"
        )


def rule_fields(rule: Any) -> Iterator[str]:
    """Every field a rule compares, however deep its groups."""
    if not isinstance(rule, Mapping):
        return
    for key in ("all", "any"):
        members = rule.get(key)
        if isinstance(members, list):
            for member in members:
                yield from rule_fields(member)
    if "not" in rule:
        yield from rule_fields(rule["not"])
    field = rule.get("field")
    if isinstance(field, str):
        yield field


def _config_fields(config: Mapping[str, Any]) -> Iterator[str]:
    for key in RULE_KEYS:
        value = config.get(key)
        if key == "cases" and isinstance(value, list):
            for case in value:
                if isinstance(case, Mapping):
                    yield from rule_fields(case.get("rule"))
        else:
            yield from rule_fields(value)
    for key in TEMPLATE_KEYS:
        value = config.get(key)
        sources = value.values() if isinstance(value, Mapping) else ()
        for source in sources:
            yield from templates.names(source)


def names_property(schema: Mapping[str, Any], parts: list[str]) -> bool:
    """Whether a schema of properties names the path `parts` (as deep as it describes)."""
    level: Any = schema
    for part in parts:
        properties = level.get("properties") if isinstance(level, Mapping) else None
        if not isinstance(properties, Mapping):
            return True  # the schema says nothing this deep: nothing to hold against it
        if part not in properties:
            return False
        level = properties[part]
    return True


def missing(
    document: Mapping[str, Any], schemas: Mapping[str, EventSchema]
) -> list[Missing]:
    """Each property a step reads (`trigger.properties.*`, `event.properties.*`) that no
    schema of the events it can be reading names. Types without a schema are not judged."""
    nodes = [n for n in document.get("nodes", []) if isinstance(n, Mapping)]
    trigger = next((n for n in nodes if n.get("type") == "trigger"), None)
    trigger_event = (trigger or {}).get("config", {}).get("event")
    awaited = [
        (n.get("config") or {}).get("event")
        for n in nodes
        if n.get("type") == "wait_for_event"
    ]
    found: list[Missing] = []
    for node in nodes:
        config = node.get("config") or {}
        if not isinstance(config, Mapping):
            continue
        if node.get("type") in {"trigger", "wait_for_event"}:
            now = [config.get("event")]
        else:
            now = [trigger_event, *awaited]
        seen: set[str] = set()
        for path in _config_fields(config):
            parts = path.replace("[", ".").replace("]", "").split(".")
            if len(parts) < 3 or parts[1] != "properties" or path in seen:
                continue
            if parts[0] == "trigger":
                kinds = [trigger_event]
            elif parts[0] == "event":
                kinds = now
            else:
                continue
            judged = [
                schemas[k]
                for k in dict.fromkeys(kinds)
                if isinstance(k, str) and k in schemas
            ]
            if len(judged) < len([k for k in kinds if isinstance(k, str) and k]):
                continue  # an event it may read has no schema: nothing to hold against it
            if judged and not any(names_property(s.schema, parts[2:]) for s in judged):
                seen.add(path)
                found.append(
                    Missing(
                        str(node.get("id")), path, tuple(s.event_type for s in judged)
                    )
                )
    return found
