from __future__ import annotations

import json
from typing import Any

from flask import (
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from werkzeug.exceptions import NotFound

from engine.channels import channel_names
from engine.journeys import summaries
from engine.models import Customer, JourneyVersion, Role, utcnow
from engine.profiles import CustomerError, privacy, read
from webapp.customers import bp
from webapp.customers.entries import Presenter
from webapp.customers.forms import ConfirmForm, ConsentForm
from webapp.htmx import page_or_partial, wants_partial
from webapp.paging import paginate
from webapp.security import acting_user, requires
from webapp.services import db, services

NAME_TRAITS = ("name", "full_name")


def display_name(customer: Customer) -> str:
    """What to call the customer: a name trait, else an identifier, else the number."""
    traits = customer.traits or {}
    for key in NAME_TRAITS:
        if isinstance(traits.get(key), str) and traits[key].strip():
            return str(traits[key]).strip()
    first = " ".join(
        str(traits[k]).strip()
        for k in ("first_name", "last_name")
        if isinstance(traits.get(k), str) and traits[k].strip()
    )
    if first:
        return first
    for kind in ("email", "phone", "id"):
        for identity in customer.identities:
            if identity.kind == kind:
                return identity.value
    return f"Profile #{customer.id}"


SINGULAR = {
    "profiles": "profile",
    "identities": "identity",
    "events": "event",
    "runs": "run",
    "steps": "step",
    "deliveries": "delivery",
}


def counted(number: int, things: str) -> str:
    """`1 event`, `3 events`."""
    return f"{number} {SINGULAR.get(things, things) if number == 1 else things}"


def _customer(customer_id: int) -> Customer:
    customer = db().get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"There is no customer profile #{customer_id}.")
    return customer


def _to_survivor(customer: Customer, endpoint: str, note: str) -> Any:
    """Send a request about a merged profile to the profile it was merged into."""
    survivor = read.find(db(), str(customer.id))
    flash(
        f"Profile #{customer.id} was merged into #{survivor.id}. {note}".strip(),
        "error" if note else "message",
    )
    return redirect(url_for(endpoint, customer_id=survivor.id))


@bp.get("/")
@requires(Role.viewer)
def index() -> Any:
    """Customers, newest first; `q` finds them by any identifier or the profile number."""
    query = request.args.get("q", "").strip()
    statement = read.search(query).options(selectinload(Customer.identities))
    page = paginate(db(), statement)
    return page_or_partial(
        "customers/index.html",
        "customers/_list.html",
        page=page,
        query=query,
        display_name=display_name,
    )


def _timeline(customer: Customer, before: str | None) -> dict[str, Any]:
    """One page of the timeline, with the cursor of the next one when there is more."""
    size = int(current_app.config["PAGE_SIZE"])
    try:
        items = read.timeline(db(), customer, size + 1, before)
    except CustomerError as error:
        abort(400, description=f"{error}.")
    shown = items[:size]
    return {
        "entries": Presenter(db(), shown).entries(),
        "older": shown[-1]["cursor"] if len(items) > size else None,
        "before": before,
    }


def _consent_context(customer: Customer, **extra: Any) -> dict[str, Any]:
    return {
        "customer": customer,
        "consent": read.consent_settings(db(), customer),
        "consent_form": ConsentForm(formdata=None),
        "can_change_consent": acting_user().role.includes(Role.marketer),
        **extra,
    }


def _steps_at(runs: list[read.RunSummary]) -> dict[int, summaries.StepName]:
    """The step each run is at, named as its version draws it."""
    documents: dict[int, Any] = {
        version_id: document
        for version_id, document in db().execute(
            select(JourneyVersion.id, JourneyVersion.document).where(
                JourneyVersion.id.in_({run.version_id for run in runs})
            )
        )
    }
    names = channel_names(db())
    found = {}
    for run in runs:
        step = summaries.step_names(documents.get(run.version_id), names).get(
            run.node or ""
        )
        if step is not None:
            found[run.id] = step
    return found


