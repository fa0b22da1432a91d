from __future__ import annotations

from typing import Any

from flask import jsonify

from engine.models import Role
from webapp.api import bp
from webapp.api.openapi import document
from webapp.security import acting_user, public, requires


@bp.get("/me")
@requires(Role.viewer)
def me() -> Any:
    """The user the token belongs to."""
    user = acting_user()
    return jsonify(id=user.id, email=user.email, role=user.role.value)


@bp.get("/openapi.json")
@public
def openapi() -> Any:
    """The OpenAPI 3.1 description of this API and the inbound webhooks; it names no data,
    so anyone may read it, as a client generator or a channel's developer would."""
    return jsonify(document())
