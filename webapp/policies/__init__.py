from flask import Blueprint

bp = Blueprint("policies", __name__, url_prefix="/policies")

from webapp.policies import views  # noqa: E402,F401
