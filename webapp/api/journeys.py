from __future__ import annotations

from typing import Any

from flask import jsonify, request
from sqlalchemy import select

from engine.analytics import stats
from engine.decisions import store as decision_store
from engine.execution import drains
from engine.execution.simulate import simulate
from engine.journeys import JourneyError, lifecycle, moves, plans, read
from engine.models import Journey, JourneyStatus, JourneyVersion, Role, RunMove, utcnow
from engine.policies import store as policy_store
from webapp.api import bp
from webapp.api.errors import ApiError, json_body
from webapp.paging import paginate
from webapp.security import acting_user, requires
from webapp.services import db, services


def _context():  # type: ignore[no-untyped-def]
    settings = services().settings
    return lifecycle.check_context(
        db(), settings.webhook_allowed_hosts, settings.outbound_allowed_networks
    )


def _describe(journey: Journey) -> dict[str, Any]:
    return read.describe(db(), journey, _context())


@bp.post("/journeys")
@requires(Role.marketer)
def create_journey() -> Any:
    """Create a journey from a document; 422 with every problem if it has any."""
    journey, _problems = lifecycle.create_journey(
        db(), json_body(max_keys=None), _context(), acting_user()
    )
    db().commit()
    response = jsonify(
        id=journey.id,
        draft=journey.draft,
        revision=journey.draft_revision,
        status=journey.status.value,
    )
    response.status_code = 201
    response.headers["Location"] = (
        f"{request.url_root.rstrip('/')}/api/v1/journeys/{journey.id}"
    )
    return response


@bp.get("/journeys")
@requires(Role.viewer)
def list_journeys() -> Any:
    status = request.args.get("status", "")
    statement = select(Journey).order_by(Journey.id)
    if status:
        if status not in JourneyStatus.__members__:
            raise ApiError(
                422,
                f"status is one of {', '.join(JourneyStatus.__members__)}",
                "status",
            )
        statement = statement.where(Journey.status == JourneyStatus(status))
    page = paginate(db(), statement)
    items = [
        {
            "id": j.id,
            "name": j.name,
            "status": j.status.value,
            "live_version": j.live_version,
            "revision": j.draft_revision,
        }
        for j in page.items
    ]
    return jsonify(journeys=items, page=page.number, pages=page.pages, total=page.total)


@bp.get("/journeys/<int:journey_id>")
@requires(Role.viewer)
def get_journey(journey_id: int) -> Any:
    return jsonify(_describe(lifecycle.get_journey(db(), journey_id)))


def expected_revision(what: str = "draft") -> int | None:
    """The revision number If-Match names (of the draft, or of `what`), or None."""
    header = request.headers.get("If-Match", "").strip().strip('"')
    if not header:
        return None
    if not (header.isascii() and header.isdigit()) or len(header) > 18:
        raise ApiError(
            400,
            f"If-Match carries the {what} revision number, e.g. If-Match: 3",
            "If-Match",
        )
    return int(header)


@bp.put("/journeys/<int:journey_id>/draft")
@requires(Role.marketer)
def replace_draft(journey_id: int) -> Any:
    """Replace the draft (problems are returned, not refused); If-Match guards the revision."""
    journey = lifecycle.get_journey(db(), journey_id)
    lifecycle.replace_draft(
        db(),
        journey,
        json_body(max_keys=None),
        _context(),
        acting_user(),
        expected_revision(),
    )
    db().commit()
    return jsonify(_describe(journey))


def _transition(journey_id: int, change: str) -> Any:
    journey = lifecycle.get_journey(db(), journey_id)
    user = acting_user()
    if change == "pause":
        lifecycle.pause(db(), journey, user)
    else:
        lifecycle.resume(db(), journey, user)
    db().commit()
    return jsonify(version=journey.live_version, status=journey.status.value)


