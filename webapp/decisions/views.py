"""The Decisions pages: decision tables listed, and each edited as a table of rules with a
test panel, its versions, the journeys that ask it and what it decided lately."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from engine.decisions import DecisionError, Table, decide, parse, store
from engine.journeys import samples
from engine.language import rules
from engine.models import DecisionTable, Role, utcnow
from engine.profiles import CustomerError, read
from engine.profiles.identity import scope_of
from webapp.decisions import bp
from webapp.decisions.forms import DecisionForm, NewTableForm, TestForm
from webapp.designer import rule_builder
from webapp.designer.editors import apply_action
from webapp.htmx import wants_partial
from webapp.paging import paginate
from webapp.security import acting_user, requires
from webapp.services import db

LATELY = timedelta(days=7)
BLANK = {
    "rules": [],
    "default": {"outcome": "standard", "values": {}},
}


def _can_edit() -> bool:
    return acting_user().role.includes(Role.marketer)


def _row(key: str) -> DecisionTable:
    try:
        return store.get(db(), key)
    except DecisionError as error:
        abort(404, str(error))


@bp.get("/")
@requires(Role.viewer)
def index() -> Any:
    """Every decision table, with its live version and what it decided lately."""
    return _index(NewTableForm(formdata=None))


def _index(form: NewTableForm, status: int = 200) -> Any:
    page = paginate(db(), select(DecisionTable).order_by(DecisionTable.name))
    since = utcnow() - LATELY
    lately = {
        row.key: sum(
            sum(by.values()) for by in store.counts(db(), row.key, since).values()
        )
        for row in page.items
    }
    return render_template(
        "decisions/index.html",
        page=page,
        lately=lately,
        form=form,
        can_edit=_can_edit(),
    ), status


@bp.post("/")
@requires(Role.marketer)
def create() -> Any:
    form = NewTableForm()
    if not form.validate_on_submit():
        return _index(form, 400)
    document = {"key": form.key.data, "name": form.name.data.strip(), **BLANK}
    try:
        row = store.create(db(), document, acting_user())
    except DecisionError as error:
        db().rollback()
        target = form.key if error.field == "key" else form.name
        target.errors = [*target.errors, str(error).capitalize() + "."]
        return _index(form, 409 if error.status == 409 else 400)
    db().commit()
    flash(f"Created “{row.name}”: add its rules, then publish it.", "success")
    return redirect(url_for("decisions.show", key=row.key))


@dataclass(frozen=True)
class Tried:
    """One rule as the test panel shows it: whether it holds for the sample, and why."""

    number: int
    outcome: str
    holds: bool
    decides: bool
    reason: str


def _page(
    row: DecisionTable,
    form: DecisionForm,
    *,
    status: int = 200,
    focus: str | None = None,
    pending: bool = False,
    saved: bool | None = None,
    conflict: str | None = None,
    test: TestForm | None = None,
    tried: dict[str, Any] | None = None,
) -> Any:
    context = {
        "row": row,
        "form": form,
        "test": test or TestForm(formdata=None),
        "tried": tried,
        "can_edit": _can_edit(),
        "post_url": url_for("decisions.save", key=row.key),
        "test_url": url_for("decisions.try_rules", key=row.key),
        "focus": focus,
        "pending": pending,
        "saved": saved,
        "conflict": conflict,
        "builder": rule_builder,
        "suggestions": samples.field_suggestions(db(), None, []),
    }
    if wants_partial():  # htmx swaps 200 answers only: the form shows its own mistakes
        return render_template("decisions/_editor.html", **context)
    since = utcnow() - LATELY
    return render_template(
        "decisions/show.html",
        **context,
        versions=store.versions(db(), row),
        asking=store.asking(db(), row.key),
        counts=store.counts(db(), row.key, since),
        live=_live_table(row),
    ), status


def _live_table(row: DecisionTable) -> Table | None:
    if row.live_version is None:
        return None
    return parse(store.version(db(), row, row.live_version).document)


def _filled(row: DecisionTable) -> DecisionForm:
    form = DecisionForm(formdata=None)
    form.load(row.draft, row.draft_revision)
    return form


@bp.get("/<key>")
@requires(Role.viewer)
def show(key: str) -> Any:
    return _page(_row(key), _filled(_row(key)))


@bp.post("/<key>")
@requires(Role.marketer)
def save(key: str) -> Any:
    """Save the form as the draft, or, with an `action`, make that edit unsaved."""
    row = _row(key)
    form = DecisionForm()
    action = request.form.get("action")
    if action:
        focus = apply_action(form, action)
        return _page(row, form, focus=focus, pending=True)
    if not form.validate():
        return _page(row, form, status=400, saved=False)
    given = (form.revision.data or "").strip()
    revision = (
        int(given) if given.isascii() and given.isdigit() and len(given) < 18 else 0
    )
    try:
        store.replace_draft(db(), row, form.document(key), acting_user(), revision)
    except DecisionError as error:
        db().rollback()
        row = _row(key)
        if error.status == 412:
            return _page(row, form, status=409, conflict=str(error))
        _attach(form, error.problems)
        return _page(row, form, status=400, saved=False)
    db().commit()
    form.revision.data = str(row.draft_revision)
    return _page(row, form, saved=True)


def _attach(form: DecisionForm, problems: list[tuple[str, str]]) -> None:
    """Show each of the engine's problems at its field."""
    for where, message in problems:
        sentence = message[0].upper() + message[1:] + "."
        if where.startswith("rules"):
            if not form.rules.attach(where.removeprefix("rules"), sentence):
                form.form_errors.append(sentence)
        elif where.startswith("default.outcome"):
            form.default_outcome.errors = [*form.default_outcome.errors, sentence]
        elif where.startswith("default.values"):
            form.default_values.errors = [*form.default_values.errors, sentence]
        elif where == "name":
            form.name.errors = [*form.name.errors, sentence]
        else:
            form.form_errors.append(sentence)


