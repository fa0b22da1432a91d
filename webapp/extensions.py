"""Flask extensions, created unbound and bound in create_app."""

from __future__ import annotations

from flask import Flask
from flask_htmx import HTMX
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()
htmx = HTMX()
login_manager = LoginManager()


def init_app(app: Flask) -> None:
    csrf.init_app(app)
    htmx.init_app(app)
    login_manager.init_app(app)
