"""Reading journeys: what changed between live and draft, runs in flight per step, a version's
document, and the description the API gives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.journeys.lifecycle import live_version
from engine.language import graph
from engine.language.nodes import CheckContext
from engine.models import (
    IN_FLIGHT,
    Journey,
    Run,
)


@dataclass(frozen=True)
class Changes:
    """What publishing the draft would change in the live version, node by node."""

    added: list[str]
    removed: list[str]
    changed: list[str]
    edges_changed: bool
    settings_changed: bool

    @property
    def any(self) -> bool:
        return bool(
            self.added
            or self.removed
            or self.changed
            or self.edges_changed
            or self.settings_changed
        )


def changes(live: dict[str, Any] | None, draft: dict[str, Any]) -> Changes:
    """Compare two canonical documents (layout and notes do not count as changes)."""
    before = {n["id"]: n for n in (live or {}).get("nodes", [])}
    after = {n["id"]: n for n in draft.get("nodes", [])}

    def edges(doc: dict[str, Any] | None) -> set[tuple[str, str, str]]:
        return {
            (e["from"], e.get("port") or "out", e["to"])
            for e in (doc or {}).get("edges", [])
        }

    keys = ("name", "entry", "goal", "exit_on")
    return Changes(
        added=[i for i in after if i not in before],
        removed=[i for i in before if i not in after],
        changed=[i for i in after if i in before and after[i] != before[i]],
        edges_changed=edges(live) != edges(draft),
        settings_changed=live is not None
        and any((live or {}).get(k) != draft.get(k) for k in keys),
    )


def in_flight_by_node(session: Session, journey: Journey) -> dict[str, int]:
    """Customers in the journey now, by the node they are at."""
    rows = session.execute(
        select(Run.current_node, func.count())
        .where(
            Run.journey_id == journey.id,
            Run.status.in_(IN_FLIGHT),
        )
        .group_by(Run.current_node)
    ).all()
    return {str(node): int(count) for node, count in rows}


def describe(session: Session, journey: Journey, ctx: CheckContext) -> dict[str, Any]:
    """The journey as the API shows it: the draft, its problems and the live version."""
    live = live_version(session, journey)
    _document, problems = graph.check(journey.draft, ctx)
    return {
        "id": journey.id,
        "name": journey.name,
        "status": journey.status.value,
        "revision": journey.draft_revision,
        "draft": journey.draft,
        "problems": [p.to_dict() for p in problems],
        "live": None
        if live is None
        else {
            "version": live.number,
            "published_at": live.published_at.isoformat(),
            "document": live.document,
        },
        "updated_at": journey.updated_at.isoformat(),
    }
