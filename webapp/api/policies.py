"""The brand-wide policies: one document above every journey's sends."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from engine.models import PolicySet, Role
from engine.policies import PolicyError, document_of, store
from webapp.api import bp
from webapp.api.errors import ApiError, json_body
from webapp.api.journeys import expected_revision
from webapp.security import acting_user, requires
from webapp.services import db


def describe(row: PolicySet | None) -> dict[str, Any]:
    policies = store.read(db())[0]
    return {
        "policies": document_of(policies),
        "revision": row.revision if row is not None else 0,
        "updated_at": row.updated_at.isoformat() if row is not None else None,
        "updated_by": row.updated_by if row is not None else None,
    }


@bp.get("/policies")
@requires(Role.viewer)
def get_policies() -> Any:
    return jsonify(describe(store.read(db())[1]))


@bp.put("/policies")
@requires(Role.marketer)
def put_policies() -> Any:
    """Replace the policies (each part optional); If-Match guards the revision."""
    document = json_body()
    try:
        store.save(db(), document, acting_user(), expected_revision("policies"))
    except PolicyError as error:
        db().rollback()
        first = error.problems[0]
        raise ApiError(
            422,
            f"the policies have {len(error.problems)} problem(s); the first: "
            f"{first[0] or 'the document'}: {first[1]}",
            first[0] or None,
            problems=[
                {"node": None, "field": field, "message": message}
                for field, message in error.problems
            ],
        ) from None
    except store.StaleRevision as error:
        db().rollback()
        raise ApiError(412, str(error), "If-Match") from None
    db().commit()
    store.forget()
    return jsonify(describe(store.read(db())[1]))
