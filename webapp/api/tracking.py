"""Event schemas over the API: the tracking plan, one JSON Schema per event type."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from engine.intake.contract import MAX_TYPE_LENGTH
from engine.models import EventSchema as SchemaRow
from engine.models import Role
from engine.schemas import SchemaDocumentError
from engine.schemas import store as schema_store
from webapp.api import bp
from webapp.api.errors import ApiError, json_body
from webapp.security import acting_user, requires
from webapp.services import db


def describe(row: SchemaRow) -> dict[str, Any]:
    return {
        "event_type": row.event_type,
        "schema": row.schema,
        "mode": row.mode,
        "channels": list(row.channels or []),
        "version": row.version,
        "updated_at": row.updated_at.isoformat(),
        "updated_by": row.updated_by,
        "quarantined": schema_store.waiting(db(), row.event_type),
    }


def _type(event_type: str) -> str:
    if not event_type or len(event_type) > MAX_TYPE_LENGTH:
        raise ApiError(
            404, f"an event type has 1 to {MAX_TYPE_LENGTH} characters", "event_type"
        )
    return event_type


@bp.get("/schemas/<path:event_type>")
@requires(Role.viewer)
def get_schema(event_type: str) -> Any:
    """The schema of an event type's properties, its mode and the events it holds back."""
    row = schema_store.row_of(db(), _type(event_type))
    if row is None:
        raise ApiError(404, f"the event type {event_type!r} has no schema")
    return jsonify(describe(row))


@bp.put("/schemas/<path:event_type>")
@requires(Role.marketer)
def put_schema(event_type: str) -> Any:
    """Make a schema the event type's, as a new version (422 naming each problem)."""
    try:
        row = schema_store.save(
            db(), _type(event_type), json_body(max_keys=None), acting_user()
        )
    except SchemaDocumentError as error:
        db().rollback()
        raise ApiError(
            422,
            f"the schema has {len(error.problems)} problem(s); the first: {error}",
            error.problems[0][0] or None,
            problems=[
                {
                    "node": None,
                    "message": message,
                    **({"field": where} if where else {}),
                }
                for where, message in error.problems
            ],
        ) from None
    db().commit()
    schema_store.forget()
    return jsonify(describe(row))
