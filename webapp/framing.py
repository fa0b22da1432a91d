"""One way to tell where a request body ends: its Content-Length.

A request that carries Transfer-Encoding as well as Content-Length can be read two ways; a
proxy in front that trusts Content-Length and a server behind that trusts the chunks then
disagree about where the next request starts, and a request can be smuggled inside another.
granian reads the chunks and hands the app the Transfer-Encoding alone, so the app cannot
tell such a request from a plain chunked one: both are refused. Browsers, htmx and the HTTP
clients channels use send a Content-Length for a body they have in hand.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


class OneBodyLength:
    """WSGI middleware: 400 for a request with a Transfer-Encoding header."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        if not environ.get("HTTP_TRANSFER_ENCODING"):
            return self.app(environ, start_response)
        both = bool(environ.get("CONTENT_LENGTH"))
        message = (
            "a request may not carry both Content-Length and Transfer-Encoding"
            if both
            else "send the body with a Content-Length header, not Transfer-Encoding"
        )
        body = json.dumps({"error": {"code": "bad_framing", "message": message}})
        data = body.encode()
        start_response(
            "400 Bad Request",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(data))),
            ],
        )
        return [data]
