from flask import Blueprint

bp = Blueprint("analytics", __name__)

from webapp.analytics import views  # noqa: E402,F401
