"""The canvas side panel: a step's form and the journey's settings (previews: previews.py).

Each panel is a server-rendered form, loaded and saved through htmx. An edit inside a form
(add a condition, a case, a message field; change an operator) posts the form with an
`action`, and the answer is the same panel with the change made and nothing saved; saving
posts it without one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from flask import abort, request, url_for

from engine.analytics import stats
from engine.channels import channel_names
from engine.decisions import store as decision_store
from engine.journeys import JourneyError, lifecycle, review, samples
from engine.language import graph
from engine.models import Journey, JourneyStatus, Role
from webapp.designer import bp, node_forms, palette, previews, rule_builder
from webapp.designer.editors import apply_action
from webapp.designer.forms import JourneySettingsForm
from webapp.designer.previews import trigger_event
from webapp.designer.views import _context, _draft_answer, _journey
from webapp.htmx import page_or_partial
from webapp.security import acting_user, requires
from webapp.services import db

# Where a document-level problem is shown in the settings form.
SETTINGS_FIELDS = {
    "name": "name",
    "description": "description",
    "entry": "reentry",
    "entry.reentry": "reentry",
    "entry.max_entries": "max_entries",
    "goal": "goal_event",
    "goal.event": "goal_event",
    "goal.within": "goal_amount",
    "goal.where": "goal_where",
}


def _node(journey: Journey, node_id: str) -> dict[str, Any]:
    for node in journey.draft.get("nodes", []):
        if isinstance(node, dict) and node.get("id") == node_id:
            return node
    abort(404, f"the draft has no step {node_id!r}")


def _node_form(
    node: dict[str, Any], formdata: Any = None
) -> node_forms.NodeForm | None:
    try:
        form_class = node_forms.form_for(node["type"])
    except KeyError:
        return None
    form = form_class(formdata=formdata, prefix=f"n-{node['id']}")
    if isinstance(form, node_forms._Channels):
        form.set_channels(channel_names(db()))
    if isinstance(form, node_forms.DecideForm):
        form.set_tables(
            (row.key, row.name, row.live_version is not None)
            for row in decision_store.tables(db())
        )
    return form


def _can_edit(journey: Journey) -> bool:
    return (
        acting_user().role.includes(Role.marketer)
        and journey.status is not JourneyStatus.archived
    )


# ---- what the panel offers: field names, sample data ----------------------------------------


def _suggestions(
    document: dict[str, Any], events: list[str] | None = None
) -> list[samples.FieldHint]:
    """Fields for the rule builder's picker; `events`: what `event` can be there."""
    trigger = trigger_event(document)
    if events is None:
        events = [trigger or ""] + [
            (n.get("config") or {}).get("event") or ""
            for n in document.get("nodes", [])
            if isinstance(n, dict) and n.get("type") == "wait_for_event"
        ]
    return samples.field_suggestions(db(), trigger, events)


def _events_at(document: dict[str, Any], node: dict[str, Any]) -> list[str] | None:
    """The event types `event` names in this node's rule (None: any the journey awaits)."""
    config = node.get("config") or {}
    if node["type"] in {"trigger", "wait_for_event"}:
        return [config.get("event") or ""]
    return None


# ---- problems on the fields they concern ------------------------------------------------


def _split(where: str) -> tuple[str, str]:
    """`cases[0].port` -> (`cases`, `[0].port`); `message.subject` -> (`message`, `.subject`)."""
    cut = min((i for i in (where.find("."), where.find("[")) if i >= 0), default=-1)
    return (where, "") if cut < 0 else (where[:cut], where[cut:])


def _attach(
    form: Any,
    problems: list[dict[str, Any]],
    prefix: str = "",
    fields: dict[str, str] | None = None,
) -> None:
    """Show each problem on its field; `fields` maps document paths to field names."""
    fields = fields or {}
    for problem in problems:
        where = (problem.get("field") or "").removeprefix(prefix)
        name, rest = _split(where)
        name = fields.get(where) or fields.get(name) or name
        if name in {"revision", "csrf_token"} or name not in form._fields:
            continue
        field = form[name]
        attach = getattr(field, "attach", None)
        if attach is not None:
            problem["shown"] = attach(rest, problem["message"])
        else:
            field.errors = [*field.errors, problem["message"]]
            problem["shown"] = True


# ---- a step's panel -----------------------------------------------------------------------


def _panel(
    journey: Journey,
    node: dict[str, Any],
    form: Any,
    pending: bool = False,
    focus: str | None = None,
    **extra: Any,
) -> Any:
    _document, problems = graph.check(journey.draft, _context())
    mine = [p.to_dict() for p in problems if p.node == node["id"]]
    if form is not None and not pending:
        _attach(form, mine, prefix="config.")
    context: dict[str, Any] = {}
    if isinstance(form, node_forms.SendForm):
        context = previews.context(form, journey, node["id"])
        if journey.live_version is not None:
            counted = stats.empty_names(db(), journey.id).get(node["id"], {})
            context["empty_sends"] = stats.empty_words(counted)
    item = next((i for i in palette.catalogue() if i["type"] == node["type"]), None)
    return page_or_partial(
        "designer/node.html",
        "designer/_node_panel.html",
        journey=journey,
        node=node,
        item=item,
        form=form,
        problems=mine,
        # A send's message fields say it under their previews, as they are typed.
        warnings=(
            []
            if isinstance(form, node_forms.SendForm)
            else review.template_warnings(node, None)
        )
        + review.schema_warnings(db(), journey.draft, node["id"]),
        can_edit=_can_edit(journey),
        post_url=url_for(
            "designer.save_node", journey_id=journey.id, node_id=node["id"]
        ),
        preview_url=url_for(
            "designer.preview", journey_id=journey.id, node_id=node["id"]
        ),
        suggestions=_suggestions(journey.draft, _events_at(journey.draft, node)),
        pending=pending,
        focus=focus,
        builder=rule_builder,
        **context,
        **extra,
    )


