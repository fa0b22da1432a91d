"""The audit log page: who changed what and when, filtered and paged, newest first."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from flask import render_template, request, url_for
from sqlalchemy import Select, func, or_, select
from werkzeug.routing import BuildError

from engine.audit import ACTION_GROUPS, ACTION_WORDS, SYSTEM
from engine.models import (
    AuditEntry,
    Channel,
    Customer,
    DecisionTable,
    Journey,
    Role,
    User,
)
from webapp.admin import bp
from webapp.admin.forms import AuditFilterForm
from webapp.paging import paginate
from webapp.security import requires
from webapp.services import db

ACTIONS = ACTION_GROUPS
LABELS = ACTION_WORDS
TARGET = re.compile(r"^(journey|channel|customer|user|system)[\s:#]+(.+)$", re.I)


@dataclass(frozen=True)
class Target:
    """How an entry's target reads: a name, and a link while the thing still exists."""

    kind: str
    label: str
    url: str | None = None
    gone: bool = False


def _url(endpoint: str, **values: Any) -> str | None:
    try:
        return url_for(endpoint, **values)
    except BuildError:
        return None


def _filtered(form: AuditFilterForm) -> Select:  # type: ignore[type-arg]
    statement = select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    action = (form.action.data or "").strip()
    if action:
        statement = statement.where(
            AuditEntry.action.startswith(action, autoescape=True)
        )
    actor = (form.actor.data or "").strip().lower()
    if actor:
        statement = statement.where(
            func.lower(AuditEntry.actor).contains(actor, autoescape=True)
        )
    target = (form.target.data or "").strip()
    if target:
        typed = TARGET.match(target)
        if typed:
            statement = statement.where(
                AuditEntry.target_type == typed.group(1).lower(),
                AuditEntry.target_id == typed.group(2).strip(),
            )
        else:
            statement = statement.where(
                or_(AuditEntry.target_id == target, AuditEntry.target_type == target)
            )
    if form.since.data and not form.since.errors:
        start = datetime.combine(form.since.data, time.min, UTC)
        statement = statement.where(AuditEntry.at >= start)
    if form.until.data and not form.until.errors:
        end = datetime.combine(form.until.data + timedelta(days=1), time.min, UTC)
        statement = statement.where(AuditEntry.at < end)
    return statement


def _ids(entries: list[AuditEntry], kind: str) -> set[int]:
    return {
        int(e.target_id)
        for e in entries
        if e.target_type == kind and e.target_id.isdigit()
    }


def _targets(entries: list[AuditEntry]) -> dict[int, Target]:
    """Each entry's target, named and linked when it still exists (a few queries a page)."""
    session = db()
    journeys = dict(
        session.execute(
            select(Journey.id, Journey.name).where(
                Journey.id.in_(_ids(entries, "journey"))
            )
        ).all()
    )
    users = dict(
        session.execute(
            select(User.id, User.email).where(User.id.in_(_ids(entries, "user")))
        ).all()
    )
    customers = set(
        session.scalars(
            select(Customer.id).where(Customer.id.in_(_ids(entries, "customer")))
        )
    )
    slugs = {e.target_id for e in entries if e.target_type == "channel"}
    channels = dict(
        session.execute(
            select(Channel.slug, Channel.name).where(Channel.slug.in_(slugs))
        ).all()
    )
    tables = {
        row.id: (row.key, row.name)
        for row in session.execute(
            select(DecisionTable.id, DecisionTable.key, DecisionTable.name).where(
                DecisionTable.id.in_(_ids(entries, "decision"))
            )
        )
    }
    found = {}
    for entry in entries:
        kind, ref = entry.target_type, entry.target_id
        number = int(ref) if ref.isdigit() else None
        if kind == "journey" and number in journeys:
            target = Target(
                kind, journeys[number], _url("designer.show", journey_id=number)
            )
        elif kind == "channel" and ref in channels:
            target = Target(kind, channels[ref], _url("channels.show", slug=ref))
        elif kind == "customer" and number in customers:
            target = Target(kind, f"#{ref}", _url("customers.show", customer_id=number))
        elif kind == "user" and number in users:
            target = Target(kind, users[number], _url("admin.index"))
        elif kind == "decision" and number in tables:
            key, name = tables[number]
            target = Target(kind, name, _url("decisions.show", key=key))
        elif kind in {"journey", "channel", "customer", "user", "decision"}:
            target = Target(kind, ref if kind == "channel" else f"#{ref}", gone=True)
        else:
            target = Target(kind, ref)
        found[entry.id] = target
    return found


@bp.get("/audit")
@requires(Role.admin)
def audit_log() -> Any:
    """The audit log, newest first, filtered by action, who, target and dates."""
    form = AuditFilterForm(formdata=request.args)
    form.validate()
    page = paginate(db(), _filtered(form))
    actors = [SYSTEM, *db().scalars(select(User.email).order_by(User.email).limit(200))]
    filtering = any(
        request.args.get(name)
        for name in ("action", "actor", "target", "since", "until")
    )
    return render_template(
        "admin/audit.html",
        page=page,
        form=form,
        actions=ACTIONS,
        labels=LABELS,
        targets=_targets(page.items),
        actors=actors,
        filtering=filtering,
    )
