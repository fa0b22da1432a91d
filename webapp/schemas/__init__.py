from flask import Blueprint

bp = Blueprint("schemas", __name__, url_prefix="/schemas")

from webapp.schemas import views  # noqa: E402,F401