@bp.post("/journeys/<int:journey_id>/publish")
@requires(Role.marketer)
def publish_journey(journey_id: int) -> Any:
    """Publish the draft; `{"migrate": {"<step>": "<new step>" | "stay" | "exit"}}` says
    where the customers waiting in the journey go (the default plan for steps left out)."""
    journey = lifecycle.get_journey(db(), journey_id)
    body = json_body() if request.data else {}
    if not isinstance(body, dict):
        raise ApiError(400, 'send {"migrate": {...}} or no body', "migrate")
    version, move = lifecycle.publish_with_plan(
        db(), journey, _context(), acting_user(), body.get("migrate")
    )
    db().commit()
    if move is not None:
        drains.enqueue_move(services().redis, move.id)
    return jsonify(
        version=version.number,
        status=journey.status.value,
        migrated=_by_step(db(), move) if move else {},
        **({"move": _move(move)} if move else {}),
    )


@bp.get("/journeys/<int:journey_id>/publish-plan")
@requires(Role.viewer)
def publish_plan(journey_id: int) -> Any:
    """Where publishing the draft would take the customers waiting in the journey."""
    journey = lifecycle.get_journey(db(), journey_id)
    checked = lifecycle.check_document(journey.draft, _context())
    proposal = plans.propose(db(), journey, checked.document)
    latest = moves.latest(db(), journey.id)
    return jsonify(
        **proposal.to_dict(),
        problems=[p.to_dict() for p in checked.problems],
        moving=_move(latest) if latest and latest.status.value == "moving" else None,
    )


def _by_step(session: Any, move: RunMove) -> dict[str, int]:
    """A move's planned runs by step: "<node>", or "v<n>:<node>" across versions."""
    numbers = dict(
        session.execute(
            select(JourneyVersion.id, JourneyVersion.number).where(
                JourneyVersion.journey_id == move.journey_id
            )
        ).all()
    )
    keys = [key.partition(":") for key in move.planned]
    several = len({version for version, _, _ in keys}) > 1
    return {
        (f"v{numbers[int(version)]}:{node}" if several else node): int(
            move.planned[f"{version}:{node}"]
        )
        for version, _, node in keys
    }


def _move(move: RunMove) -> dict[str, Any]:
    return {
        "id": move.id,
        "status": move.status.value,
        "waiting": sum(int(n) for n in move.planned.values()),
        "moved": sum(int(n) for n in move.moved.values()),
    }


@bp.post("/journeys/<int:journey_id>/pause")
@requires(Role.marketer)
def pause_journey(journey_id: int) -> Any:
    return _transition(journey_id, "pause")


@bp.post("/journeys/<int:journey_id>/resume")
@requires(Role.marketer)
def resume_journey(journey_id: int) -> Any:
    return _transition(journey_id, "resume")


@bp.post("/journeys/<int:journey_id>/simulate")
@requires(Role.marketer)
def simulate_journey(journey_id: int) -> Any:
    """Run a sample customer and timed events through the draft or a version; nothing is kept."""
    journey = lifecycle.get_journey(db(), journey_id)
    body = json_body(max_keys=None)
    which = body.get("version", "draft") if isinstance(body, dict) else "draft"
    if not (
        (isinstance(which, str) and which in {"draft", "live"})
        or (isinstance(which, int) and not isinstance(which, bool))
    ):
        raise ApiError(422, 'version is "draft", "live" or a version number', "version")
    if which == "draft":
        checked = lifecycle.check_document(journey.draft, _context())
        if checked.problems:
            raise JourneyError(
                422,
                "the draft has problems; fix them before simulating",
                checked.problems,
            )
    document = lifecycle.version_document(db(), journey, which)
    policies = policy_store.read(db())[0]
    result = simulate(
        document,
        body,
        utcnow().replace(microsecond=0),
        None,
        policies,
        lambda key: decision_store.live(db(), key),
    )
    db().rollback()  # a simulation reads, never writes
    return jsonify(result)


@bp.get("/journeys/<int:journey_id>/stats")
@requires(Role.viewer)
def journey_stats(journey_id: int) -> Any:
    """Runs entered, active, completed, exited, converted; per node entered/waiting/completed/failed."""
    lifecycle.get_journey(db(), journey_id)
    return jsonify(stats.journey_stats(db(), journey_id))
