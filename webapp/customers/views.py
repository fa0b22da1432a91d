from __future__ import annotations

from typing import Any

from flask import request
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from engine.models import Customer, Identity, Role
from webapp.customers import bp
from webapp.htmx import page_or_partial
from webapp.paging import paginate
from webapp.security import requires
from webapp.services import db


@bp.get("/")
@requires(Role.viewer)
def index() -> Any:
    """Customers, newest first; `q` finds any identifier that starts with it."""
    query = request.args.get("q", "").strip()
    statement = (
        select(Customer)
        .where(Customer.merged_into_id.is_(None))
        .options(selectinload(Customer.identities))
        .order_by(Customer.id.desc())
    )
    if query:
        matches = select(Identity.customer_id).where(Identity.value.startswith(query))
        statement = statement.where(Customer.id.in_(matches))
    page = paginate(db(), statement)
    return page_or_partial(
        "customers/index.html", "customers/_list.html", page=page, query=query
    )
