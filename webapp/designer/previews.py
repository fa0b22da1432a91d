"""A send step's message previewed for a sample customer, as it is typed.

The customer is one the marketer picks from a list filled as they type an email, phone, id
or profile number (the newest customer until then); their traits can be changed as JSON to
try other values. Names that would always print empty are pointed out under each preview.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from flask import abort, render_template, request, url_for
from sqlalchemy.orm import selectinload

from engine.channels import channel_names
from engine.journeys import samples
from engine.language import templates
from engine.models import Customer, Journey, Role
from engine.profiles import read
from webapp.customers.views import display_name
from webapp.designer import bp, node_forms
from webapp.designer.editors import dom_id
from webapp.designer.views import _journey
from webapp.security import requires
from webapp.services import db

PREVIEW_CHARS = 4000
SAMPLE_CHOICES = 20  # customers listed at a time


@dataclass
class Preview:
    """One message field rendered for the sample customer, or why it cannot be."""

    id: str
    name: str
    output: str | None = None
    error: str | None = None
    line: int | None = None
    source: str | None = None
    template_id: str = ""
    # Names that would always print empty, each with the one it probably meant.
    unknown: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class SampleChoice:
    """A customer the preview can be for."""

    value: str
    label: str


def trigger_event(document: dict[str, Any]) -> str | None:
    """The event type that starts the journey, if it names one yet."""
    for node in document.get("nodes", []):
        if isinstance(node, dict) and node.get("type") == "trigger":
            event = (node.get("config") or {}).get("event")
            return event if isinstance(event, str) and event else None
    return None


def _sample_traits(form: Any) -> tuple[dict[str, Any] | None, str | None]:
    text = (form.sample.data or "").strip()
    if not text:
        return None, None
    example = '{"first_name": "Ada", "tier": "vip"}'
    try:
        traits = json.loads(text)
    except json.JSONDecodeError as error:
        return (
            None,
            f"The traits cannot be read at line {error.lineno}, character "
            f"{error.colno}: write them as {example}, names and text in double quotes.",
        )
    if not isinstance(traits, dict):
        return None, f"Write the traits as names with their values, e.g. {example}."
    return traits, None


def _profile_number(text: Any) -> int | None:
    text = str(text or "").strip().removeprefix("#")
    return int(text) if text.isdigit() and len(text) <= 18 else None


def _render(form: Any, index: int, row: Any, scope: dict[str, Any]) -> Preview:
    source = row.values["template"]
    item = Preview(
        dom_id(f"{form.message.name}.{index}.preview"),
        row.values["name"].strip() or f"field {index + 1}",
        template_id=form.message.part_id(index, "template"),
        unknown=templates.unknown_names(source),
    )
    try:
        output = templates.render(source, scope)
    except templates.TemplateError as error:
        message = str(error)
        item.error = message[:1].upper() + message[1:] + "."
        item.line = error.line
        lines = source.splitlines()
        if error.line and error.line <= len(lines):
            item.source = lines[error.line - 1]
    else:
        item.output = output[:PREVIEW_CHARS] + (
            "…" if len(output) > PREVIEW_CHARS else ""
        )
    return item


def _customer_label(customer: Customer) -> str:
    kinds = {identity.kind: identity.value for identity in customer.identities}
    known = kinds.get("email") or kinds.get("phone") or kinds.get("id")
    name = display_name(customer)
    words = name if not known or known == name else f"{name}, {known}"
    return f"{words} (#{customer.id})"


def _choices(chosen: int | None, query: str = "") -> tuple[list[SampleChoice], bool]:
    """The customers `query` finds (the newest without one) and the one chosen now; and
    whether the query found anyone."""
    statement = read.search(query).options(selectinload(Customer.identities))
    found = list(db().scalars(statement.limit(SAMPLE_CHOICES)))
    matched = bool(found)
    if chosen is not None and all(c.id != chosen for c in found):
        picked = db().get(Customer, chosen)
        if picked is not None and picked.merged_into_id is None:
            found.insert(0, picked)
    return [SampleChoice(str(c.id), _customer_label(c)) for c in found], matched


def context(form: Any, journey: Journey, node_id: str) -> dict[str, Any]:
    """What the panel shows of a send form's previews: each message field rendered for the
    sample customer, who that is, and whom else it can be."""
    traits, sample_error = _sample_traits(form)
    chosen = _profile_number(form.sample_customer.data)
    sample = samples.sample_scope(db(), trigger_event(journey.draft), traits, chosen)
    if form.sample.data is None:
        form.sample.data = json.dumps(sample.scope["customer"].get("traits", {}))
    return {
        "previews": [
            _render(form, index, row, sample.scope)
            for index, row in enumerate(form.message.rows)
        ],
        "sample_label": sample.label,
        "sample_error": sample_error,
        "sample_choices": _choices(chosen)[0],
        "sample_customers_url": url_for(
            "designer.sample_customers", journey_id=journey.id, node_id=node_id
        ),
    }


def _send_form(journey: Journey, node_id: str, formdata: Any) -> Any:
    """The send step's form as posted (the panel's own, under its prefix)."""
    node = next(
        (
            n
            for n in journey.draft.get("nodes", [])
            if isinstance(n, dict) and n.get("id") == node_id
        ),
        None,
    )
    if node is None or node.get("type") != "send":
        abort(404, "only a send step has a message to preview")
    form = node_forms.SendForm(formdata=formdata, prefix=f"n-{node_id}")
    form.set_channels(channel_names(db()))
    return form


@bp.post("/<int:journey_id>/nodes/<node_id>/preview")
@requires(Role.marketer)
def preview(journey_id: int, node_id: str) -> Any:
    """Every message field of a send step rendered for the sample customer, as it is typed
    (out-of-band swaps into the panel's preview boxes). With `reset_sample`, another
    customer was picked: the traits box is filled with theirs."""
    journey = _journey(journey_id)
    form = _send_form(journey, node_id, request.form)
    reset = request.form.get("reset_sample") == "1"
    if reset:
        form.sample.data = None
    return render_template(
        "designer/_previews.html",
        form=form,
        reset_sample=reset,
        preview_url=url_for("designer.preview", journey_id=journey.id, node_id=node_id),
        **context(form, journey, node_id),
    )


@bp.get("/<int:journey_id>/nodes/<node_id>/sample-customers")
@requires(Role.marketer)
def sample_customers(journey_id: int, node_id: str) -> Any:
    """The customers a send step's preview can be for, found by email, phone, id or profile
    number as the marketer types: the panel's list, swapped in whole."""
    journey = _journey(journey_id)
    form = _send_form(journey, node_id, request.args)
    query = request.args.get(f"{form.sample.name}_find", "").strip()
    choices, matched = _choices(_profile_number(form.sample_customer.data), query)
    return render_template(
        "designer/_sample_customers.html",
        form=form,
        missed=query if not matched else "",
        preview_url=url_for("designer.preview", journey_id=journey.id, node_id=node_id),
        sample_choices=choices,
    )
