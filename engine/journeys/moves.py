"""Applying a publish plan (engine.journeys.plans) to the runs already inside.

A plan is kept in SQL (`RunMove`) and applied by workers in batches, each one transaction:
a run is moved with its step and its counters or not at all, and a batch picks only runs
still on the old version at the planned step, so a batch repeated after a crash moves no run
twice. A run moved to a waiting step starts that wait at the moment of the move; a run moved
to an action step performs it once. Runs waiting for a delivery to settle stay where they
are, since the delivery resumes them at the step that made it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import audit, execution
from engine.channels import channel_names
from engine.execution import batch, live_runs, persist, rows, writes
from engine.execution.documents import document_of
from engine.journeys import summaries
from engine.journeys.plans import EXIT, STAY, Proposal, movable
from engine.language import graph
from engine.models import (
    Customer,
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

BATCH = 500


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
                movable(),
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
            with rows.in_trace_of(session, run, "move"):
                _move_run(
                    session,
                    run,
                    customer,
                    (old_document, new_document, old_number, new_version),
                    (node, target, reason),
                    effects,
                    now,
                )
        moved[key] = int(moved.get(key, 0)) + len(runs)
        total += len(runs)
    move.moved = moved
    return total


def _move_run(
    session: Session,
    run: Run,
    customer: Customer,
    versions: tuple[graph.Document, graph.Document, int | None, JourneyVersion],
    where: tuple[str, str, str],
    effects: execution.Effects,
    now: datetime,
) -> None:
    """Move one run to `target` on the new version (or out of the journey)."""
    old_document, new_document, old_number, new_version = versions
    node, target, reason = where
    if target == EXIT:
        _exit(session, run, old_document, reason, now)
        return
    scope = identity.scope_of(session, customer)
    rows.add_step(
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
        return  # the same wait goes on, on the new version
    live_runs.enter_node(session, run, target, scope, effects, now)
    if scope["traits"] != customer.traits:
        customer.traits = scope["traits"]


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
    state = persist.load_state(run)
    state.status = RunStatus.exited
    persist.save_state(session, run, state, now)
    node_type = document.node(run.current_node).type if run.current_node else "trigger"
    writes.add_step(
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
