"""Playwright driving Debian's Chromium against the app served from a thread."""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page
from werkzeug.serving import make_server

from tests.world import recorders  # noqa: F401  (channels that record, for the engine's world)
from webapp import create_app

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in str(item.path):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict) -> dict:
    return {**browser_context_args, "viewport": {"width": 1280, "height": 800}}


@pytest.fixture
def live_server(settings, redis_client) -> Iterator[str]:
    """The app on a free loopback port, served by a thread for the test's duration.

    At the end it waits for requests still being answered (a page's last poll) before closing
    the database: a connection such a request held would otherwise be closed by the garbage
    collector, during some later test.
    """
    app = create_app(settings)
    answering = [0]
    lock = threading.Lock()

    def counted(environ: Any, start_response: Any) -> Any:
        with lock:
            answering[0] += 1
        try:
            result = app(environ, start_response)
            try:
                return list(result)  # the whole answer, so it is done when counted out
            finally:
                if hasattr(result, "close"):
                    result.close()
        finally:
            with lock:
                answering[0] -= 1

    server = make_server("127.0.0.1", 0, counted, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)
    deadline = time.monotonic() + 5
    while answering[0] and time.monotonic() < deadline:
        time.sleep(0.02)
    app.extensions["throughline"].close()


@pytest.fixture
def page(context: BrowserContext, live_server: str) -> Iterator[Page]:
    """pytest-playwright's page, closed before the server stops (it may still be polling)."""
    opened = context.new_page()
    yield opened
    opened.close()


@pytest.fixture
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """docs/screenshots with THROUGHLINE_SCREENSHOTS=1; otherwise a temporary folder, so a
    test run leaves the tree as it found it."""
    if os.environ.get("THROUGHLINE_SCREENSHOTS") != "1":
        return tmp_path_factory.mktemp("screenshots")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


# A refused form or sign-in is answered with its status (400, 401, 409, 412, 422), which
# Chromium logs as a failed load: that is the page working, not an error of the page.
ANSWERED_INPUT = re.compile(
    r"^Failed to load resource: the server responded with a status of (400|401|409|412|422) "
)


@pytest.fixture(autouse=True)
def console_errors(page: Page) -> Iterator[list[str]]:
    """Every error the page logs or throws during a test (a missing file, a script error, a
    server error); any at the end fails the test."""
    found: list[str] = []

    def logged(message: Any) -> None:
        if message.type == "error" and not ANSWERED_INPUT.match(message.text):
            found.append(f"{message.text} ({message.location.get('url')})")

    page.on("console", logged)
    page.on("pageerror", lambda error: found.append(str(error)))
    yield found
    assert found == [], "the browser logged errors"