@bp.get("/<int:journey_id>/nodes/<node_id>")
@requires(Role.viewer)
def node_panel(journey_id: int, node_id: str) -> Any:
    """The side panel of one step: its form, filled from the draft."""
    journey = _journey(journey_id)
    node = _node(journey, node_id)
    form = _node_form(node)
    if form is not None:
        form.load(node.get("config") or {})
        form.label.data = node.get("label") or ""
        form.revision.data = str(journey.draft_revision)
        if isinstance(form, node_forms.SendForm):
            # The customer picked for the previews of another step of this journey.
            form.sample_customer.data = request.args.get("customer", "")
    return _panel(journey, node, form)


@bp.post("/<int:journey_id>/nodes/<node_id>")
@requires(Role.marketer)
def save_node(journey_id: int, node_id: str) -> Any:
    """Save a step's form into the draft (answers with the panel and the saved draft), or,
    with an `action`, make that edit in the form and answer with it, unsaved."""
    journey = _journey(journey_id)
    node = _node(journey, node_id)
    form = _node_form(node, request.form)
    action = request.form.get("action")
    if form is not None and action:
        focus = apply_action(form, action)
        return _panel(journey, node, form, pending=True, focus=focus)
    if form is None or not form.validate():
        return _panel(journey, node, form, saved=False)
    document = json.loads(json.dumps(journey.draft))
    for item in document["nodes"]:
        if item.get("id") == node_id:
            item["config"] = form.dump()
            item.pop("label", None)
            if (form.label.data or "").strip():
                item["label"] = form.label.data.strip()
    return _save(
        journey,
        document,
        form,
        lambda: _panel(journey, _node(journey, node_id), form, saved=True),
        lambda message: _panel(journey, node, form, conflict=message),
    )


def _save(
    journey: Journey,
    document: dict[str, Any],
    form: Any,
    saved: Callable[[], Any],
    refused: Callable[[str], Any],
) -> Any:
    """Replace the draft; answer with `saved()` and the draft for the canvas, or `refused`."""
    try:
        problems = lifecycle.replace_draft(
            db(),
            journey,
            document,
            _context(),
            acting_user(),
            expected_revision=int(form.revision.data or 0),
        )
    except JourneyError as error:
        db().rollback()
        return refused(str(error))
    db().commit()
    form.revision.data = str(journey.draft_revision)
    response = saved()
    response.headers["HX-Trigger"] = json.dumps(
        {"draftSaved": _draft_answer(journey, problems)}
    )
    return response


# ---- the journey's settings -------------------------------------------------------------


def _settings_panel(
    journey: Journey,
    form: JourneySettingsForm,
    pending: bool = False,
    focus: str | None = None,
    **extra: Any,
) -> Any:
    _document, problems = graph.check(journey.draft, _context())
    mine = [p.to_dict() for p in problems if p.node is None and p.edge is None]
    if not pending:
        _attach(form, mine, fields=SETTINGS_FIELDS)
    return page_or_partial(
        "designer/settings.html",
        "designer/_settings_panel.html",
        journey=journey,
        form=form,
        problems=mine,
        can_edit=_can_edit(journey),
        post_url=url_for("designer.settings", journey_id=journey.id),
        suggestions=_suggestions(
            journey.draft,
            [
                e.get("event") or ""
                for e in [
                    journey.draft.get("goal") or {},
                    *journey.draft.get("exit_on", []),
                ]
                if isinstance(e, dict)
            ],
        ),
        pending=pending,
        focus=focus,
        builder=rule_builder,
        **extra,
    )


@bp.get("/<int:journey_id>/settings")
@requires(Role.viewer)
def settings(journey_id: int) -> Any:
    """The journey's own settings: name, who may enter and how often, goal, exit events."""
    journey = _journey(journey_id)
    form = JourneySettingsForm(formdata=None, prefix="journey")
    form.load(journey.draft)
    form.revision.data = str(journey.draft_revision)
    return _settings_panel(journey, form)


@bp.post("/<int:journey_id>/settings")
@requires(Role.marketer)
def save_settings(journey_id: int) -> Any:
    """Save the settings into the draft, or, with an `action`, make that edit unsaved."""
    journey = _journey(journey_id)
    form = JourneySettingsForm(prefix="journey")
    action = request.form.get("action")
    if action:
        focus = apply_action(form, action)
        return _settings_panel(journey, form, pending=True, focus=focus)
    if not form.validate():
        return _settings_panel(journey, form, saved=False)
    document = form.dump_into(json.loads(json.dumps(journey.draft)))
    return _save(
        journey,
        document,
        form,
        lambda: _settings_panel(journey, form, saved=True, renamed=journey.name),
        lambda message: _settings_panel(journey, form, conflict=message),
    )
