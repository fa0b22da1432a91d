from __future__ import annotations

from typing import Any

from flask import Response, jsonify, render_template
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from engine.models import Role
from webapp.ops import bp
from webapp.ops.metrics import exposition
from webapp.security import public, requires, requires_token
from webapp.services import db, services


@bp.get("/healthz")
@public
def healthz() -> Any:
    """200 when SQL and Redis both answer, else 503 naming the one that did not."""
    checks: dict[str, str] = {}
    try:
        db().execute(text("SELECT 1"))
        checks["sql"] = "ok"
    except SQLAlchemyError as error:
        checks["sql"] = f"unreachable ({type(error).__name__})"
    try:
        services().redis.ping()
        checks["redis"] = "ok"
    except (RedisError, OSError) as error:
        checks["redis"] = f"unreachable ({type(error).__name__})"
    healthy = all(value == "ok" for value in checks.values())
    response = jsonify(status="ok" if healthy else "failing", checks=checks)
    response.status_code = 200 if healthy else 503
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/metrics")
@requires_token(Role.viewer, open_when=lambda settings: settings.metrics_public)
def metrics() -> Any:
    """Prometheus text format, for an API token of any role (or anyone, when
    THROUGHLINE_METRICS_PUBLIC=1)."""
    return Response(exposition(services().redis), mimetype="text/plain; version=0.0.4")


@bp.get("/api-reference")
@requires(Role.viewer)
def api_reference() -> Any:
    """The JSON API and the webhooks, read from /api/v1/openapi.json."""
    return render_template("ops/api_reference.html")
