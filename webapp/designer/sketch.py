"""A read-only drawing of a version about to be published, with what changed marked.

The publish review shows the new version as cards in rows (each step one row below the last
of the steps that lead to it, so the journey reads top to bottom), added steps marked, changed
steps highlighted with their summary, and the steps that are gone ghosted in a row of their
own. An edge that skips rows runs down a lane left of the cards rather than through them, a
way back up runs right of them, and a branch's edge carries its words ("yes", "timed out").
It is drawn on the server as SVG: a review needs no editing, and the page stays light.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.journeys.summaries import StepName, shortened
from engine.language import nodes as node_types
from engine.language.nodes._words import edge_words

CARD_W, CARD_H = 210, 66
GAP_X, GAP_Y = 24, 58
MARGIN = 12
LANE = 8  # between two edges that run down the left of the cards
# How many characters fit on a card (186 px inside its padding): the title at 14 px bold,
# the summary at 12 px; wider text is cut with an ellipsis and clipped to the card.
TITLE_CHARS, SUMMARY_CHARS = 22, 27


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
        return shortened(self.title, TITLE_CHARS)

    @property
    def short_summary(self) -> str:
        return shortened(self.summary, SUMMARY_CHARS)

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
    words: str = ""  # the branch it is, written at (x, y) just below its output
    x: int = 0
    y: int = 0

    @property
    def words_width(self) -> int:
        return _words_width(self.words)


def _words_width(words: str) -> int:
    """The width of the box behind an edge's words (11 px bold)."""
    return round(len(words) * 6.4 + 10) if words else 0


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
    """Each step's row: one below the lowest of the steps that lead to it from a trigger,
    leaving out the edges that go back to a step already on the way (a loop)."""
    known = {n["id"] for n in nodes}
    following: dict[str, list[str]] = {}
    for edge in edges:
        target = str(edge.get("to"))
        if edge["from"] in known and target in known:
            following.setdefault(edge["from"], []).append(target)
    # Depth first from the triggers: an edge to a step still being walked goes back up.
    order: list[str] = []  # each step after every step it leads to, then reversed
    seen: set[str] = set()
    for start in (n["id"] for n in nodes if n.get("type") == "trigger"):
        if start in seen:
            continue
        seen.add(start)
        stack = [(start, iter(following.get(start, [])))]
        while stack:
            current, rest = stack[-1]
            step = next(rest, None)
            if step is None:
                stack.pop()
                order.append(current)
            elif step not in seen:
                seen.add(step)
                stack.append((step, iter(following.get(step, []))))
    order.reverse()
    row: dict[str, int] = {step: 0 for step in order}
    done = set()
    for current in order:
        done.add(current)
        for target in following.get(current, []):
            if target not in done:  # a forward edge
                row[target] = max(row[target], row[current] + 1)
    last = max(row.values(), default=-1)
    for node in nodes:  # steps nothing reaches yet: a row below the rest
        row.setdefault(node["id"], last + 1)
    return row


def _outputs(type_name: str, config: Any, used: list[str]) -> list[str]:
    """A step's outputs left to right as the canvas draws them: in the order its type lists
    them (after those only its edges name, such as a decision table's outcomes), its usual
    way on ("out") in the middle of an odd number."""
    try:
        known = [port.name for port in node_types.get(type_name).ports(config or {})]
    except (node_types.UnknownNodeType, AttributeError, TypeError, ValueError):
        known = []
    ordered = [p for p in used if p not in known] + known
    if "out" in ordered and len(ordered) % 2:
        ordered.remove("out")
        ordered.insert(len(ordered) // 2, "out")
    return ordered


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
    long_edges = sum(
        1
        for e in edges
        if e["from"] in row_of
        and str(e.get("to")) in row_of
        and row_of[str(e.get("to"))] - row_of[e["from"]] > 1
    )
    lanes = LANE * long_edges  # room left of the cards for edges that skip rows
    loops = any(
        row_of[str(e.get("to"))] <= row_of[e["from"]]
        for e in edges
        if e["from"] in row_of and str(e.get("to")) in row_of
    )
    width = MARGIN * 2 + lanes + widest * CARD_W + (widest - 1) * GAP_X
    width += GAP_X if loops else 0  # room right of the cards for the ways back up
    result = Sketch(width=width)
    place: dict[str, tuple[int, int]] = {}
    for number, ids in sorted(rows.items()):
        span = len(ids) * CARD_W + (len(ids) - 1) * GAP_X
        left = lanes + (width - lanes - (GAP_X if loops else 0) - span) // 2
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
    types = {n["id"]: (str(n.get("type")), n.get("config")) for n in nodes}
    used: dict[str, list[str]] = {}
    for edge in edges:
        ports = used.setdefault(edge["from"], [])
        port = str(edge.get("port") or "out")
        if port not in ports:
            ports.append(port)
    outputs = {
        step: _outputs(*types[step], ports)
        for step, ports in used.items()
        if step in types
    }
    lane = 0
    for edge in edges:
        source, target = place.get(edge["from"]), place.get(str(edge.get("to")))
        if source is None or target is None:
            continue
        type_name, config = types[edge["from"]]
        port = str(edge.get("port") or "out")
        words = edge_words(type_name, config, port)
        ports = outputs[edge["from"]]
        # Each output its own place along the card's bottom, as on the canvas.
        x1 = source[0] + CARD_W * (2 * ports.index(port) + 1) // (2 * len(ports))
        y1 = source[1] + CARD_H
        x2, y2 = target[0] + CARD_W // 2, target[1]
        below = (
            y1 + 40
        )  # the run across the gap below the step it leaves, under its words
        # Outputs too close for their words side by side have them on two lines.
        crowded = len(ports) > 2 and CARD_W // len(ports) < max(
            _words_width(edge_words(type_name, config, p)) for p in ports
        )
        words_y = y1 + (28 if crowded and ports.index(port) % 2 else 11)
        if y2 > y1 + CARD_H + GAP_Y:  # over rows between: down a lane left of the cards
            lane += 1
            side = MARGIN + lanes - lane * LANE
            path = f"M{x1},{y1} V{below} H{side} V{y2 - GAP_Y // 2} H{x2} V{y2}"
            result.lines.append(Line(path, words=words, x=x1, y=words_y))
        elif y2 > y1:
            path = f"M{x1},{y1} V{below} H{x2} V{y2}"
            result.lines.append(Line(path, words=words, x=x1, y=words_y))
        else:  # a way back up: across the gaps and up a lane right of the cards
            side = width - MARGIN
            path = f"M{x1},{y1} V{below} H{side} V{y2 - GAP_Y // 2 + 6} H{x2} V{y2}"
            result.lines.append(Line(path, back=True, words=words, x=x1, y=words_y))
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
