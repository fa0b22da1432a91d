"""Unit tests run without SQL or Redis: a test that asks for a service fixture, even through
another fixture, fails before the service starts. Such a test belongs in tests/integration."""

from __future__ import annotations

import pytest
from flask import Flask

SERVICES = frozenset(
    {
        "redis_url",
        "redis_client",
        "migrated_database",
        "database_url",
        "database",
        "session",
        "settings",
        "app",
        "client",
        "app_factory",
        "engine_runtime",
        "world",
        "recorders",
    }
)


def pytest_runtest_setup(item: pytest.Item) -> None:
    wanted = SERVICES.intersection(getattr(item, "fixturenames", ()))
    if wanted:
        pytest.fail(
            f"a unit test uses no services, but this one asks for {', '.join(sorted(wanted))}:"
            " give it what it needs without them or move it to tests/integration",
            pytrace=False,
        )


@pytest.fixture
def form_app() -> Flask:
    """A bare Flask app: request contexts for forms, with no database or Redis behind it."""
    app = Flask(__name__)
    app.config.update(TESTING=True, SECRET_KEY="unit tests", WTF_CSRF_ENABLED=False)
    return app
