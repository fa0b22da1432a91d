"""Browser security headers: a Content-Security-Policy without inline code, no framing, no
sniffing, a same-origin referrer, and HSTS over HTTPS."""

import json
import re
from pathlib import Path

import pytest

from engine.journeys import lifecycle, starters
from engine.models import Role
from tests.factories import login, make_user

pytestmark = pytest.mark.security

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def _policy(response):
    directives = {}
    for part in response.headers["Content-Security-Policy"].split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


def test_pages_forbid_framing_inline_code_and_plugins(client):
    response = client.get("/login")
    policy = _policy(response)
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"][0] == "'self'"
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"]
    assert policy["form-action"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    header = response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in header and "unsafe-eval" not in header
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in response.headers


def test_https_requests_get_hsts(client):
    response = client.get("/login", base_url="https://localhost")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def test_the_designer_script_runs_by_a_nonce_new_on_every_request(client, session):
    user = make_user(session, Role.marketer)
    journey, _ = lifecycle.create_journey(
        session,
        starters.document("cart_recovery"),
        lifecycle.check_context(session),
        user,
        allow_problems=True,
    )
    session.commit()
    login(client, user)
    nonces = []
    for _ in range(2):
        response = client.get(f"/journeys/{journey.id}")
        assert response.status_code == 200
        (nonce,) = re.findall(
            r"<script nonce=\"([^\"]+)\">", response.get_data(as_text=True)
        )
        assert _policy(response)["script-src"] == ["'self'", f"'nonce-{nonce}'"]
        nonces.append(nonce)
    assert nonces[0] != nonces[1]


def test_templates_hold_no_code_the_policy_would_block():
    """No inline handlers or styles, no hx-on (htmx would eval it), and no inline script
    without the nonce (JSON data blocks are not run)."""
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text()
        assert not re.search(r"\shx-on[:-]", text), template
        assert not re.search(r"\son[a-z]+=", text), template
        assert not re.search(r"\sstyle=", text), template
        for tag in re.findall(r"<script\b[^>]*>", text):
            assert (
                "src=" in tag or 'type="application/json"' in tag or "nonce=" in tag
            ), f"{template}: {tag}"


def test_htmx_is_configured_never_to_eval(client):
    page = client.get("/login").get_data(as_text=True)
    config = re.search(r'<meta name="htmx-config" content=\'([^\']+)\'>', page)
    settings = json.loads(config.group(1))
    assert settings["allowEval"] is False
    assert settings["includeIndicatorStyles"] is False
    assert "style" not in settings["attributesToSettle"]
