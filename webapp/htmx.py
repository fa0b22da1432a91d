"""The one module that reads HX-* headers: render a whole page or just its partial."""

from __future__ import annotations

from typing import Any

from flask import Response, make_response, render_template

from webapp.extensions import htmx


def wants_partial() -> bool:
    """True for an htmx request that is neither boosted nor a history restore."""
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def page_or_partial(template: str, partial: str, **context: Any) -> Response:
    """Render `partial` for a plain htmx request, else the full `template` that includes it."""
    chosen = partial if wants_partial() else template
    response = make_response(render_template(chosen, **context))
    response.headers.add("Vary", "HX-Request")
    return response
