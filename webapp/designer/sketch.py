"""A read-only drawing of a version about to be published, with what changed marked.

The publish review shows the new version as cards in rows (each step one row below the step
that first leads to it), added steps marked, changed steps highlighted with their summary, and
the steps that are gone ghosted in a row of their own. It is drawn on the server as SVG: a
review needs no editing, and the page stays light.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.journeys.summaries import StepName

CARD_W, CARD_H = 210, 66
GAP_X, GAP_Y = 24, 46
MARGIN = 12


@dataclass(frozen=True)
class Card:
    id: str
    title: str
    summary: str
    status: str  # "added", "changed", "same" or "removed"
    x: int
    y: int
    waiting: int = 0

    @property
    def short_title(self) -> str:
        return _cut(self.title, 26)

    @property
    def short_summary(self) -> str:
        return _cut(self.summary, 34)

    @property
    def note(self) -> str:
        """The card's last line: how it changed, and who waits there."""
        parts = [self.status] if self.status != "same" else []
        if self.waiting:
            parts.append(f"{self.waiting:,} waiting")
        return " · ".join(parts)


@dataclass(frozen=True)
class Line:
    path: str
    back: bool = False


@dataclass
class Sketch:
    width: int = 0
    height: int = 0
    cards: list[Card] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    removed_label_y: int | None = None

    def count(self, status: str) -> int:
        return sum(1 for card in self.cards if card.status == status)

    @property
    def description(self) -> str:
        parts = [f"{len(self.cards) - self.count('removed')} steps"]
        for status in ("added", "changed", "removed"):
            if self.count(status):
                parts.append(f"{self.count(status)} {status}")
        return "The new version: " + ", ".join(parts)

    @property
    def legend(self) -> str:
        colours = [
            words
            for status, words in (
                ("added", "added steps are green"),
                ("changed", "changed steps amber"),
                ("removed", "removed steps greyed out below"),
            )
            if self.count(status)
        ]
        if not colours:
            return f"{self.description}."
        text = ", ".join(colours)
        return f"{self.description}. {text[0].upper()}{text[1:]}."


def _cut(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1].rstrip() + "…"


def _raw(document: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    if not isinstance(document, dict):
        return [], []
    nodes = [
        n
        for n in document.get("nodes") or []
        if isinstance(n, dict) and isinstance(n.get("id"), str)
    ]
    edges = [
        e
        for e in document.get("edges") or []
        if isinstance(e, dict) and isinstance(e.get("from"), str)
    ]
    return nodes, edges


def _rows(nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> dict[str, int]:
    """Each step's row: one below the step that first reaches it from a trigger."""
    following: dict[str, list[str]] = {}
    for edge in edges:
        following.setdefault(edge["from"], []).append(str(edge.get("to")))
    row: dict[str, int] = {}
    queue = deque(n["id"] for n in nodes if n.get("type") == "trigger")
    for start in queue:
        row[start] = 0
    while queue:
        current = queue.popleft()
        for target in following.get(current, []):
            if target not in row:
                row[target] = row[current] + 1
                queue.append(target)
    last = max(row.values(), default=-1)
    for node in nodes:  # steps nothing reaches yet: a row below the rest
        row.setdefault(node["id"], last + 1)
    return row


def sketch(
    new: Any,
    old: Any,
    new_names: Mapping[str, StepName],
    old_names: Mapping[str, StepName],
    added: set[str],
    changed: set[str],
    removed: set[str],
    waiting: Mapping[str, int],
) -> Sketch:
    """The drawing of `new`, marked against `old` (None: a first version, nothing marked)."""
    nodes, edges = _raw(new)
    row_of = _rows(nodes, edges)
    rows: dict[int, list[str]] = {}
    for node in nodes:
        rows.setdefault(row_of[node["id"]], []).append(node["id"])
    widest = max((len(ids) for ids in rows.values()), default=1)
    old_nodes, _ = _raw(old)
    gone = [n["id"] for n in old_nodes if n["id"] in removed]
    widest = max(widest, len(gone))
    width = MARGIN * 2 + widest * CARD_W + (widest - 1) * GAP_X
    result = Sketch(width=width)
    place: dict[str, tuple[int, int]] = {}
    for number, ids in sorted(rows.items()):
        span = len(ids) * CARD_W + (len(ids) - 1) * GAP_X
        left = (width - span) // 2
        y = MARGIN + number * (CARD_H + GAP_Y)
        for index, node_id in enumerate(ids):
            x = left + index * (CARD_W + GAP_X)
            place[node_id] = (x, y)
            name = new_names.get(node_id)
            status = (
                "added"
                if node_id in added
                else "changed"
                if node_id in changed
                else "same"
            )
            result.cards.append(
                Card(
                    node_id,
                    name.title if name else node_id,
                    name.summary if name else "",
                    status if old is not None else "same",
                    x,
                    y,
                    waiting.get(node_id, 0),
                )
            )
    bottom = MARGIN + (max(rows, default=-1) + 1) * (CARD_H + GAP_Y)
    for edge in edges:
        source, target = place.get(edge["from"]), place.get(str(edge.get("to")))
        if source is None or target is None:
            continue
        x1, y1 = source[0] + CARD_W // 2, source[1] + CARD_H
        x2, y2 = target[0] + CARD_W // 2, target[1]
        if y2 > y1:
            middle = y1 + GAP_Y // 2
            result.lines.append(Line(f"M{x1},{y1} V{middle} H{x2} V{y2}"))
        else:  # a way back up: around the right of the steps
            side = max(source[0], target[0]) + CARD_W + GAP_X // 2
            result.lines.append(
                Line(
                    f"M{source[0] + CARD_W},{source[1] + CARD_H // 2} H{side} "
                    f"V{target[1] + CARD_H // 2} H{target[0] + CARD_W}",
                    back=True,
                )
            )
    if gone:
        result.removed_label_y = bottom + 4
        span = len(gone) * CARD_W + (len(gone) - 1) * GAP_X
        left = (width - span) // 2
        y = bottom + 24
        for index, node_id in enumerate(gone):
            name = old_names.get(node_id)
            result.cards.append(
                Card(
                    node_id,
                    name.title if name else node_id,
                    name.summary if name else "",
                    "removed",
                    left + index * (CARD_W + GAP_X),
                    y,
                    waiting.get(node_id, 0),
                )
            )
        bottom = y + CARD_H + GAP_Y
    result.height = bottom - GAP_Y + MARGIN
    return result
