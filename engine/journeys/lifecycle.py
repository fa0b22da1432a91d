"""A journey's life: drafts, immutable published versions, pause and resume, archive and
restore; every change audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from ipaddress import IPv4Network, IPv6Network
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from engine import audit
from engine.analytics import counters
from engine.channels import channel_slugs
from engine.decisions import store as decision_store
from engine.execution.documents import document_of
from engine.journeys import JourneyError, moves, plans
from engine.language import graph
from engine.language.nodes import CheckContext
from engine.models import (
    IN_FLIGHT,
    LARGEST_ID,
    Journey,
    JourneyStatus,
    JourneyVersion,
    Run,
    RunMove,
    RunStatus,
    Step,
    User,
)


@dataclass(frozen=True)
class Checked:
    """A document read and validated: canonical form plus every problem found."""

    document: graph.Document
    problems: list[graph.Problem]

    @property
    def canonical(self) -> dict[str, Any]:
        return graph.to_dict(self.document)


def check_context(
    session: Session,
    allowed_hosts: frozenset[str] = frozenset(),
    allowed_networks: tuple[IPv4Network | IPv6Network, ...] = (),
) -> CheckContext:
    return CheckContext(
        channels=channel_slugs(session),
        decisions=decision_store.live_outcomes(session),
        allowed_hosts=allowed_hosts,
        allowed_networks=allowed_networks,
    )


def check_document(raw: Any, ctx: CheckContext) -> Checked:
    """Read and validate; raise JourneyError(422) when the document cannot even be read
    or its name or description is too long to save."""
    document, problems = graph.check(raw, ctx)
    if document is None:
        raise JourneyError(422, "the document cannot be read", problems)
    oversized = graph.length_problems(document)
    if oversized:
        raise JourneyError(422, "the document has problems", oversized)
    return Checked(document, problems)


def get_journey(session: Session, journey_id: int) -> Journey:
    journey = session.get(Journey, journey_id)
    if journey is None:
        raise JourneyError(404, f"there is no journey {journey_id}")
    return journey


def create_journey(
    session: Session,
    raw: Any,
    ctx: CheckContext,
    actor: User | None,
    allow_problems: bool = False,
) -> tuple[Journey, list[graph.Problem]]:
    """A new journey whose draft is `raw`; refused (422) while it has problems unless allowed."""
    checked = check_document(raw, ctx)
    if checked.problems and not allow_problems:
        raise JourneyError(422, "the document has problems", checked.problems)
    journey = Journey(
        name=checked.document.name,
        status=JourneyStatus.draft,
        draft=checked.canonical,
        draft_revision=1,
        created_by_id=actor.id if actor else None,
    )
    session.add(journey)
    session.flush()
    audit.record(
        session, actor, "journey.create", "journey", journey.id, {"name": journey.name}
    )
    return journey, checked.problems


def replace_draft(
    session: Session,
    journey: Journey,
    raw: Any,
    ctx: CheckContext,
    actor: User | None,
    expected_revision: int | None = None,
) -> list[graph.Problem]:
    """Save `raw` as the draft (problems allowed: publishing is what refuses them).

    With `expected_revision`, a draft changed since that revision is not overwritten (412).
    """
    if journey.status is JourneyStatus.archived:
        raise JourneyError(409, "the journey is archived; restore it before editing")
    if expected_revision is not None and expected_revision != journey.draft_revision:
        raise JourneyError(
            412,
            f"the draft changed since revision {expected_revision} (it is at {journey.draft_revision}); "
            "reload it and apply your change again",
        )
    checked = check_document(raw, ctx)
    journey.draft = checked.canonical
    journey.name = checked.document.name
    journey.draft_revision += 1
    audit.record(
        session,
        actor,
        "journey.draft",
        "journey",
        journey.id,
        {"revision": journey.draft_revision},
    )
    return checked.problems


def live_version(session: Session, journey: Journey) -> JourneyVersion | None:
    if journey.live_version is None:
        return None
    return session.scalar(
        select(JourneyVersion).where(
            JourneyVersion.journey_id == journey.id,
            JourneyVersion.number == journey.live_version,
        )
    )


def publish(
    session: Session, journey: Journey, ctx: CheckContext, actor: User | None
) -> JourneyVersion:
    """Make the draft a new immutable version and the one new runs start on; the runs in
    the journey move by the default plan (see engine.journeys.moves)."""
    return publish_with_plan(session, journey, ctx, actor)[0]


def publish_with_plan(
    session: Session,
    journey: Journey,
    ctx: CheckContext,
    actor: User | None,
    choices: Any = None,
) -> tuple[JourneyVersion, RunMove | None]:
    """Publish the draft, and plan where the runs already in the journey go (`choices` as
    `plans.resolve` reads them; the default for every step left out). The move is made by
    workers after the commit (`engine.execution.drains.move_runs`)."""
    if journey.status is JourneyStatus.archived:
        raise JourneyError(409, "the journey is archived; restore it before publishing")
    checked = check_document(journey.draft, ctx)
    if checked.problems:
        raise JourneyError(
            422, "the draft has problems; fix them before publishing", checked.problems
        )
    current = live_version(session, journey)
    if current is not None and current.document == checked.canonical:
        if journey.status is JourneyStatus.draft:
            journey.status = JourneyStatus.live
        return current, None
    proposal = plans.propose(session, journey, checked.document)
    try:
        plan = plans.resolve(proposal, choices)
    except plans.PlanError as error:
        raise JourneyError(422, str(error), field=error.field) from None
    number = (
        session.scalar(
            select(func.max(JourneyVersion.number)).where(
                JourneyVersion.journey_id == journey.id
            )
        )
        or 0
    ) + 1
    version = JourneyVersion(
        journey_id=journey.id,
        number=number,
        document=checked.canonical,
        published_by_id=actor.id if actor else None,
    )
    session.add(version)
    journey.live_version = number
    if journey.status is JourneyStatus.draft:
        journey.status = JourneyStatus.live
    session.flush()
    audit.record(
        session, actor, "journey.publish", "journey", journey.id, {"version": number}
    )
    move = moves.start(session, journey, version, proposal, plan, actor)
    return version, move


def pause(session: Session, journey: Journey, actor: User | None) -> None:
    """Stop entries and hold runs where they are."""
    if journey.status is not JourneyStatus.live:
        raise JourneyError(
            409,
            f"only a live journey can be paused; this one is {journey.status.value}",
        )
    journey.status = JourneyStatus.paused
    audit.record(session, actor, "journey.pause", "journey", journey.id)


def resume(session: Session, journey: Journey, actor: User | None) -> None:
    if journey.status is not JourneyStatus.paused:
        raise JourneyError(
            409,
            f"only a paused journey can be resumed; this one is {journey.status.value}",
        )
    journey.status = JourneyStatus.live
    audit.record(session, actor, "journey.resume", "journey", journey.id)


def archive(
    session: Session, journey: Journey, actor: User | None, now: datetime
) -> int:
    """Hide a journey that is not live and end its runs; returns how many runs ended."""
    if journey.status is JourneyStatus.live:
        raise JourneyError(409, "pause the journey before archiving it")
    if journey.status is JourneyStatus.archived:
        return 0
    in_flight = (Run.journey_id == journey.id) & Run.status.in_(IN_FLIGHT)
    # RETURNING names exactly the runs this statement ended (not one a worker ended meanwhile).
    ended_runs = session.execute(
        update(Run)
        .where(in_flight)
        .values(
            status=RunStatus.exited, ended_at=now, wake_at=None, awaiting_event=None
        )
        .returning(Run.id, Run.version_id, Run.current_node)
        .execution_options(synchronize_session=False)
    ).all()
    if ended_runs:
        session.execute(
            insert(Step),
            [
                {
                    "run_id": run_id,
                    "node_id": node or "",
                    "node_type": _node_type(session, version_id, node),
                    "outcome": RunStatus.exited.value,
                    "detail": {"reason": "the journey was archived"},
                    "at": now,
                }
                for run_id, version_id, node in ended_runs
            ],
        )
    for _run_id, version_id, node in ended_runs:
        counters.run_left(session, now, journey.id, version_id, node, "exited")
    ended = len(ended_runs)
    journey.status = JourneyStatus.archived
    audit.record(
        session, actor, "journey.archive", "journey", journey.id, {"runs_ended": ended}
    )
    return ended


def _node_type(session: Session, version_id: int, node_id: str | None) -> str:
    try:
        return document_of(session, version_id).node(node_id or "").type
    except (KeyError, LookupError):
        return "trigger"


def restore(session: Session, journey: Journey, actor: User | None) -> None:
    """Bring an archived journey back: paused if it was ever published, else a draft."""
    if journey.status is not JourneyStatus.archived:
        raise JourneyError(409, f"the journey is {journey.status.value}, not archived")
    journey.status = (
        JourneyStatus.paused
        if journey.live_version is not None
        else JourneyStatus.draft
    )
    audit.record(session, actor, "journey.restore", "journey", journey.id)


def duplicate(
    session: Session, journey: Journey, ctx: CheckContext, actor: User | None
) -> Journey:
    """A new draft journey with a copy of this one's draft, named as a copy."""
    document = dict(journey.draft)
    document["name"] = _copy_name(session, journey.name)
    copy, _problems = create_journey(session, document, ctx, actor, allow_problems=True)
    return copy


