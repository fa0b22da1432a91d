from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import flash, redirect, render_template, request, url_for

from engine import accounts
from engine.models import Role
from webapp.auth import bp, throttle
from webapp.auth.forms import LoginForm
from webapp.security import acting_user, public, requires, sign_in, sign_out
from webapp.services import db


def _safe_next(target: str | None) -> str:
    """Only a path on this site, so a link cannot send a user elsewhere after sign-in."""
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
    ):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return url_for("designer.index")


def _how_long(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = round(seconds / 60)
    return f"about {minutes} minute{'s' if minutes != 1 else ''}"


@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> Any:
    form = LoginForm()
    status, headers = 200, {}
    if form.validate_on_submit():
        email = accounts.normalize_email(form.email.data or "")
        address = request.remote_addr or "unknown"
        wait = throttle.admit(email, address)
        if wait:
            form.form_errors.append(
                f"Too many failed sign-in attempts. Try again in {_how_long(wait)}."
            )
            status, headers = 429, {"Retry-After": str(wait)}
        else:
            user = accounts.authenticate(db(), email, form.password.data or "")
            if user is None:
                form.form_errors.append(
                    "That email and password do not match an active account."
                )
                status = 401
            else:
                db().commit()
                throttle.succeeded(email, address)
                sign_in(user)
                return redirect(_safe_next(request.args.get("next")))
    elif request.method == "POST":
        status = 400
    return render_template("auth/login.html", form=form), status, headers


@bp.post("/logout")
@requires(Role.viewer)
def logout() -> Any:
    """Sign out here and on every other device: earlier session cookies stop working."""
    sign_out(acting_user())
    db().commit()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))
