"""The access log: one line per request, written by the app itself, except accepted webhooks.

Channels post thousands of events a second; a line for each accepted one would bury the rest
of the log and cost the intake a noticeable share of its time. `/metrics` counts them by
channel and answer, and a refused webhook (any 4xx or 5xx) is still logged.

The log outlives an erasure, so it keeps no identifier: a customer named by an identity in
the path (`/api/v1/customers/email:a@b.c`) is written `email:***`, and of the query string
only the values of the parameters that steer a page (page, sort, status...) are written.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from engine import logs

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger("throughline.access")

MASK = "***"
# `kind:value` names a customer by an identity; what follows it may be an action on them.
_IDENTITY = re.compile(
    r"/([a-z][a-z0-9_]{0,31}):(?:.*?)(?=/(?:timeline|consent)/?$|$)", re.DOTALL
)
# Query parameters whose values steer a page and never name anyone.
PLAIN_PARAMETERS = frozenset(
    {
        "action",
        "before",
        "compact",
        "filters",
        "granularity",
        "limit",
        "order",
        "page",
        "period",
        "since",
        "sort",
        "starter",
        "status",
        "table",
        "test",
        "until",
        "version",
    }
)


def masked(path: str, query: str) -> str:
    """The request target as the log writes it: identities and searches masked."""
    path = _IDENTITY.sub(lambda found: f"/{found.group(1)}:{MASK}", path)
    if not query:
        return path
    parts = []
    for pair in query.split("&"):
        name, has_value, _value = pair.partition("=")
        parts.append(
            pair if not has_value or name in PLAIN_PARAMETERS else f"{name}={MASK}"
        )
    return f"{path}?{'&'.join(parts)}"


class AccessLog:
    """WSGI middleware: `127.0.0.1 "GET /journeys?page=2 HTTP/1.1" 200 5120 4ms`.

    The time is until the app has answered; sending a streamed body is not in it, and such a
    body's size, having no Content-Length, shows as `-`.
    """

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        if not log.isEnabledFor(logging.INFO):
            return self.app(environ, start_response)
        started = time.perf_counter()
        answer: list[Any] = []

        def start(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            answer[:] = [status, headers]
            return start_response(status, headers, *exc_info)

        body = self.app(environ, start)
        if answer:
            _write(environ, answer[0], answer[1], time.perf_counter() - started)
        return body


def _write(
    environ: WSGIEnvironment,
    status: str,
    headers: list[tuple[str, str]],
    seconds: float,
) -> None:
    code = int(status[:3]) if status[:3].isdigit() else 0
    path = environ.get("PATH_INFO", "")
    if code < 400 and path.startswith("/hooks/"):
        return
    target = masked(path, environ.get("QUERY_STRING", ""))
    size = next((v for k, v in headers if k.lower() == "content-length"), "-")
    log.info(
        '%s "%s %s %s" %s %s %dms',
        environ.get("REMOTE_ADDR", "-"),
        environ.get("REQUEST_METHOD", "-"),
        target,
        environ.get("SERVER_PROTOCOL", "-"),
        code,
        size,
        round(seconds * 1000),
    )


def to_stdout() -> None:
    """Send the access log to standard output (the web server's entry point calls this)."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logs.formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
