from __future__ import annotations

from typing import Any

from flask import render_template
from sqlalchemy import select

from engine.models import Channel, Role
from webapp.channels import bp
from webapp.paging import paginate
from webapp.security import requires
from webapp.services import db


@bp.get("/")
@requires(Role.viewer)
def index() -> Any:
    page = paginate(db(), select(Channel).order_by(Channel.slug))
    return render_template("channels/index.html", page=page)
