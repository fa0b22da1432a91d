"""Inbound webhooks: verify, store, signal, answer; no journey logic here."""

from flask import Blueprint

from webapp.extensions import csrf

bp = Blueprint("hooks", __name__, url_prefix="/hooks")
csrf.exempt(bp)

from webapp.hooks import views  # noqa: E402,F401
