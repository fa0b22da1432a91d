from __future__ import annotations

from typing import Any

from flask import jsonify

from engine.models import Role
from webapp.api import bp
from webapp.security import acting_user, requires


@bp.get("/me")
@requires(Role.viewer)
def me() -> Any:
    """The user the token belongs to."""
    user = acting_user()
    return jsonify(id=user.id, email=user.email, role=user.role.value)
