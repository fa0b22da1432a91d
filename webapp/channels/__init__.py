from flask import Blueprint

bp = Blueprint("channels", __name__, url_prefix="/channels")

from webapp.channels import views  # noqa: E402,F401
