"""The Throughline web application."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from engine.settings import Settings, load_settings, shipped_folder

PACKAGE = Path(__file__).resolve().parent


def create_app(settings: Settings | None = None, **overrides: object) -> Flask:
    """Build the app: config, extensions, services, blueprints. Nothing else."""
    settings = settings or load_settings()
    app = Flask(
        __name__,
        template_folder=str(shipped_folder(PACKAGE, "templates")),
        static_folder=str(shipped_folder(PACKAGE, "static")),
    )
    app.config.from_mapping(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=None,
        MAX_CONTENT_LENGTH=4 * 1024 * 1024,
        PAGE_SIZE=25,
    )
    app.config.update(overrides)

    from webapp import errors, extensions, headers, security, services
    from webapp.access_log import AccessLog
    from webapp.framing import OneBodyLength
    from webapp.hooks.direct import DirectIntake

    services.init_app(app, settings)
    extensions.init_app(app)
    # Inside ProxyFix (security), so the log shows the client's address, not the proxy's;
    # outside the framing check, so a refused request is logged; single webhook events are
    # answered inside both, before Flask's request handling.
    app.wsgi_app = AccessLog(OneBodyLength(DirectIntake(app, app.wsgi_app)))  # type: ignore[method-assign]
    security.init_app(app, settings)
    headers.init_app(app)
    errors.init_app(app)

    from webapp.ops import metrics

    metrics.init_app(app)

    from webapp import (
        admin,
        analytics,
        api,
        auth,
        channels,
        customers,
        decisions,
        designer,
        hooks,
        ops,
        policies,
        schemas,
    )

    for blueprint in (
        auth.bp,
        designer.bp,
        decisions.bp,
        channels.bp,
        customers.bp,
        analytics.bp,
        policies.bp,
        schemas.bp,
        admin.bp,
        ops.bp,
        api.bp,
        hooks.bp,
    ):
        app.register_blueprint(blueprint)
    app.add_url_rule("/", endpoint="index", view_func=security.home)
    return app
