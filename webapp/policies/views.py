"""The Policies page: the brand-wide rules above every journey's sends."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import flash, redirect, render_template, url_for
from sqlalchemy import func, select

from engine.analytics.counters import Metric
from engine.delivery import FREQUENCY_CAP, GLOBAL_HOLDOUT
from engine.models import Channel, Counter, Role, utcnow
from engine.policies import (
    QUIET_HOURS,
    THROTTLE,
    PolicyError,
    document_of,
    store,
)
from webapp.policies import bp
from webapp.policies.forms import PoliciesForm
from webapp.security import acting_user, requires
from webapp.services import db


def _channels() -> list[tuple[str, str]]:
    return [
        (slug, name)
        for slug, name in db().execute(
            select(Channel.slug, Channel.name).order_by(Channel.slug)
        )
    ]


def _filled() -> PoliciesForm:
    """The form as the stored policies fill it, with one empty row to add a cap."""
    policies, row = store.read(db())
    document = document_of(policies)
    form = PoliciesForm(formdata=None)
    form.revision.data = str(row.revision if row is not None else 0)
    for cap in [*document.get("frequency_caps", []), {}]:
        form.caps.append_entry(cap or None)
    quiet = document.get("quiet_hours")
    if quiet:
        form.quiet_on.data = True
        form.quiet_start.data, form.quiet_end.data = quiet["start"], quiet["end"]
        form.quiet_channels.data = quiet["channels"]
        form.quiet_trait.data = quiet["timezone_trait"]
    form.holdout.data = str(document.get("global_holdout", {}).get("percent", 0))
    return form


# What the policies did lately, by the counters the engine writes with its work.
EFFECTS = {
    (Metric.REASON, FREQUENCY_CAP): "kept back by a frequency cap",
    (Metric.REASON, GLOBAL_HOLDOUT): "kept back by the global holdout",
    (Metric.HELD, QUIET_HOURS): "held for quiet hours",
    (Metric.HELD, THROTTLE): "held by a journey's send limit",
}
LATELY = timedelta(days=7)


def _effects() -> list[tuple[str, int]]:
    """Sends each policy kept back or held in the last 7 days, over every journey."""
    found = dict.fromkeys(EFFECTS.values(), 0)
    rows = db().execute(
        select(Counter.metric, Counter.label, func.sum(Counter.value))
        .where(
            Counter.metric.in_({metric for metric, _ in EFFECTS}),
            Counter.label.in_({label for _, label in EFFECTS}),
            Counter.bucket >= utcnow() - LATELY,
        )
        .group_by(Counter.metric, Counter.label)
    )
    for metric, label, value in rows:
        words = EFFECTS.get((metric, label))
        if words:
            found[words] += int(value or 0)
    return list(found.items())


def _page(form: PoliciesForm, status: int = 200) -> Any:
    form.offer(_channels())
    row = store.read(db())[1]
    user = acting_user()
    return render_template(
        "policies/index.html",
        form=form,
        row=row,
        effects=_effects(),
        can_edit=user is not None and user.role.includes(Role.marketer),
    ), status


@bp.get("/")
@requires(Role.viewer)
def index() -> Any:
    """Frequency caps, quiet hours and the global holdout, for every journey."""
    return _page(_filled())


@bp.post("/")
@requires(Role.marketer)
def save() -> Any:
    form = PoliciesForm()
    if not form.validate_on_submit():
        return _page(form, 400)
    document = form.document()
    given = (form.revision.data or "").strip()
    if not (given.isascii() and given.isdigit() and len(given) <= 18):
        form.form_errors.append(
            "The page did not say which revision it changes; reload it and try again."
        )
        return _page(form, 400)
    revision = int(given)
    try:
        store.save(db(), document, acting_user(), revision)
    except PolicyError as error:
        db().rollback()
        count = len(error.problems)
        form.form_errors.append(
            f"Not saved: {count} {'problem' if count == 1 else 'problems'}, "
            "each shown where it is."
        )
        for path, message in error.problems:
            field = form.place(path)
            if field is not None:
                field.errors = [*field.errors, message]
            else:
                form.form_errors.append(f"{path or 'The policies'}: {message}")
        return _page(form, 422)
    except store.StaleRevision as error:
        db().rollback()
        form.form_errors.append(str(error))
        return _page(form, 409)
    db().commit()
    store.forget()
    flash(
        "Saved. Every journey's sends follow these policies within seconds.", "success"
    )
    return redirect(url_for("policies.index"))
