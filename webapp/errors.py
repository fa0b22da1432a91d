"""Error answers: JSON for the API and webhooks, a page otherwise; never a stack trace."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from markupsafe import Markup
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.routing import IntegerConverter, PathConverter, UnicodeConverter

from engine.intake.payload import LARGEST_INTEGER, scrub
from engine.models import LARGEST_ID

log = logging.getLogger("throughline.web")

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "unprocessable",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


def _wants_json() -> bool:
    return request.blueprint in {"api", "hooks"} or request.path.startswith(
        ("/api/", "/hooks/")
    )


def json_error(status: int, message: str) -> dict[str, Any]:
    """The JSON body of an error answer to the API or a webhook."""
    return {"error": {"code": CODES.get(status, "error"), "message": message}}


def _render(status: int, title: str, message: str) -> Any:
    if _wants_json():
        response = jsonify(json_error(status, message))
        response.status_code = status
        return response
    return render_template(
        "error.html", status=status, title=title, message=message
    ), status


def handle_http(error: HTTPException) -> Any:
    status = error.code or 500
    if isinstance(error, CSRFError):
        message = "The form expired or was sent from elsewhere. Reload the page and try again."
        return _render(400, "Form expired", message)
    return _render(status, error.name, error.description or error.name)


def handle_unexpected(error: Exception) -> Any:
    log.exception("unhandled error on %s %s", request.method, request.path)
    return _render(500, "Something went wrong", InternalServerError.description)


class StoredInteger(IntegerConverter):
    """`<int:...>` up to the largest id an Integer column holds: a larger number names
    nothing (404), before a query PostgreSQL would refuse to run."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", LARGEST_ID)
        super().__init__(map, *args, **kwargs)


class StoredBigInteger(StoredInteger):
    """`<bigid:...>`, the id of a table whose ids may pass 2**31 (models.BigID)."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", LARGEST_INTEGER)
        super().__init__(map, *args, **kwargs)


class StoredText(UnicodeConverter):
    """`<name>` without NUL characters, which no database column stores: such a name names
    nothing (404), before any query PostgreSQL would refuse."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(map, *args, **kwargs)
        self.regex = self.regex.replace("[^/]", "[^/\\x00]", 1)


class StoredPath(PathConverter):
    """`<path:...>` without NUL characters (see StoredText)."""

    regex = "[^/\\x00][^\\x00]*?"


def showable(value: Any) -> Any:
    """What a page shows of a value: text without NUL or lone surrogates, which no page can
    encode (earlier versions stored them from intake)."""
    if isinstance(value, Markup):
        return Markup(scrub(str(value)))
    if isinstance(value, str):
        return scrub(value)
    return value


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http)
    app.register_error_handler(Exception, handle_unexpected)
    app.url_map.converters["int"] = StoredInteger
    app.url_map.converters["bigid"] = StoredBigInteger
    app.url_map.converters["default"] = StoredText
    app.url_map.converters["string"] = StoredText
    app.url_map.converters["path"] = StoredPath
    app.jinja_env.finalize = showable
