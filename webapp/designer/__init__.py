from flask import Blueprint

bp = Blueprint("designer", __name__, url_prefix="/journeys")

import webapp.designer.panels  # noqa: E402,F401  (registers the side-panel routes)
import webapp.designer.previews  # noqa: E402,F401  (and the message previews)
from webapp.designer import views  # noqa: E402,F401
