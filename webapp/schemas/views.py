"""The Events page: each event type's schema (the tracking plan), a draft inferred from the
events seen, what the schema refused (kept to be replayed) or flagged."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import replace
from datetime import timedelta
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select
from wtforms import (
    RadioField,
    SelectChoice,
    SelectMultipleField,
    TextAreaField,
    widgets,
)
from wtforms.validators import DataRequired

from engine import schemas
from engine.analytics.counters import Metric
from engine.intake import admission, payload
from engine.intake.contract import MAX_TYPE_LENGTH, parse_event
from engine.intake.store import ToStore
from engine.models import Channel, Counter, Role, SchemaViolation, utcnow
from engine.models import EventSchema as SchemaRow
from engine.schemas import SchemaDocumentError
from engine.schemas import store as schema_store
from webapp.forms import BaseForm
from webapp.paging import paginate
from webapp.schemas import bp
from webapp.security import acting_user, requires
from webapp.services import db, services

LATELY = timedelta(days=7)
REPLAY_AT_ONCE = 500
MODE_WORDS = {
    "enforce": "Enforce: refuse an event that breaks it (kept 7 days to replay)",
    "strip": "Strip: remove properties it does not name, take the rest",
    "flag": "Flag: take every event, and mark those that break it",
}


class SchemaForm(BaseForm):
    mode = RadioField(
        "What happens to an event that breaks it",
        choices=[SelectChoice(mode, words) for mode, words in MODE_WORDS.items()],
        default="flag",
    )
    channels = SelectMultipleField(
        "Only for events from",
        option_widget=widgets.CheckboxInput(),
        widget=widgets.ListWidget(prefix_label=False),
        description="None chosen: events from every channel.",
    )
    schema = TextAreaField(
        "JSON Schema of the event's properties",
        [DataRequired("Give the schema, or start from the draft below.")],
        render_kw={"rows": 14, "spellcheck": "false", "class": "mono"},
    )


def _type(event_type: str) -> str:
    if not event_type or len(event_type) > MAX_TYPE_LENGTH:
        abort(404)
    return event_type


def _can_edit() -> bool:
    return acting_user().role.includes(Role.marketer)


@bp.get("/")
@requires(Role.viewer)
def index() -> Any:
    """Every event type seen lately or with a schema."""
    session = db()
    seen = schema_store.types_seen(session)
    kept = {row.event_type: row for row in session.scalars(select(SchemaRow))}
    held = dict(
        session.execute(
            select(SchemaViolation.event_type, func.count())
            .where(SchemaViolation.outcome == schema_store.REFUSED)
            .group_by(SchemaViolation.event_type)
        ).all()
    )
    flagged = _lately(None)
    names = sorted(set(seen) | set(kept))
    number = max(1, request.args.get("page", 1, type=int) or 1)
    size = 50
    pages = max(1, (len(names) + size - 1) // size)
    number = min(number, pages)
    shown = names[(number - 1) * size : number * size]
    return render_template(
        "schemas/index.html",
        types=[
            {
                "name": name,
                "seen": seen.get(name, 0),
                "row": kept.get(name),
                "held": held.get(name, 0),
                "flagged": flagged.get(name, 0),
            }
            for name in shown
        ],
        page={"number": number, "pages": pages, "total": len(names)},
    )


def _lately(event_type: str | None) -> dict[str, int]:
    """Events flagged (or stripped) lately, by type."""
    statement = (
        select(Counter.node_id, func.sum(Counter.value))
        .where(
            Counter.metric == Metric.SCHEMA,
            Counter.label != schema_store.REFUSED,
            Counter.bucket >= utcnow() - LATELY,
        )
        .group_by(Counter.node_id)
    )
    if event_type is not None:
        statement = statement.where(Counter.node_id == event_type)
    return {name: int(value or 0) for name, value in db().execute(statement)}


def _form(formdata: Any = None) -> SchemaForm:
    form = SchemaForm(formdata=formdata)
    form.channels.choices = [
        SelectChoice(slug, name)
        for slug, name in db().execute(
            select(Channel.slug, Channel.name).order_by(Channel.name)
        )
    ]
    return form


def _page(event_type: str, form: SchemaForm, status: int = 200) -> Any:
    session = db()
    row = schema_store.row_of(session, event_type)
    draft, read = schema_store.draft(session, event_type)
    quarantined = paginate(
        session,
        select(SchemaViolation)
        .where(
            SchemaViolation.event_type == event_type,
            SchemaViolation.outcome == schema_store.REFUSED,
        )
        .order_by(SchemaViolation.id.desc()),
        size=20,
    )
    flagged = list(
        session.scalars(
            select(SchemaViolation)
            .where(
                SchemaViolation.event_type == event_type,
                SchemaViolation.outcome == schema_store.FLAGGED,
            )
            .order_by(SchemaViolation.id.desc())
            .limit(10)
        )
    )
    channels = dict(session.execute(select(Channel.id, Channel.name)).all())
    return render_template(
        "schemas/show.html",
        event_type=event_type,
        row=row,
        form=form,
        draft=json.dumps(draft, indent=2) if draft else None,
        read=read,
        quarantined=quarantined,
        flagged=flagged,
        flagged_lately=_lately(event_type).get(event_type, 0),
        channels=channels,
        versions=schema_store.versions(session, row) if row else [],
        can_edit=_can_edit(),
    ), status


@bp.get("/<path:event_type>")
@requires(Role.viewer)
def show(event_type: str) -> Any:
    event_type = _type(event_type)
    form = _form()
    row = schema_store.row_of(db(), event_type)
    if row is not None:
        form.mode.data = row.mode
        form.channels.data = list(row.channels or [])
        form.schema.data = json.dumps(row.schema, indent=2)
    elif request.args.get("draft"):
        draft = schema_store.draft(db(), event_type)[0]
        form.schema.data = json.dumps(draft, indent=2) if draft else ""
    return _page(event_type, form)


@bp.post("/<path:event_type>")
@requires(Role.marketer)
def save(event_type: str) -> Any:
    event_type = _type(event_type)
    form = _form(request.form)
    if not form.validate():
        return _page(event_type, form, 400)
    try:
        schema = payload.loads((form.schema.data or "").encode(), max_keys=None)
    except payload.PayloadError as error:
        form.schema.errors = [str(error)[:1].upper() + str(error)[1:] + "."]
        return _page(event_type, form, 400)
    except json.JSONDecodeError as error:
        form.schema.errors = [
            f"This is not JSON: {error.msg} (line {error.lineno}, column {error.colno})."
        ]
        return _page(event_type, form, 400)
    document = {
        "schema": schema,
        "mode": form.mode.data,
        "channels": form.channels.data,
    }
    try:
        row = schema_store.save(db(), event_type, document, acting_user())
    except SchemaDocumentError as error:
        db().rollback()
        for where, message in error.problems:
            target = form.channels if where.startswith("channels") else form.schema
            target.errors = [*target.errors, message[:1].upper() + message[1:] + "."]
        return _page(event_type, form, 400)
    db().commit()
    schema_store.forget()
    flash(
        f"Saved as version {row.version}: {event_type} events are checked against it "
        "from now on.",
        "success",
    )
    return redirect(url_for("schemas.show", event_type=event_type))


@bp.post("/<path:event_type>/replay")
@requires(Role.marketer)
def replay(event_type: str) -> Any:
    """Take the quarantined events of this type again, up to REPLAY_AT_ONCE: those that
    meet the schema now are taken as if just sent (their webhook ids keep a retry from
    being a second event); the others stay, with their problems as they are now. Each
    channel's events go in groups within its rate, so live events keep their share."""
    event_type = _type(event_type)
    session = db()
    settings = services().settings
    fits: list[tuple[int, int, ToStore]] = []  # (row id, channel id, event)
    still: dict[int, list[dict[str, str]]] = {}
    channels: dict[int, Channel] = {}
    after = 0
    while len(fits) < REPLAY_AT_ONCE:
        rows = list(
            session.scalars(
                select(SchemaViolation)
                .where(
                    SchemaViolation.event_type == event_type,
                    SchemaViolation.outcome == schema_store.REFUSED,
                    SchemaViolation.id > after,
                )
                .order_by(SchemaViolation.id)
                .limit(REPLAY_AT_ONCE)
            )
        )
        if not rows:
            break
        after = rows[-1].id
        missing = {row.channel_id for row in rows} - set(channels)
        for channel in session.scalars(select(Channel).where(Channel.id.in_(missing))):
            channels[channel.id] = channel
        for row in rows:
            body = dict(row.body or {})
            parsed = parse_event(body, "", settings.earliest_occurred_at)
            schema = schema_store.for_event(
                session, parsed.type, channels[row.channel_id].slug
            )
            checked = schemas.check(schema, parsed.properties)
            if checked.refused:
                still[row.id] = [p.as_dict() for p in checked.problems]
                continue
            if checked.stripped:
                body["properties"] = checked.properties
            item = replace(parsed, properties=checked.properties)
            fits.append((row.id, row.channel_id, ToStore(row.webhook_id, body, item)))
    fits = fits[:REPLAY_AT_ONCE]
    limits = {
        cid: (channel.id, channel.rate_limit) for cid, channel in channels.items()
    }
    # Nothing of this request's reading may hold the database while intake writes.
    session.rollback()
    stored_as, held_back = _take_in_turn(fits, limits)
    schema_store.replayed(
        session, event_type, stored_as, still, acting_user(), utcnow()
    )
    session.commit()
    left = schema_store.waiting(session, event_type)
    words = f"{len(stored_as)} event(s) taken; {len(still)} still do not fit"
    if held_back:
        words += (
            f"; {held_back} held back by their channel's rate, replay again in a moment"
        )
    elif left > len(still):
        words += f"; {left - len(still)} more wait: replay again for the next ones"
    flash(words + ".", "success" if stored_as else "error")
    return redirect(url_for("schemas.show", event_type=event_type))


