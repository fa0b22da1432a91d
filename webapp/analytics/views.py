from __future__ import annotations

from typing import Any

from flask import render_template
from sqlalchemy import case, func, select

from engine.models import Journey, JourneyStatus, Role, Run, RunStatus
from webapp.analytics import bp
from webapp.paging import paginate
from webapp.security import requires
from webapp.services import db


@bp.get("/")
@requires(Role.viewer)
def index() -> Any:
    """Every journey with its run counts."""
    runs = (
        select(
            Run.journey_id,
            func.count().label("entered"),
            func.sum(
                case(
                    (Run.status.in_([RunStatus.active, RunStatus.waiting]), 1), else_=0
                )
            ).label("active"),
            func.sum(case((Run.status == RunStatus.completed, 1), else_=0)).label(
                "completed"
            ),
            func.sum(case((Run.converted_at.is_not(None), 1), else_=0)).label(
                "converted"
            ),
        )
        .group_by(Run.journey_id)
        .subquery()
    )
    statement = (
        select(
            Journey, runs.c.entered, runs.c.active, runs.c.completed, runs.c.converted
        )
        .outerjoin(runs, runs.c.journey_id == Journey.id)
        .where(Journey.status != JourneyStatus.archived)
        .order_by(Journey.name)
    )
    page = paginate(db(), statement, scalars=False)
    return render_template("analytics/index.html", page=page)
