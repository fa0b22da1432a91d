from __future__ import annotations

import json
from typing import Any

from flask import (
    Response,
    flash,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import select

from engine.analytics import stats
from engine.decisions import store as decision_store
from engine.execution import drains
from engine.execution import simulate as simulation
from engine.intake import payload
from engine.journeys import (
    JourneyError,
    lifecycle,
    moves,
    plans,
    read,
    review,
    starters,
    summaries,
)
from engine.language import graph, rules
from engine.models import (
    Journey,
    JourneyStatus,
    JourneyVersion,
    Role,
    User,
    utcnow,
)
from engine.policies import store as policy_store
from webapp.designer import bp, palette, sketch
from webapp.designer.forms import BLANK, ConfirmForm, ImportForm, NewJourneyForm
from webapp.htmx import page_or_partial
from webapp.paging import paginate
from webapp.security import acting_user, requires
from webapp.services import db, services

MAX_IMPORT_BYTES = 1024 * 1024


def _context() -> Any:
    settings = services().settings
    return lifecycle.check_context(
        db(), settings.webhook_allowed_hosts, settings.outbound_allowed_networks
    )


def _journey(journey_id: int) -> Journey:
    try:
        return lifecycle.get_journey(db(), journey_id)
    except JourneyError as error:
        from werkzeug.exceptions import NotFound

        raise NotFound(str(error)) from error


@bp.get("/")
@requires(Role.viewer)
def index() -> Any:
    """Journeys, newest change first, searchable by name and filtered by status."""
    query = request.args.get("q", "").strip()
    status = request.args.get("status", "")
    statement = select(Journey).order_by(Journey.updated_at.desc(), Journey.id.desc())
    if query:
        statement = statement.where(Journey.name.ilike(f"%{query}%"))
    if status in JourneyStatus.__members__:
        statement = statement.where(Journey.status == JourneyStatus(status))
    else:
        statement = statement.where(Journey.status != JourneyStatus.archived)
        status = ""
    page = paginate(db(), statement)
    return page_or_partial(
        "designer/index.html",
        "designer/_journeys.html",
        page=page,
        query=query,
        status=status,
        statuses=list(JourneyStatus),
        starters=starters.CATALOGUE,
    )


def _blank(name: str) -> dict[str, Any]:
    return {
        "schema": graph.SCHEMA,
        "name": name,
        "nodes": [
            {"id": "start", "type": "trigger", "config": {"event": ""}},
            {"id": "end", "type": "exit", "config": {}},
        ],
        "edges": [{"from": "start", "to": "end"}],
        "layout": {"start": {"x": 80, "y": 60}, "end": {"x": 80, "y": 240}},
    }


@bp.route("/new", methods=["GET", "POST"])
@requires(Role.marketer)
def new() -> Any:
    """Create a journey, blank or from a starter."""
    form = NewJourneyForm()
    if request.method == "GET" and request.args.get("starter"):
        form.starter.data = request.args["starter"]
        chosen = next(
            (s for s in starters.CATALOGUE if s.key == form.starter.data), None
        )
        form.name.data = form.name.data or (chosen.title if chosen else "")
    if not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        return render_template(
            "designer/new.html", form=form, starters=starters.CATALOGUE
        ), status
    name = form.name.data or ""
    document = (
        _blank(name)
        if form.starter.data == BLANK
        else {**starters.document(form.starter.data or ""), "name": name}
    )
    journey, problems = lifecycle.create_journey(
        db(), document, _context(), acting_user(), allow_problems=True
    )
    db().commit()
    flash(_created_message(journey.name, problems), _created_kind(problems))
    return redirect(url_for("designer.show", journey_id=journey.id))


def _created_kind(problems: list[graph.Problem]) -> str:
    """The flash's kind: "until-fixed" goes away on the canvas once the problems are fixed."""
    return "until-fixed" if problems else "success"


def _created_message(name: str, problems: list[graph.Problem]) -> str:
    if not problems:
        return f"Created “{name}”. It is a draft until you publish it."
    return (
        f"Created “{name}” as a draft with {len(problems)} problem"
        f"{'' if len(problems) == 1 else 's'} to fix before it can be published."
    )


@bp.route("/import", methods=["GET", "POST"])
@requires(Role.marketer)
def import_document() -> Any:
    """Create a journey from an uploaded document; a readable one with problems is kept as a draft."""
    form = ImportForm()
    if not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        return render_template("designer/import.html", form=form, problems=[]), status
    raw_bytes = form.document.data.read(MAX_IMPORT_BYTES + 1)
    problems: list[dict[str, Any]] = []
    if len(raw_bytes) > MAX_IMPORT_BYTES:
        form.document.errors = ["the file is larger than 1 MiB"]
    else:
        try:
            raw = json.loads(raw_bytes)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            form.document.errors = [f"the file is not JSON: {error}"]
        else:
            try:
                journey, found = lifecycle.create_journey(
                    db(), raw, _context(), acting_user(), allow_problems=True
                )
            except JourneyError as error:
                form.document.errors = [f"{error}:"]
                problems = [p.to_dict() for p in error.problems]
            else:
                db().commit()
                flash(_created_message(journey.name, found), _created_kind(found))
                return redirect(url_for("designer.show", journey_id=journey.id))
    return render_template("designer/import.html", form=form, problems=problems), 400


@bp.get("/<int:journey_id>")
@requires(Role.viewer)
def show(journey_id: int) -> Any:
    """One journey: its draft's nodes and problems, its versions, and what can be done."""
    journey = _journey(journey_id)
    description = read.describe(db(), journey, _context())
    viewing = request.args.get("version", type=int)
    if viewing is not None and not any(v.number == viewing for v in journey.versions):
        from werkzeug.exceptions import NotFound

        raise NotFound(f"the journey has no version {viewing}")
    in_flight_by_node = read.in_flight_by_node(db(), journey)
    in_flight = sum(in_flight_by_node.values())
    return render_template(
        "designer/show.html",
        move=moves.latest(db(), journey.id),
        journey=journey,
        description=description,
        problems_by_node=_problems_by_node(description["problems"]),
        in_flight=in_flight or 0,
        form=ConfirmForm(),
        can_edit=acting_user().role.includes(Role.marketer),
        palette=palette.catalogue(),
        viewing=viewing,
        in_flight_by_node=in_flight_by_node,
        sample_events=_sample_events(journey.draft),
        steps=summaries.named_steps(db(), journey.draft),
    )


def _sample_events(document: dict[str, Any]) -> str:
    """A first simulation to run: the trigger's event, now, with details that meet the
    trigger's condition where a simple one names them (`cart_value ≥ 50`: 50)."""
    for node in document.get("nodes", []):
        config = node.get("config") or {}
        if node.get("type") == "trigger" and config.get("event"):
            where = config.get("where")
            # A draft may hold a half-written condition: only a valid one is tried.
            details = _meeting(where) if where and not rules.check(where) else {}
            scope = {"event": {"type": config["event"], "properties": details}}
            if (
                details
                and isinstance(where, dict)
                and rules.evaluate(where, scope).matched
            ):
                return f"now {config['event']} {json.dumps(details)}"
            return f"now {config['event']}"
    return ""


def _meeting(rule: Any) -> dict[str, Any]:
    """Event details that meet `rule`'s comparisons of event properties, as far as a value
    can be read off each one (the sample is checked against the rule before it is used)."""
    if not isinstance(rule, dict):
        return {}
    if isinstance(rule.get("all"), list):
        found: dict[str, Any] = {}
        for part in rule["all"]:
            found.update(_meeting(part))
        return found
    if isinstance(rule.get("any"), list) and rule["any"]:
        return _meeting(rule["any"][0])
    field, op, value = rule.get("field"), rule.get("op"), rule.get("value")
    prefix = "event.properties."
    if (
        not isinstance(field, str)
        or not field.startswith(prefix)
        or "." in field[len(prefix) :]
    ):
        return {}
    name = field[len(prefix) :]
    if op in ("eq", "gte", "lte", "starts_with", "contains") and value is not None:
        return {name: value}
    if (
        op in ("gt", "lt")
        and isinstance(value, int | float)
        and not isinstance(value, bool)
    ):
        return {name: value + 1 if op == "gt" else value - 1}
    if op == "in" and isinstance(value, list) and value:
        return {name: value[0]}
    if op == "exists":
        return {name: "yes"}
    return {}


def _problems_by_node(problems: list[dict[str, Any]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for problem in problems:
        grouped.setdefault(problem.get("node") or "", []).append(problem["message"])
    return grouped


@bp.get("/<int:journey_id>/export")
@requires(Role.viewer)
def export(journey_id: int) -> Any:
    """The draft (or `?version=live` / a number) as a journey document to download."""
    journey = _journey(journey_id)
    which = request.args.get("version", "draft")
    try:
        document = graph.to_dict(lifecycle.version_document(db(), journey, which))
    except (JourneyError, ValueError) as error:
        from werkzeug.exceptions import NotFound

        raise NotFound(str(error)) from error
    slug = "".join(c if c.isalnum() else "-" for c in journey.name.lower()).strip("-")
    return Response(
        json.dumps(document, indent=2) + "\n",
        mimetype="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="{slug or "journey"}-{which}.json"'
        },
    )


@bp.post("/<int:journey_id>/duplicate")
@requires(Role.marketer)
def duplicate(journey_id: int) -> Any:
    """Copy the draft into a new draft journey."""
    form = ConfirmForm()
    journey = _journey(journey_id)
    if not form.validate_on_submit():
        return redirect(url_for("designer.show", journey_id=journey.id))
    copy = lifecycle.duplicate(db(), journey, _context(), acting_user())
    db().commit()
    flash(f"Created “{copy.name}” from the draft of “{journey.name}”.", "success")
    return redirect(url_for("designer.show", journey_id=copy.id))


@bp.route("/<int:journey_id>/archive", methods=["GET", "POST"])
@requires(Role.marketer)
def archive(journey_id: int) -> Any:
    """Ask, then archive: the journey leaves the list and its runs end."""
    journey = _journey(journey_id)
    form = ConfirmForm()
    in_flight_by_node = read.in_flight_by_node(db(), journey)
    in_flight = sum(in_flight_by_node.values())
    if not form.validate_on_submit():
        return render_template(
            "designer/archive.html", journey=journey, form=form, in_flight=in_flight
        )
    try:
        ended = lifecycle.archive(db(), journey, acting_user(), utcnow())
    except JourneyError as error:
        flash(str(error).capitalize() + ".", "error")
        return redirect(url_for("designer.show", journey_id=journey.id))
    db().commit()
    flash(
        f"Archived “{journey.name}”"
        + (f"; {ended} run{'' if ended == 1 else 's'} ended." if ended else "."),
        "success",
    )
    return redirect(url_for("designer.index"))


@bp.post("/<int:journey_id>/restore")
@requires(Role.marketer)
def restore(journey_id: int) -> Any:
    """Bring an archived journey back to the list."""
    journey = _journey(journey_id)
    if ConfirmForm().validate_on_submit():
        try:
            lifecycle.restore(db(), journey, acting_user())
        except JourneyError as error:
            flash(str(error).capitalize() + ".", "error")
        else:
            db().commit()
            flash(f"Restored “{journey.name}” as {journey.status.value}.", "success")
    return redirect(url_for("designer.show", journey_id=journey.id))


def _draft_answer(journey: Journey, problems: list[graph.Problem]) -> dict[str, Any]:
    """The draft as the canvas needs it: document, revision, problems, and per node its
    ports and what it does in words."""
    return {
        "revision": journey.draft_revision,
        "document": journey.draft,
        "problems": [p.to_dict() for p in problems],
        **_node_facts(journey.draft),
        "status": journey.status.value,
    }


def _node_facts(document: dict[str, Any]) -> dict[str, Any]:
    """Each node's output ports and summary, for the canvas."""
    ctx = _context()
    return {
        "ports": {
            node["id"]: palette.ports_of(node["type"], node.get("config") or {}, ctx)
            for node in document.get("nodes", [])
            if isinstance(node, dict) and "id" in node and "type" in node
        },
        "summaries": {
            node_id: step.summary
            for node_id, step in summaries.named_steps(db(), document).items()
        },
    }


@bp.get("/<int:journey_id>/draft.json")
@requires(Role.viewer)
def draft(journey_id: int) -> Any:
    """The draft for the canvas."""
    journey = _journey(journey_id)
    number = request.args.get("version", type=int)
    if number is None:
        _document, problems = graph.check(journey.draft, _context())
        return jsonify(_draft_answer(journey, problems))
    try:
        document = graph.to_dict(lifecycle.version_document(db(), journey, number))
    except JourneyError as error:
        return _json_error(error.status, str(error))
    return jsonify(
        {
            "revision": journey.draft_revision,
            "document": document,
            "problems": [],
            **_node_facts(document),
            "status": journey.status.value,
            "version": number,
        }
    )


@bp.put("/<int:journey_id>/draft.json")
@requires(Role.marketer)
def save_draft(journey_id: int) -> Any:
    """Autosave from the canvas: `{revision, document}`; 412 when another save came first."""
    journey = _journey(journey_id)
    try:
        body = payload.loads(request.get_data(), max_keys=None)
    except payload.PayloadError as error:
        return _json_error(400, f"{error.field}: {error}")
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("revision"), int):
        return _json_error(400, 'send {"revision": <number>, "document": {...}}')
    try:
        problems = lifecycle.replace_draft(
            db(),
            journey,
            body.get("document"),
            _context(),
            acting_user(),
            expected_revision=body["revision"],
        )
    except JourneyError as error:
        db().rollback()
        answer: dict[str, Any] = {
            "error": str(error),
            "problems": [p.to_dict() for p in error.problems],
        }
        if error.status == 412:
            answer["revision"] = journey.draft_revision
        return jsonify(answer), error.status
    db().commit()
    return jsonify(_draft_answer(journey, problems))


def _json_error(status: int, message: str) -> Any:
    return jsonify(error=message), status


@bp.route("/<int:journey_id>/publish", methods=["GET", "POST"])
@requires(Role.marketer)
def publish(journey_id: int) -> Any:
    """Show what publishing changes and who is in flight, then publish on confirmation."""
    journey = _journey(journey_id)
    form = ConfirmForm()
    live = lifecycle.live_version(db(), journey)
    document, problems = graph.check(journey.draft, _context())
    proposal = plans.propose(db(), journey, document) if document and live else None
    number = (live.number + 1) if live else 1
    if form.validate_on_submit() and not problems:
        choices = {
            f"v{step.version}:{step.node}": request.form.get(f"move-{step.key}")
            for step in (proposal.steps if proposal else [])
            if request.form.get(f"move-{step.key}")
        }
        try:
            version, move = lifecycle.publish_with_plan(
                db(), journey, _context(), acting_user(), choices
            )
        except JourneyError as error:
            flash(str(error).capitalize() + ".", "error")
            return redirect(url_for("designer.publish", journey_id=journey.id))
        db().commit()
        moving = sum(int(n) for n in move.planned.values()) if move else 0
        if move is not None:
            drains.enqueue_move(services().redis, move.id)
        flash(
            f"Published version {version.number} of “{journey.name}”; new customers "
            "start on it."
            + (
                f" Moving {moving:,} customer{'' if moving == 1 else 's'} already in it"
                " as planned."
                if moving
                else ""
            ),
            "success",
        )
        return redirect(url_for("designer.show", journey_id=journey.id))
    changes = read.changes(live.document if live else None, journey.draft)
    # Publishing a draft equal to the live version keeps that version (lifecycle.publish).
    unchanged = bool(live and document and graph.to_dict(document) == live.document)
    plan = _plan(proposal, number) if proposal and not unchanged else []
    steps = summaries.named_steps(db(), journey.draft)
    live_steps = summaries.named_steps(db(), live.document if live else {})
    in_flight = read.in_flight_by_node(db(), journey)
    drawing = sketch.sketch(
        journey.draft,
        live.document if live else None,
        steps,
        live_steps,
        set(changes.added),
        set(changes.changed),
        set(changes.removed),
        in_flight,
    )
    return render_template(
        "designer/publish.html",
        journey=journey,
        live=live,
        problems=[p.to_dict() for p in problems],
        changes=changes,
        unchanged=unchanged,
        steps=steps,
        live_steps=live_steps,
        warnings=review.before_publishing(db(), journey, utcnow()),
        in_flight=in_flight,
        plan=plan,
        drawing=drawing,
        targets={t.node: t for t in proposal.targets} if proposal else {},
        number=number,
        form=form,
    )


def _plan(proposal: plans.Proposal, number: int) -> list[dict[str, Any]]:
    """Each step holding customers, with every choice: its value, label and sentence."""
    choices = [plans.STAY, *(t.node for t in proposal.targets), plans.EXIT]
    return [
        {
            "step": step,
            "options": [
                (
                    choice,
                    _option_label(choice, step, proposal),
                    plans.sentence(step, choice, proposal, number),
                )
                for choice in choices
            ],
        }
        for step in proposal.steps
    ]


@bp.get("/<int:journey_id>/moving")
@requires(Role.viewer)
def move_progress(journey_id: int) -> Any:
    """How far moving the customers of the latest publish has got (polled while it runs)."""
    journey = _journey(journey_id)
    return render_template(
        "designer/_move_progress.html", move=moves.latest(db(), journey.id)
    )


def _option_label(option: str, step: plans.HeldStep, proposal: plans.Proposal) -> str:
    if option == plans.STAY:
        return f"Stay on version {step.version}"
    if option == plans.EXIT:
        return "Leave the journey"
    target = next(t for t in proposal.targets if t.node == option)
    return f"{target.title}: {target.summary}"


@bp.post("/<int:journey_id>/pause")
@requires(Role.marketer)
def pause(journey_id: int) -> Any:
    """Stop entries and hold the customers in flight where they are."""
    return _switch(
        journey_id,
        lifecycle.pause,
        "Paused “{}”: no one enters, and customers in it wait where they are.",
    )


@bp.post("/<int:journey_id>/resume")
@requires(Role.marketer)
def resume(journey_id: int) -> Any:
    """Open entries again; held customers go on."""
    return _switch(journey_id, lifecycle.resume, "Resumed “{}”.")


def _switch(journey_id: int, action: Any, message: str) -> Any:
    journey = _journey(journey_id)
    if ConfirmForm().validate_on_submit():
        try:
            action(db(), journey, acting_user())
        except JourneyError as error:
            flash(str(error).capitalize() + ".", "error")
        else:
            db().commit()
            flash(message.format(journey.name), "success")
    return redirect(url_for("designer.show", journey_id=journey.id))


@bp.get("/<int:journey_id>/versions")
@requires(Role.viewer)
def versions(journey_id: int) -> Any:
    """Every published version, newest first, with who published it."""
    journey = _journey(journey_id)
    statement = (
        select(JourneyVersion, User.email)
        .outerjoin(User, User.id == JourneyVersion.published_by_id)
        .where(JourneyVersion.journey_id == journey.id)
        .order_by(JourneyVersion.number.desc())
    )
    page = paginate(db(), statement, scalars=False)
    return render_template(
        "designer/versions.html",
        journey=journey,
        page=page,
        form=ConfirmForm(),
        can_edit=acting_user().role.includes(Role.marketer),
    )


@bp.post("/<int:journey_id>/versions/<int:number>/restore")
@requires(Role.marketer)
def restore_version(journey_id: int, number: int) -> Any:
    """Make a past version the draft again."""
    journey = _journey(journey_id)
    if ConfirmForm().validate_on_submit():
        try:
            lifecycle.restore_version(db(), journey, number, _context(), acting_user())
        except JourneyError as error:
            flash(str(error).capitalize() + ".", "error")
            return redirect(url_for("designer.versions", journey_id=journey.id))
        db().commit()
        flash(
            f"The draft is now a copy of version {number}; publish it to make it live.",
            "success",
        )
    return redirect(url_for("designer.show", journey_id=journey.id))


@bp.get("/<int:journey_id>/counts")
@requires(Role.viewer)
def counts(journey_id: int) -> Any:
    """Live figures for the canvas, polled by htmx: handed to the page as an event."""
    journey = _journey(journey_id)
    figures = stats.step_figures(db(), journey)
    response = make_response("", 200)
    response.headers["HX-Trigger"] = json.dumps({"liveCounts": figures})
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/<int:journey_id>/simulate.json")
@requires(Role.marketer)
def simulate(journey_id: int) -> Any:
    """Run a sample customer and timed events through the draft; nothing is stored or sent."""
    journey = _journey(journey_id)
    try:
        body = payload.loads(request.get_data(), max_keys=None)
    except payload.PayloadError as error:
        return jsonify(error=str(error), field=error.field), 400
    except ValueError:
        body = None
    _document, problems = graph.check(journey.draft, _context())
    if problems:
        return jsonify(
            error="the draft has problems; fix them before simulating",
            problems=[p.to_dict() for p in problems],
        ), 422
    document = lifecycle.version_document(db(), journey, "draft")
    try:
        policies = policy_store.read(db())[0]
        result = simulation.simulate(
            document,
            body,
            utcnow().replace(microsecond=0),
            None,
            policies,
            lambda key: decision_store.live(db(), key),
        )
    except simulation.SimulationError as error:
        return jsonify(error=str(error), field=error.field), 422
    finally:
        db().rollback()  # a simulation reads, never writes
    return jsonify(result)
