"""Moving the customers already in a journey onto a version being published, by a plan.

Publishing makes a new version the one new runs start on. The runs already waiting inside
stay on their version unless a plan says otherwise: for each step of each version that holds
waiting runs, `stay` (on their version until they leave it), a step of the new version, or
`exit`. The default moves a run to the step of the same id and type in the new version and
leaves it where it is when that step is gone.

A run moved to the same step, unchanged, keeps waiting as it was (its timer and awaited event
go on); a run moved to any other or changed step enters it anew.

A plan is kept in SQL (`RunMove`) and applied by workers in batches, each one transaction:
a run is moved with its step and its counters or not at all, and a batch picks only runs
still on the old version at the planned step, so a batch repeated after a crash moves no run
twice. A run moved to a waiting step starts that wait at the moment of the move; a run moved
to an action step performs it once. Runs waiting for a delivery to settle stay where they
are, since the delivery resumes them at the step that made it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from engine import audit, batch, execution, steps, summaries
from engine.channels import channel_names
from engine.execution import document_of
from engine.language import graph
from engine.models import (
    Journey,
    JourneyVersion,
    MoveStatus,
    Run,
    RunMove,
    RunStatus,
    User,
    utcnow,
)
from engine.profiles import identity

STAY = "stay"
EXIT = "exit"
BATCH = 500


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


def _movable() -> Any:
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
        .where(Run.journey_id == journey.id, _movable())
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


def start(
    session: Session,
    journey: Journey,
    version: JourneyVersion,
    proposal: Proposal,
    plan: Mapping[str, str],
    actor: User | None,
) -> RunMove | None:
    """Record the plan of a publish for the workers (None when it moves nobody)."""
    moving = {key: target for key, target in plan.items() if target != STAY}
    if not moving:
        return None
    planned = {step.key: step.waiting for step in proposal.steps if step.key in moving}
    move = RunMove(
        journey_id=journey.id,
        version_id=version.id,
        plan=moving,
        planned=planned,
        moved={key: 0 for key in moving},
        status=MoveStatus.moving,
        created_by_id=actor.id if actor else None,
    )
    session.add(move)
    session.flush()
    audit.record(
        session,
        actor,
        "journey.move_runs",
        "journey",
        journey.id,
        {
            "version": version.number,
            "plan": {
                f"v{step.version}:{step.node}": moving[step.key]
                for step in proposal.steps
                if step.key in moving
            },
            "waiting": sum(planned.values()),
        },
    )
    return move


def _reason(
    session: Session,
    move: RunMove,
    from_version: int,
    from_title: str,
    target: str,
    to_title: str,
    number: int,
) -> str:
    actor = session.get(User, move.created_by_id) if move.created_by_id else None
    by = f" by {actor.email}" if actor else ""
    if target == EXIT:
        return (
            f"moved out of the journey from v{from_version} {from_title!r} when "
            f"version {number} was published{by}"
        )
    return (
        f"moved from v{from_version} {from_title!r} to v{number} {to_title!r} when "
        f"version {number} was published{by}"
    )


def move_batch(
    session: Session,
    move: RunMove,
    effects: execution.Effects,
    now: datetime | None = None,
    limit: int = BATCH,
    skip_locked: bool = True,
) -> int:
    """Move up to `limit` runs of the plan in this transaction; the number moved.

    On PostgreSQL, runs another transaction holds (an event or a timer applied to them now)
    are skipped with `skip_locked` and taken by a later batch, if they are still at the
    planned step then.
    """
    now = now or utcnow()
    new_version = session.get(JourneyVersion, move.version_id)
    if new_version is None:
        return 0
    new_document = document_of(session, new_version.id)
    channels = channel_names(session)
    new_names = summaries.step_names(graph.to_dict(new_document), channels)
    postgres = session.get_bind().dialect.name == "postgresql"
    moved = dict(move.moved)
    total = 0
    for key, target in move.plan.items():
        if total >= limit:
            break
        version_id_text, _, node = key.partition(":")
        version_id = int(version_id_text)
        statement = (
            select(Run)
            .where(
                Run.journey_id == move.journey_id,
                Run.version_id == version_id,
                Run.current_node == node,
                _movable(),
            )
            .order_by(Run.id)
            .limit(limit - total)
        )
        if postgres:
            statement = statement.with_for_update(skip_locked=skip_locked)
        runs = list(session.scalars(statement))
        if not runs:
            continue
        old_document = document_of(session, version_id)
        old_number = session.scalar(
            select(JourneyVersion.number).where(JourneyVersion.id == version_id)
        )
        old_names = summaries.step_names(graph.to_dict(old_document), channels)
        reason = _reason(
            session,
            move,
            int(old_number or 0),
            old_names[node].title if node in old_names else node,
            target,
            new_names[target].title if target in new_names else target,
            new_version.number,
        )
        read = batch.customers_of(session, (run.customer_id for run in runs))
        for run in runs:
            customer = read.customers.get(run.customer_id)
            if customer is None:
                continue
            if target == EXIT:
                _exit(session, run, old_document, reason, now)
                continue
            scope = identity.scope_of(session, customer)
            steps.add(
                session,
                run,
                target,
                new_document.node(target).type,
                "moved",
                {
                    "reason": reason,
                    "from_version": int(old_number or 0),
                    "from_node": node,
                },
                now,
            )
            run.version_id = new_version.id
            if _unchanged(old_document, new_document, node, target):
                continue  # the same wait goes on, on the new version
            execution.enter_node(session, run, target, scope, effects, now)
            if scope["traits"] != customer.traits:
                customer.traits = scope["traits"]
        moved[key] = int(moved.get(key, 0)) + len(runs)
        total += len(runs)
    move.moved = moved
    return total


def _unchanged(
    old: graph.Document, new: graph.Document, node: str, target: str
) -> bool:
    """Whether a run moves to the same step with the same settings: its wait goes on."""
    if node != target:
        return False
    before, after = old.node(node), new.node(target)
    return before.type == after.type and before.config == after.config


def _exit(
    session: Session, run: Run, document: graph.Document, reason: str, now: datetime
) -> None:
    state = execution.load_state(run)
    state.status = RunStatus.exited
    execution.save_state(run, state, now)
    node_type = document.node(run.current_node).type if run.current_node else "trigger"
    execution.add_step(
        session,
        run,
        run.current_node or "",
        node_type,
        "exited",
        {"reason": reason},
        now,
        arrived=False,
    )


def finish(move: RunMove, now: datetime | None = None) -> None:
    move.status = MoveStatus.done
    move.finished_at = now or utcnow()


def unfinished(session: Session) -> list[int]:
    """Moves still under way (for the sweeper to make sure a worker has them)."""
    return list(
        session.scalars(select(RunMove.id).where(RunMove.status == MoveStatus.moving))
    )


def latest(session: Session, journey_id: int) -> RunMove | None:
    return session.scalar(
        select(RunMove)
        .where(RunMove.journey_id == journey_id)
        .order_by(RunMove.id.desc())
        .limit(1)
    )