def _copy_name(session: Session, name: str) -> str:
    taken = set(
        session.scalars(
            select(Journey.name).where(Journey.name.like(f"Copy of {name}%"))
        )
    )
    candidate, n = f"Copy of {name}", 2
    while candidate in taken:
        candidate, n = f"Copy of {name} ({n})", n + 1
    return candidate[:200]


def restore_version(
    session: Session,
    journey: Journey,
    number: int,
    ctx: CheckContext,
    actor: User | None,
) -> list[graph.Problem]:
    """Make published version `number` the draft again (the live version is untouched)."""
    document = graph.to_dict(version_document(session, journey, number))
    problems = replace_draft(session, journey, document, ctx, actor)
    audit.record(
        session,
        actor,
        "journey.restore_version",
        "journey",
        journey.id,
        {"version": number},
    )
    return problems


def version_document(
    session: Session, journey: Journey, which: str | int
) -> graph.Document:
    """The draft ("draft"), the live version ("live") or version N, as a document."""
    if which == "draft":
        return graph.parse(journey.draft)
    if which == "live":
        version = live_version(session, journey)
        if version is None:
            raise JourneyError(409, "the journey has no published version yet")
        return graph.parse(version.document)
    number = int(which)
    if not 1 <= number <= LARGEST_ID:  # no row holds it, nor can PostgreSQL compare it
        raise JourneyError(404, f"the journey has no version {number}")
    found = session.scalar(
        select(JourneyVersion).where(
            JourneyVersion.journey_id == journey.id, JourneyVersion.number == number
        )
    )
    if found is None:
        raise JourneyError(404, f"the journey has no version {number}")
    return graph.parse(found.document)
