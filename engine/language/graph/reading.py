"""Reading and writing documents: upgrade from older schemas, parse, canonical export."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.language.graph.document import (
    LABEL_LENGTH,
    MAX_NODES,
    NODE_ID,
    SCHEMA,
    TOP_LEVEL,
    Document,
    DocumentError,
    Edge,
    Entry,
    EventRule,
    Node,
    Problem,
)

# One function per schema bump: UPGRADES[old] turns a document of version `old` into the next
# version, and says in its docstring what changed. Chained until the document is at SCHEMA.
UPGRADES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def upgrade(raw: dict[str, Any]) -> dict[str, Any]:
    """Bring a document of any known schema version up to SCHEMA."""
    seen = set()
    while raw.get("schema") != SCHEMA:
        version = raw.get("schema")
        step = UPGRADES.get(version) if isinstance(version, str) else None
        if step is None or version in seen:
            known = ", ".join(f"“{v}”" for v in [*UPGRADES, SCHEMA])
            what = f"“{version}”" if isinstance(version, str) else "not named"
            raise DocumentError(
                [
                    Problem(
                        None,
                        f"the file's journey format ({what}) is not one this version of "
                        f"Throughline reads; it reads {known}",
                        "schema",
                    )
                ]
            )
        seen.add(version)
        raw = step(raw)
    return raw


def _event_rule(
    raw: Any, where: str, named: str, problems: list[Problem], with_within: bool
) -> EventRule | None:
    """`where`: its path in the document; `named`: what a marketer calls it."""
    allowed = {"event", "where", "within"} if with_within else {"event", "where"}
    example = "order_completed" if with_within else "unsubscribed"
    if not isinstance(raw, dict):
        problems.append(
            Problem(
                None, f"{named} cannot be read: name its event, e.g. {example}", where
            )
        )
        return None
    for key in sorted(set(raw) - allowed):
        problems.append(
            Problem(
                None,
                f"“{key}” is not a setting of {named}; remove it",
                f"{where}.{key}",
            )
        )
    event = raw.get("event")
    if not isinstance(event, str):
        problems.append(
            Problem(None, f"{named} needs an event, e.g. {example}", f"{where}.event")
        )
        return None
    return EventRule(
        event, raw.get("where"), raw.get("within") if with_within else None
    )


def parse(raw: Any) -> Document:
    """Read a document (any known version), or raise DocumentError naming every problem."""
    if not isinstance(raw, dict):
        raise DocumentError(
            [
                Problem(
                    None,
                    "the file does not hold a journey; export one from Throughline "
                    "and import that file",
                )
            ]
        )
    problems: list[Problem] = []
    if "schema" in raw:
        raw = upgrade(raw)
    else:
        problems.append(
            Problem(
                None,
                "the file does not say which journey format it is in; a journey "
                f"exported from Throughline says “{SCHEMA}”",
                "schema",
            )
        )
    for key in sorted(set(raw) - set(TOP_LEVEL)):
        problems.append(
            Problem(None, f"“{key}” is not part of a journey; remove it", key)
        )
    name = raw.get("name")
    if not isinstance(name, str):
        problems.append(Problem(None, "the journey needs a name", "name"))
    description = raw.get("description")
    if description is not None and not isinstance(description, str):
        problems.append(Problem(None, "the description must be text", "description"))

    parsed_nodes: list[Node] = []
    raw_nodes = raw.get("nodes")
    if not isinstance(raw_nodes, list):
        problems.append(
            Problem(None, "the journey's steps cannot be read from the file", "nodes")
        )
        raw_nodes = []
    if len(raw_nodes) > MAX_NODES:
        problems.append(
            Problem(None, f"a journey has at most {MAX_NODES} steps", "nodes")
        )
    for index, item in enumerate(raw_nodes):
        where = f"nodes[{index}]"
        step = f"step {index + 1} of the file"
        if not isinstance(item, dict):
            problems.append(
                Problem(
                    None,
                    f"{step} cannot be read: a step has an id, a type and its settings",
                    where,
                )
            )
            continue
        node_id, kind, config = item.get("id"), item.get("type"), item.get("config", {})
        label = node_id if isinstance(node_id, str) else None
        for key in sorted(set(item) - {"id", "type", "config", "label"}):
            problems.append(
                Problem(
                    label,
                    f"“{key}” is not part of a step; remove it, or move it into the "
                    "step's settings",
                    f"{where}.{key}",
                )
            )
        if not isinstance(node_id, str) or not NODE_ID.match(node_id):
            problems.append(
                Problem(
                    label,
                    f"{step} needs an id of 1-100 letters, digits, _ or -",
                    f"{where}.id",
                )
            )
        if not isinstance(kind, str):
            problems.append(
                Problem(
                    label,
                    f"{step} needs a type, e.g. send or wait",
                    f"{where}.type",
                )
            )
        if not isinstance(config, dict):
            problems.append(
                Problem(label, "the step's settings cannot be read", f"{where}.config")
            )
        text = item.get("label")
        if text is not None and (
            not isinstance(text, str)
            or len(text) > LABEL_LENGTH
            or any(ord(c) < 32 for c in text)
        ):
            problems.append(
                Problem(
                    label,
                    f"a label is one line of at most {LABEL_LENGTH} characters",
                    f"{where}.label",
                )
            )
            text = None
        if (
            isinstance(node_id, str)
            and isinstance(kind, str)
            and isinstance(config, dict)
        ):
            shown = text.strip() if isinstance(text, str) else ""
            parsed_nodes.append(Node(node_id, kind, config, shown or None))

    parsed_edges: list[Edge] = []
    raw_edges = raw.get("edges")
    if not isinstance(raw_edges, list):
        problems.append(
            Problem(
                None,
                "the connections between the steps cannot be read from the file",
                "edges",
            )
        )
        raw_edges = []
    for index, item in enumerate(raw_edges):
        source = item.get("from") if isinstance(item, dict) else None
        target = item.get("to") if isinstance(item, dict) else None
        port = item.get("port", "out") if isinstance(item, dict) else None
        extra = (
            sorted(set(item) - {"from", "to", "port"}) if isinstance(item, dict) else []
        )
        if extra or not (
            isinstance(source, str)
            and isinstance(target, str)
            and isinstance(port, str)
        ):
            problems.append(
                Problem(
                    source if isinstance(source, str) else None,
                    f"connection {index + 1} of the file cannot be read: it names the "
                    "step it leaves and the step it goes to",
                    edge=index,
                )
            )
            continue
        parsed_edges.append(Edge(source, target, port))

    entry = Entry()
    raw_entry = raw.get("entry", {})
    if not isinstance(raw_entry, dict):
        problems.append(
            Problem(
                None,
                "who may enter the journey, and how often, cannot be read from the file",
                "entry",
            )
        )
    else:
        for key in sorted(set(raw_entry) - {"reentry", "max_entries"}):
            problems.append(
                Problem(
                    None,
                    f"“{key}” is not a setting of who may enter; remove it",
                    f"entry.{key}",
                )
            )
        entry = Entry(
            raw_entry.get("reentry", "after_exit"), raw_entry.get("max_entries")
        )

    goal = None
    if raw.get("goal") is not None:
        goal = _event_rule(raw["goal"], "goal", "the goal", problems, with_within=True)
    exits: list[EventRule] = []
    raw_exits = raw.get("exit_on", [])
    if not isinstance(raw_exits, list):
        problems.append(
            Problem(None, "the exit events cannot be read from the file", "exit_on")
        )
        raw_exits = []
    for index, item in enumerate(raw_exits):
        found = _event_rule(
            item,
            f"exit_on[{index}]",
            f"exit event {index + 1}",
            problems,
            with_within=False,
        )
        if found:
            exits.append(found)
    max_sends = None
    raw_throttle = raw.get("throttle")
    if raw_throttle is not None:
        if not isinstance(raw_throttle, dict):
            problems.append(
                Problem(
                    None,
                    "the journey's send limit cannot be read from the file",
                    "throttle",
                )
            )
        else:
            for key in sorted(set(raw_throttle) - {"max_sends_per_minute"}):
                problems.append(
                    Problem(
                        None,
                        f"“{key}” is not a setting of the send limit; remove it",
                        f"throttle.{key}",
                    )
                )
            max_sends = raw_throttle.get("max_sends_per_minute")
    layout = raw.get("layout", {})
    if not isinstance(layout, dict):
        problems.append(
            Problem(
                None,
                "where the steps sit on the canvas cannot be read from the file",
                "layout",
            )
        )
    if problems:
        raise DocumentError(problems)
    return Document(
        name=str(name),
        description=description,
        nodes=tuple(parsed_nodes),
        edges=tuple(parsed_edges),
        entry=entry,
        goal=goal,
        exit_on=tuple(exits),
        layout=layout,
        max_sends_per_minute=max_sends,
    )


def _event_rule_dict(rule: EventRule, with_within: bool) -> dict[str, Any]:
    found: dict[str, Any] = {"event": rule.event}
    if rule.where is not None:
        found["where"] = rule.where
    if with_within and rule.within is not None:
        found["within"] = rule.within
    return found


def to_dict(document: Document) -> dict[str, Any]:
    """The canonical JSON form; parse(to_dict(d)) == d for every document."""
    found: dict[str, Any] = {"schema": SCHEMA, "name": document.name}
    if document.description is not None:
        found["description"] = document.description
    found["entry"] = {
        "reentry": document.entry.reentry,
        "max_entries": document.entry.max_entries,
    }
    if document.goal is not None:
        found["goal"] = _event_rule_dict(document.goal, with_within=True)
    found["exit_on"] = [
        _event_rule_dict(rule, with_within=False) for rule in document.exit_on
    ]
    if document.max_sends_per_minute is not None:
        found["throttle"] = {"max_sends_per_minute": document.max_sends_per_minute}
    found["nodes"] = [
        {
            "id": n.id,
            "type": n.type,
            **({"label": n.label} if n.label is not None else {}),
            "config": n.config,
        }
        for n in document.nodes
    ]
    found["edges"] = [
        {
            "from": e.source,
            "to": e.target,
            **({"port": e.port} if e.port != "out" else {}),
        }
        for e in document.edges
    ]
    found["layout"] = document.layout
    return found
