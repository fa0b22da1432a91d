"""How a step is named wherever it appears: the marketer's label, and what it does in words.

The words come from each node type's `summary`; this module applies them to a whole document
(a draft may be unreadable as a whole, so each node is read on its own) and fetches the channel
names they use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from engine.channels import channel_names
from engine.language import nodes


@dataclass(frozen=True)
class StepName:
    """A step as people read it: `title` (its label, else its type) and `summary`."""

    id: str
    type: str
    label: str | None
    summary: str

    @property
    def title(self) -> str:
        return nodes.title(self.type, self.label)

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "summary": self.summary}


def step_names(document: Any, channels: Mapping[str, str]) -> dict[str, StepName]:
    """Every node of a (raw, possibly broken) document by id, named."""
    found: dict[str, StepName] = {}
    raw_nodes = document.get("nodes") if isinstance(document, dict) else None
    for node in raw_nodes if isinstance(raw_nodes, list) else []:
        if not isinstance(node, dict) or not isinstance(node.get("id"), str):
            continue
        raw_type = node.get("type")
        type_name = raw_type if isinstance(raw_type, str) else "?"
        label = node.get("label")
        found[node["id"]] = StepName(
            node["id"],
            type_name,
            label if isinstance(label, str) and label.strip() else None,
            nodes.summarize(type_name, node.get("config"), channels),
        )
    return found


def named_steps(session: Session, document: Any) -> dict[str, StepName]:
    """`step_names` with the channels' names read from the database."""
    return step_names(document, channel_names(session))


def shortened(text: str, length: int) -> str:
    """`text` cut to `length` characters, the last one an ellipsis, where it is longer."""
    return text if len(text) <= length else text[: length - 1].rstrip() + "…"