@bp.get("/<bigid:customer_id>")
@requires(Role.viewer)
def show(customer_id: int) -> Any:
    """The profile: identities, traits, consent, journeys in flight, the timeline."""
    customer = _customer(customer_id)
    if customer.merged_into_id is not None:
        return _to_survivor(customer, "customers.show", "")
    before = request.args.get("before") or None
    timeline = _timeline(customer, before)
    runs = read.runs_of(db(), customer, in_flight_only=True)
    return page_or_partial(
        "customers/show.html",
        "customers/_timeline.html",
        name=display_name(customer),
        identities=read.identities(db(), customer),
        runs=runs,
        run_steps=_steps_at(runs),
        can_erase=acting_user().role.includes(Role.admin),
        **timeline,
        **_consent_context(customer),
    )


@bp.post("/<bigid:customer_id>/consent")
@requires(Role.marketer)
def consent(customer_id: int) -> Any:
    """Set the consent switches; each change is audited and shown on the timeline."""
    customer = _customer(customer_id)
    if customer.merged_into_id is not None:
        return _to_survivor(
            customer, "customers.show", "Nothing was changed; set consent here."
        )
    settings = read.consent_settings(db(), customer)
    form = ConsentForm()
    form.offer(settings)
    message, ok = "", True
    if not form.validate_on_submit():
        errors = [e for field in form.errors.values() for e in field]
        message, ok = "Not saved: " + "; ".join(errors) + ".", False
    else:
        changes = form.changes(settings)
        if changes:
            privacy.set_consent(db(), customer, changes, acting_user())
            db().commit()
            message = "Saved: " + ", ".join(
                f"{slug} {'allowed' if allowed else 'withdrawn'}"
                for slug, allowed in changes.items()
            )
        else:
            message = "Nothing changed."
    if wants_partial():
        # A refused change answers 200 too, so htmx shows the message and the switches
        # as they are stored.
        return render_template(
            "customers/_consent.html",
            **_consent_context(customer, consent_message=message, consent_ok=ok),
        )
    if not ok:
        abort(400, description=message)
    flash(message, "success")
    return redirect(url_for("customers.show", customer_id=customer.id) + "#consent")


@bp.route("/<bigid:customer_id>/erase", methods=["GET", "POST"])
@requires(Role.admin)
def erase(customer_id: int) -> Any:
    """Ask, then erase the profile and everything about it."""
    customer = _customer(customer_id)
    if customer.merged_into_id is not None:
        return _to_survivor(
            customer, "customers.show", "Nothing was erased; erase it from here."
        )
    form = ConfirmForm()
    if not form.validate_on_submit():
        return render_template(
            "customers/erase.html",
            customer=customer,
            name=display_name(customer),
            counts=privacy.erasure_counts(db(), customer),
            counted=counted,
            form=form,
        )
    number = customer.id
    try:
        counts = privacy.erase(db(), customer, acting_user())
    except CustomerError as error:  # merged into another or erased meanwhile
        db().rollback()
        again = db().get(Customer, number)
        if again is None:  # erased by another, or with the profile it was merged into
            flash(f"Profile #{number} was erased meanwhile.", "message")
            return redirect(url_for("customers.index"))
        if error.status != 409 or again.merged_into_id is None:
            raise
        return _to_survivor(
            again, "customers.show", "Nothing was erased; erase it from here."
        )
    db().commit()
    services().database.scrub_log()
    removed = ", ".join(
        counted(counts[what], what)
        for what in ("identities", "events", "runs", "steps", "deliveries")
    )
    flash(f"Erased profile #{number} and everything about it: {removed}.", "success")
    return redirect(url_for("customers.index"))


@bp.get("/<bigid:customer_id>/export.json")
@requires(Role.viewer)
def export(customer_id: int) -> Any:
    """Everything about the customer as one JSON file to download."""
    customer = _customer(customer_id)
    if customer.merged_into_id is not None:
        return _to_survivor(customer, "customers.export", "")
    document = privacy.export(db(), customer, utcnow())
    return Response(
        json.dumps(document, indent=2, default=str) + "\n",
        mimetype="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="customer-{customer.id}.json"',
            "Cache-Control": "no-store",
        },
    )
