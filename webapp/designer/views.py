from __future__ import annotations

from typing import Any

from flask import request
from sqlalchemy import select

from engine.models import Journey, JourneyStatus, Role
from webapp.designer import bp
from webapp.htmx import page_or_partial
from webapp.paging import paginate
from webapp.security import requires
from webapp.services import db


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
    )
