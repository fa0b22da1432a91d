"""The journey document's types: nodes, edges, entry rules, goal, exits, problems."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

SCHEMA = "throughline.journey/v1"
REENTRY = ("never", "after_exit", "always")
TOP_LEVEL = (
    "schema",
    "name",
    "description",
    "entry",
    "goal",
    "exit_on",
    "throttle",
    "nodes",
    "edges",
    "layout",
)
NODE_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
LABEL_LENGTH = 80
NAME_LENGTH = 200  # the journeys.name column
DESCRIPTION_LENGTH = 2_000
MAX_NODES = 1000


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a document: the node (or edge) it concerns and a sentence."""

    node: str | None
    message: str
    field: str | None = None
    edge: int | None = None

    def to_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"node": self.node, "message": self.message}
        if self.field is not None:
            found["field"] = self.field
        if self.edge is not None:
            found["edge"] = self.edge
        return found


class DocumentError(ValueError):
    """A document whose shape is too broken to read; `problems` lists every one found."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class Node:
    """A step: `label` is the marketer's own short name for it, shown above its summary."""

    id: str
    type: str
    config: dict[str, Any]
    label: str | None = None


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    port: str = "out"


@dataclass(frozen=True)
class Entry:
    reentry: str = "after_exit"
    max_entries: int | None = None


@dataclass(frozen=True)
class EventRule:
    """An event type with an optional rule: used by `goal` (with `within`) and `exit_on`."""

    event: str
    where: dict[str, Any] | None = None
    within: str | None = None


@dataclass(frozen=True)
class Document:
    name: str
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    entry: Entry = Entry()
    goal: EventRule | None = None
    exit_on: tuple[EventRule, ...] = ()
    layout: dict[str, Any] = field(default_factory=dict)
    description: str | None = None
    # At most this many sends a minute from the whole journey (a launch that must not flood
    # a channel); the sends past it wait, in order, for the next minutes.
    max_sends_per_minute: int | None = None

    def node(self, node_id: str) -> Node:
        for found in self.nodes:
            if found.id == node_id:
                return found
        raise KeyError(node_id)

    def trigger(self) -> Node:
        return next(n for n in self.nodes if n.type == "trigger")

    def next_node(self, node_id: str, port: str) -> str | None:
        """Where the edge leaving `node_id` by `port` goes, or None when it goes nowhere."""
        for edge in self.edges:
            if edge.source == node_id and edge.port == port:
                return edge.target
        return None

    def edges_from(self, node_id: str) -> Iterator[Edge]:
        return (e for e in self.edges if e.source == node_id)
