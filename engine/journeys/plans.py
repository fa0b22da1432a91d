"""Moving the customers already in a journey onto a version being published, by a plan.

Publishing makes a new version the one new runs start on. The runs already waiting inside
stay on their version unless a plan says otherwise: for each step of each version that holds
waiting runs, `stay` (on their version until they leave it), a step of the new version, or
`exit`. The default moves a run to the step of the same id and type in the new version and
leaves it where it is when that step is gone.

A run moved to the same step, unchanged, keeps waiting as it was (its timer and awaited event
go on); a run moved to any other or changed step enters it anew.

This module proposes and checks plans and words them; engine.journeys.moves applies them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from engine.channels import channel_names
from engine.execution.documents import document_of
from engine.journeys import summaries
from engine.language import graph
from engine.models import (
    Journey,
    JourneyVersion,
    Run,
    RunStatus,
)

STAY = "stay"


EXIT = "exit"


class PlanError(ValueError):
    """A plan that cannot be applied; `field` names the entry at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class HeldStep:
    """A step of a version holding waiting runs, and where they go by default."""

    version_id: int
    version: int
    node: str
    type: str
    title: str
    summary: str
    waiting: int
    default: str
    unchanged: bool = False  # the new version has this step with the same settings

    @property
    def key(self) -> str:
        return f"{self.version_id}:{self.node}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "node": self.node,
            "type": self.type,
            "label": self.title,
            "summary": self.summary,
            "waiting": self.waiting,
            "default": self.default,
        }


@dataclass(frozen=True)
class Target:
    """A step of the new version a run can be moved to."""

    node: str
    type: str
    title: str
    summary: str
    waits: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "type": self.type,
            "label": self.title,
            "summary": self.summary,
        }


@dataclass(frozen=True)
class Proposal:
    """What a publish would do to the runs in the journey, before any choice."""

    steps: list[HeldStep]
    targets: list[Target]

    @property
    def from_versions(self) -> list[int]:
        return sorted({step.version for step in self.steps})

    def to_dict(self) -> dict[str, Any]:
        return {
            "from_versions": self.from_versions,
            "steps": [step.to_dict() for step in self.steps],
            "targets": [target.node for target in self.targets],
            "target_steps": [target.to_dict() for target in self.targets],
        }


def movable() -> Any:
    """Waiting runs a move may take: parked on a timer or an awaited event, not on a
    delivery (a run held by its delivery has neither)."""
    return (Run.status == RunStatus.waiting) & or_(
        Run.wake_at.is_not(None), Run.awaiting_event.is_not(None)
    )


def _waits(node_type: str) -> bool:
    return node_type in {"wait", "wait_until", "wait_for_event"}


def propose(session: Session, journey: Journey, document: graph.Document) -> Proposal:
    """The steps holding waiting runs (every version) and the new version's steps."""
    channels = channel_names(session)
    new_names = summaries.step_names(graph.to_dict(document), channels)
    targets = [
        Target(
            node.id,
            node.type,
            new_names[node.id].title,
            new_names[node.id].summary,
            _waits(node.type),
        )
        for node in document.nodes
        if node.type != "trigger"
    ]
    new_nodes = {node.id: node for node in document.nodes}
    rows = session.execute(
        select(Run.version_id, JourneyVersion.number, Run.current_node, func.count())
        .join(JourneyVersion, JourneyVersion.id == Run.version_id)
        .where(Run.journey_id == journey.id, movable())
        .group_by(Run.version_id, JourneyVersion.number, Run.current_node)
        .order_by(JourneyVersion.number, Run.current_node)
    ).all()
    held: list[HeldStep] = []
    for version_id, number, node_id, waiting in rows:
        old = document_of(session, version_id)
        names = summaries.step_names(graph.to_dict(old), channels)
        node = old.node(str(node_id))
        twin = new_nodes.get(node.id)
        same = twin is not None and twin.type == node.type and node.type != "trigger"
        held.append(
            HeldStep(
                version_id,
                int(number),
                node.id,
                node.type,
                names[node.id].title,
                names[node.id].summary,
                int(waiting),
                node.id if same else STAY,
                same and twin is not None and twin.config == node.config,
            )
        )
    return Proposal(held, targets)


def resolve(proposal: Proposal, choices: Any) -> dict[str, str]:
    """The plan, by held step key ("<version id>:<node>"), for the choices given.

    `choices` maps "<node>" (every version holding runs there) or "v<n>:<node>" to a step
    of the new version, "stay" or "exit"; the steps it leaves out take their default.
    PlanError names an unknown step or a target that cannot hold a waiting run.
    """
    if choices is None:
        choices = {}
    if not isinstance(choices, dict):
        raise PlanError(
            "migrate",
            'send an object of step to where its customers go, e.g. {"wait": "hold"}',
        )
    targets = {target.node: target for target in proposal.targets}
    plan = {step.key: step.default for step in proposal.steps}
    for name, target in choices.items():
        field = f"migrate.{name}"
        version: int | None = None
        node = str(name)
        if node.startswith("v") and ":" in node:
            number, _, rest = node[1:].partition(":")
            if number.isascii() and number.isdigit() and len(number) <= 9:
                version, node = int(number), rest
        matching = [
            step
            for step in proposal.steps
            if step.node == node and (version is None or step.version == version)
        ]
        if not matching:
            raise PlanError(
                field,
                f"no customers wait at a step {name!r}; the steps holding customers are "
                + ", ".join(f"v{step.version}:{step.node}" for step in proposal.steps)
                if proposal.steps
                else f"no customers wait at a step {name!r}; nobody is in the journey",
            )
        if not isinstance(target, str) or not (
            target in {STAY, EXIT} or target in targets
        ):
            raise PlanError(
                field,
                f"{target!r} is no step of the new version; choose one of its steps, "
                '"stay" or "exit"',
            )
        for step in matching:
            plan[step.key] = target
    return plan


def sentence(step: HeldStep, target: str, proposal: Proposal, number: int) -> str:
    """What a choice does to a step's customers, in one sentence for the publish review."""
    people = f"{step.waiting:,} customer{'' if step.waiting == 1 else 's'}"
    where = f"{people} waiting at {step.title!r} (version {step.version})"
    if target == STAY:
        return f"{where} stay on version {step.version} until they leave it."
    if target == EXIT:
        return f"{where} leave the journey now."
    chosen = next(t for t in proposal.targets if t.node == target)
    if target == step.node and step.unchanged:
        return (
            f"{where} keep waiting at {chosen.title!r} as before, now in version "
            f"{number}."
        )
    if chosen.waits:
        return (
            f"{where} will {_lower_first(chosen.summary)}, counted from now, at "
            f"{chosen.title!r} in version {number}."
        )
    return (
        f"{where} go to {chosen.title!r} in version {number} now, and it is done once: "
        f"{_lower_first(chosen.summary)}."
    )


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text else text
