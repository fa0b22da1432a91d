from flask import Blueprint

bp = Blueprint("customers", __name__, url_prefix="/customers")

from webapp.customers import views  # noqa: E402,F401
