"""One signed event to `POST /hooks/<slug>`, answered before Flask handles the request.

Channels send single events thousands of times a second and wait for each answer. Flask's
request handling (request context, session, before and after hooks, routing, the response
object's trip through them) cost more than checking and storing the event itself, so this
WSGI middleware answers these requests itself. Their answers are the Flask view's
(`webapp.hooks.views.receive`): both call `receive_one`, and this path adds what Flask's
handling adds to that view's answers: the browser headers every response carries, the request
metrics, and the JSON 500 of an unexpected failure. Any request it does not recognise (another
method or path, a slug no channel could have, no Content-Length) goes on to Flask.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, cast

from flask import Flask, Response
from werkzeug.exceptions import HTTPException
from werkzeug.wsgi import get_input_stream

from engine import tracing
from webapp.headers import without_nonce
from webapp.hooks.views import (
    SERVER_ERROR,
    Inbound,
    http_error,
    intake_trace,
    receive_one,
)
from webapp.ops.metrics import count_request

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger("throughline.web")

# The path of the Flask route `hooks.receive` for a slug a channel can have (engine.channels).
PATH = re.compile(r"/hooks/([a-z0-9][a-z0-9-]{0,62})")
ENDPOINT = "hooks.receive"
TRACEPARENT = "HTTP_" + tracing.HEADER.upper().replace("-", "_")


def _environ_key(header: str) -> str:
    return "HTTP_" + header.upper().replace("-", "_")


class DirectIntake:
    """WSGI middleware: single signed events to `POST /hooks/<slug>`, the rest to `inner`."""

    def __init__(self, app: Flask, inner: WSGIApplication) -> None:
        self.app, self.inner = app, inner

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        length = environ.get("CONTENT_LENGTH", "")
        matched = (
            PATH.fullmatch(environ.get("PATH_INFO", ""))
            if environ.get("REQUEST_METHOD") == "POST"
            and 0 < len(length) <= 18
            and length.isascii()
            and length.isdigit()
            else None
        )
        if matched is None:
            return self.inner(environ, start_response)
        started = time.perf_counter()
        slug = matched[1]
        inbound = Inbound(
            int(length),
            # As Flask reads a body: a client gone mid-body is a 400 (ClientDisconnected).
            lambda: get_input_stream(
                environ, max_content_length=self.app.config["MAX_CONTENT_LENGTH"]
            ).read(),
            lambda header: environ.get(_environ_key(header)),
        )
        try:
            with intake_trace(slug, environ.get(TRACEPARENT)) as traceparent:
                answer = receive_one(
                    self.app.extensions["throughline"], slug, inbound, traceparent
                )
        except HTTPException as error:
            answer = http_error(error)
        except Exception:
            log.exception("unhandled error on POST %s", environ.get("PATH_INFO"))
            answer = SERVER_ERROR
        # jsonify's Response (typed by the provider as werkzeug's sans-I/O one).
        response = cast(Response, self.app.json.response(answer.body))
        response.status_code = answer.status
        response.headers.extend(answer.headers)
        response.headers.extend(
            without_nonce(self.app, environ.get("wsgi.url_scheme") == "https")
        )
        count_request("POST", ENDPOINT, answer.status, time.perf_counter() - started)
        return response(environ, start_response)
