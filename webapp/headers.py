"""Browser security headers on every response.

The Content-Security-Policy lets pages run only our own files, plus the one inline script of
the designer by a nonce made per request; styles come from our files and from the stylesheets
X6 inserts, each allowed by its hash (listed by the front-end build). Nothing may frame a page.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from flask import Flask, Response, g, request

HSTS = "max-age=31536000"


def csp_nonce() -> str:
    """This request's nonce for an inline <script nonce="...">."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    nonce: str = g.csp_nonce
    return nonce


def _style_hashes(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [f"'{digest}'" for digest in json.loads(path.read_text())]


def content_security_policy(nonce: str | None, style_hashes: list[str]) -> str:
    scripts = " ".join(["'self'", *([f"'nonce-{nonce}'"] if nonce else [])])
    styles = " ".join(["'self'", *style_hashes])
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src {scripts}",
            f"style-src {styles}",
            # Pico draws its form icons (select arrows, checkboxes) as data: SVG images.
            "img-src 'self' data:",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


STYLE_HASHES = "throughline.style_hashes"


def browser_headers(
    nonce: str | None, style_hashes: list[str], secure: bool
) -> list[tuple[str, str]]:
    """The headers every response carries."""
    headers = [
        ("Content-Security-Policy", content_security_policy(nonce, style_hashes)),
        ("X-Frame-Options", "DENY"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "same-origin"),
    ]
    if secure:
        headers.append(("Strict-Transport-Security", HSTS))
    return headers


def without_nonce(app: Flask, secure: bool) -> list[tuple[str, str]]:
    """The headers of a response without a page (no inline script) answered outside Flask's
    request handling."""
    return browser_headers(None, app.extensions[STYLE_HASHES], secure)


def init_app(app: Flask) -> None:
    # Listed by the front-end build beside the files it copies.
    style_hashes = _style_hashes(
        Path(app.static_folder or "") / "vendor" / "x6-styles.json"
    )
    app.extensions[STYLE_HASHES] = style_hashes
    app.jinja_env.globals["csp_nonce"] = csp_nonce

    @app.after_request
    def _secure(response: Response) -> Response:
        for name, value in browser_headers(
            g.get("csp_nonce"), style_hashes, request.is_secure
        ):
            response.headers[name] = value
        return response
