"""Who may do what: sign-in sessions, bearer tokens and the role check on every route."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, Request, g, jsonify, redirect, request, session, url_for
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_login import current_user, login_user, logout_user
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import Forbidden
from werkzeug.middleware.proxy_fix import ProxyFix

from engine import accounts
from engine.models import ApiToken, Role, User, utcnow
from engine.settings import Settings
from webapp.extensions import login_manager
from webapp.services import SAFE_METHODS, db, services

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger(__name__)
# An API token's last use is written at most once per this interval.
TOKEN_USE_KEY = "throughline:token-used"
TOKEN_USE_INTERVAL_SECONDS = 60
ROLE_ATTRIBUTE = "required_role"
# Set on views that take only a bearer token, outside the API blueprint (see requires_token).
BEARER_ATTRIBUTE = "bearer_only"
PUBLIC = "public"
# The user's session generation when the session began (see accounts.end_sessions).
GENERATION_KEY = "generation"


class HttpsAwareSessionInterface(SecureCookieSessionInterface):
    """Marks the session cookie Secure whenever the request came over HTTPS.

    Inbound webhooks prove themselves by signature and never use a session: they get a null
    one, which spares every event the cookie's parsing and signature check.
    """

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path.startswith("/hooks/"):
            return self.make_null_session(app)
        return super().open_session(app, request)


def init_app(app: Flask, settings: Settings) -> None:
    app.session_interface = HttpsAwareSessionInterface()
    if settings.trust_proxy:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]
    login_manager.session_protection = "basic"
    # Templates show or hide actions by role: `current_user.role.includes(Role.marketer)`.
    app.context_processor(lambda: {"Role": Role})


@login_manager.user_loader
def _load_user(user_id: str) -> User | None:
    """The session's user while active and not signed out everywhere since it began."""
    user = db().get(User, int(user_id)) if user_id.isdigit() else None
    if user is None or not user.active:
        return None
    if session.get(GENERATION_KEY) != user.session_generation:
        return None
    return user


def sign_in(user: User) -> None:
    """Begin a sign-in session for `user`, valid until their sessions are ended."""
    login_user(user)
    session[GENERATION_KEY] = user.session_generation


def sign_out(user: User) -> None:
    """End this session and every other session of `user`; the caller commits."""
    accounts.end_sessions(user)
    logout_user()
    session.pop(GENERATION_KEY, None)


def _is_api(req: Request) -> bool:
    return req.blueprint == "api"


def _bearer_user() -> User | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    row = accounts.find_token(db(), token.strip())
    if row is None:
        return None
    _note_token_use(row)
    return row.user


def note_token_use(token_id: int) -> None:
    """Record a token's use, at most once a minute, in a short transaction of its own."""
    found = services()
    try:
        if found.redis.set(
            f"{TOKEN_USE_KEY}:{token_id}", 1, nx=True, ex=TOKEN_USE_INTERVAL_SECONDS
        ):
            with found.database.session(writer=True) as session:
                accounts.mark_token_used(session, token_id, utcnow())
    except (RedisError, SQLAlchemyError) as error:
        log.warning(
            "could not record the use of API token %s: %s",
            token_id,
            type(error).__name__,
        )


def _note_token_use(row: ApiToken) -> None:
    """Record a token's use, at most once a minute, never failing the request.

    A read request's transaction stays a read: on SQLite, a read that turns into a write fails
    at once with "database is locked" when another connection wrote meanwhile, so the use is
    written in a short transaction of its own. A request that writes already holds the write
    lock: its own transaction carries the use.
    """
    found = services()
    try:
        due = found.redis.set(
            f"{TOKEN_USE_KEY}:{row.id}", 1, nx=True, ex=TOKEN_USE_INTERVAL_SECONDS
        )
        if not due:
            return
        if request.method not in SAFE_METHODS:
            row.last_used_at = utcnow()
            return
        with found.database.session(writer=True) as session:
            accounts.mark_token_used(session, row.id, utcnow())
    except (RedisError, SQLAlchemyError) as error:
        log.warning(
            "could not record the use of API token %s: %s",
            row.id,
            type(error).__name__,
        )


def _json_error(status: int, code: str, message: str) -> Any:
    response = jsonify(error={"code": code, "message": message})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="throughline"'
    return response


def acting_user() -> User:
    """The user of this request: the bearer token's on the API, else the signed-in one."""
    user: User = g.api_user if _is_api(request) else current_user._get_current_object()
    return user


def bearer_refusal(role: Role) -> Any | None:
    """A 401/403 JSON answer unless the request's bearer token has `role`; else None."""
    user = _bearer_user()
    if user is None:
        return _json_error(
            401,
            "unauthorized",
            "send a valid API token as 'Authorization: Bearer <token>'",
        )
    g.api_user = user
    if not user.role.includes(role):
        return _json_error(403, "forbidden", f"this call needs the {role.value} role")
    return None


def requires(role: Role) -> Callable[[F], F]:
    """Let the view run only for a signed-in user (or token) whose role includes `role`."""

    def decorate(view: F) -> F:
        @wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            if _is_api(request):
                refusal = bearer_refusal(role)
                return refusal if refusal is not None else view(*args, **kwargs)
            if not current_user.is_authenticated:
                target = url_for("auth.login", next=request.full_path.rstrip("?"))
                if request.headers.get("HX-Request"):
                    response = redirect(target)
                    response.status_code = 401
                    response.headers["HX-Redirect"] = target
                    return response
                return redirect(target)
            if not current_user.role.includes(role):
                raise Forbidden(
                    f"This page needs the {role.value} role; yours is {current_user.role.value}."
                )
            return view(*args, **kwargs)

        setattr(checked, ROLE_ATTRIBUTE, role)
        return checked  # type: ignore[return-value]

    return decorate


def requires_token(
    role: Role, *, open_when: Callable[[Settings], bool] | None = None
) -> Callable[[F], F]:
    """Let the view run only for a bearer token whose role includes `role` (a sign-in
    session is not enough), or for anyone while `open_when(settings)` holds."""

    def decorate(view: F) -> F:
        @wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            if open_when is None or not open_when(services().settings):
                refusal = bearer_refusal(role)
                if refusal is not None:
                    return refusal
            return view(*args, **kwargs)

        setattr(checked, ROLE_ATTRIBUTE, role)
        setattr(checked, BEARER_ATTRIBUTE, True)
        return checked  # type: ignore[return-value]

    return decorate


SIGNED = "signed"


def signed(view: F) -> F:
    """Mark a view whose caller proves itself by a request signature (inbound webhooks)."""
    setattr(view, ROLE_ATTRIBUTE, SIGNED)
    return view


def public(view: F) -> F:
    """Mark a view as open to anyone (sign-in page, health endpoint)."""
    setattr(view, ROLE_ATTRIBUTE, PUBLIC)
    return view


@requires(Role.viewer)
def home() -> Any:
    return redirect(url_for("designer.index"))