def _take_in_turn(
    fits: list[tuple[int, int, ToStore]], limits: dict[int, tuple[int, int]]
) -> tuple[dict[int, int], int]:
    """Hand the events to intake channel by channel, in groups of half the channel's rate
    a second; stop a channel at its first refusal. Returns row id -> event id, and how
    many were held back."""
    by_channel: dict[int, list[tuple[int, ToStore]]] = defaultdict(list)
    for row_id, channel_id, item in fits:
        by_channel[channel_id].append((row_id, item))
    stored_as: dict[int, int] = {}
    held_back = 0
    for channel_id, items in by_channel.items():
        channel, rate = limits[channel_id]
        size = max(1, rate // 2)
        for start in range(0, len(items), size):
            group = items[start : start + size]
            if start:
                time.sleep(1.0)  # the next second's share of the rate
            answer = services().intake.take(channel, rate, [item for _r, item in group])
            if answer.verdict == admission.OVER_RATE:  # live events took it: once more
                time.sleep(1.0)
                answer = services().intake.take(
                    channel, rate, [item for _r, item in group]
                )
            if answer.verdict != admission.ADMITTED:
                held_back += len(items) - start
                break
            for (row_id, _item), stored in zip(group, answer.stored, strict=False):
                if stored is not None:
                    stored_as[row_id] = stored.event_id
    return stored_as, held_back
