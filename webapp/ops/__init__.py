from flask import Blueprint

bp = Blueprint("ops", __name__)

from webapp.ops import views  # noqa: E402,F401
