from flask import Blueprint

bp = Blueprint("analytics", __name__, url_prefix="/analytics")

from webapp.analytics import views  # noqa: E402,F401
