from flask import Blueprint

bp = Blueprint("decisions", __name__, url_prefix="/decisions")

from webapp.decisions import views  # noqa: E402,F401
