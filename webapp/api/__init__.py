"""The JSON API under /api/v1: bearer tokens, JSON in and out, no cookies, no CSRF."""

from flask import Blueprint

from webapp.extensions import csrf

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)

from webapp.api import (  # noqa: E402,F401
    channels,
    customers,
    decisions,
    errors,
    journeys,
    policies,
    tracking,
    views,
)