@bp.post("/<key>/test")
@requires(Role.viewer)
def try_rules(key: str) -> Any:
    """The rules as the form holds them now (saved or not), tried on a sample customer."""
    row = _row(key)
    form = DecisionForm()
    test = TestForm()
    tried = _try(form, test, key)
    return render_template(
        "decisions/_test_result.html", tried=tried, test=test, row=row
    )


def _json_object(text: str | None, what: str) -> tuple[dict[str, Any], str | None]:
    if not (text or "").strip():
        return {}, None
    try:
        value = json.loads(text or "")
    except json.JSONDecodeError as error:
        return {}, f"{what} are not JSON: {error.msg} at line {error.lineno}"
    if not isinstance(value, dict):
        return {}, f'{what} are a JSON object, e.g. {{"tier": "vip"}}'
    return value, None


def _try(form: DecisionForm, test: TestForm, key: str) -> dict[str, Any]:
    """What the form's rules decide for the test panel's sample, rule by rule."""
    try:
        table = parse(form.document(key))
    except DecisionError as error:
        where, sentence = error.problems[0]
        return {"error": f"The rules cannot be tried yet: {where}: {sentence}."}
    traits, bad = _json_object(test.traits.data, "The traits")
    context, bad_context = _json_object(test.context.data, "The context values")
    if bad or bad_context:
        return {"error": bad or bad_context}
    customer: dict[str, Any] = {"id": "sample", "traits": {}}
    who = "a customer with no traits"
    ref = (test.customer.data or "").strip()
    if ref:
        try:
            found = read.find(db(), ref)
        except CustomerError as error:
            return {"error": str(error).capitalize() + "."}
        customer = scope_of(db(), found)
        who = f"{ref} (profile {found.id})"
    if traits:
        who = (
            f"{who}, with the traits typed"
            if ref
            else "a customer with the traits typed"
        )
    customer["traits"] = {**customer.get("traits", {}), **traits}
    scope = {"trigger": {}, "event": {}, "customer": customer, "context": context}
    decision = decide(table, scope)
    lines = []
    for number, rule in enumerate(table.rules, start=1):
        verdict = rules.evaluate(rule.when, scope)
        lines.append(
            Tried(
                number,
                rule.outcome,
                verdict.matched,
                number == decision.rule,
                verdict.reason,
            )
        )
    return {"decision": decision, "lines": lines, "who": who}


@bp.post("/<key>/publish")
@requires(Role.marketer)
def publish(key: str) -> Any:
    row = _row(key)
    try:
        version = store.publish(db(), row, acting_user())
    except DecisionError as error:
        db().rollback()
        flash(f"Not published: {error}.", "error")
        return redirect(url_for("decisions.show", key=key))
    db().commit()
    store.forget()
    flash(
        f"Version {version.number} of “{row.name}” is live: journeys and channels "
        "are answered from it now.",
        "success",
    )
    return redirect(url_for("decisions.show", key=key))


@bp.post("/<key>/versions/<int:number>/restore")
@requires(Role.marketer)
def restore(key: str, number: int) -> Any:
    row = _row(key)
    try:
        store.restore_version(db(), row, number, acting_user())
    except DecisionError as error:
        db().rollback()
        flash(f"Not restored: {error}.", "error")
        return redirect(url_for("decisions.show", key=key))
    db().commit()
    flash(
        f"Version {number} is the draft again; publish it to make it live.", "success"
    )
    return redirect(url_for("decisions.show", key=key))
