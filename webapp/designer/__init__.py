from flask import Blueprint

bp = Blueprint("designer", __name__, url_prefix="/journeys")

from webapp.designer import views  # noqa: E402,F401
