"""What the canvas palette offers: every node type with its label, help and starting config."""

from __future__ import annotations

from typing import Any

from engine.language import nodes

_RULE = {"field": "customer.traits.tier", "op": "eq", "value": "vip"}

# The config a node starts with when dropped on the canvas: valid where a sensible default
# exists, and left empty where only the marketer can say (an event name, a channel).
STARTING_CONFIG: dict[str, dict[str, Any]] = {
    "trigger": {"event": ""},
    "wait": {"duration": "PT1H"},
    "wait_until": {"time": "09:00"},
    "wait_for_event": {"event": "", "timeout": "P1D"},
    "condition": {"rule": _RULE},
    "switch": {"cases": [{"port": "vip", "rule": _RULE}]},
    "split": {"branches": [{"port": "a", "percent": 50}, {"port": "b", "percent": 50}]},
    "decide": {"table": ""},
    "send": {"channel": "", "message": {"text": ""}},
    "webhook": {"url": "https://", "body": {}},
    "update_profile": {"set": {}},
    "exit": {},
}


def ports_of(
    type_name: str, config: dict[str, Any], ctx: nodes.CheckContext | None = None
) -> list[dict[str, Any]]:
    """The node's output ports as the canvas draws them (an unknown type has none; `ctx`
    names the live decision tables' outcomes)."""
    try:
        found = nodes.get(type_name).ports(config, ctx)
    except nodes.UnknownNodeType:
        return []
    return [{"name": port.name, "required": port.required} for port in found]


def catalogue() -> list[dict[str, Any]]:
    """Every node type, in the registry's order, for the palette."""
    items = []
    for name in nodes.names():
        node_type = nodes.get(name)
        config = STARTING_CONFIG[name]
        items.append(
            {
                "type": name,
                "label": node_type.label,
                "help": node_type.help,
                "config": config,
                "summary": nodes.summarize(name, config),
                "ports": ports_of(name, config),
                "waits": node_type.waits,
            }
        )
    return items
