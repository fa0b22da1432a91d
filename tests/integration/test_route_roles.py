"""Every route checks the user's role: walk the whole url_map."""

import re

import pytest

from engine import accounts
from engine.models import Role
from tests.factories import csrf_token, login, make_user
from webapp.security import BEARER_ATTRIBUTE, PUBLIC, ROLE_ATTRIBUTE, SIGNED

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
PUBLIC_ENDPOINTS = {"api.openapi", "auth.login", "ops.healthz", "static"}
# Inbound webhooks prove their caller by signature (see test_intake.py), not by role.
SIGNED_ENDPOINTS = {"hooks.receive", "hooks.receive_batch"}
# Signing out changes nothing but the caller's own session, so every role may do it.
OPEN_TO_EVERY_ROLE = {"auth.logout"}


def _routes(app):
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: "1", rule.rule)
        yield rule, path


def test_every_endpoint_declares_who_may_use_it(app):
    undeclared, public, signed = [], set(), set()
    for rule, _path in _routes(app):
        view = app.view_functions[rule.endpoint]
        declared = getattr(view, ROLE_ATTRIBUTE, None)
        if rule.endpoint == "static":
            continue
        if declared is None:
            undeclared.append(rule.endpoint)
        elif declared == PUBLIC:
            public.add(rule.endpoint)
        elif declared == SIGNED:
            signed.add(rule.endpoint)
    assert undeclared == []
    assert public == PUBLIC_ENDPOINTS - {"static"}
    assert signed == SIGNED_ENDPOINTS


def test_anonymous_users_are_sent_to_sign_in_or_get_401(client):
    checked = 0
    for rule, path in _routes(client.application):
        if rule.endpoint in PUBLIC_ENDPOINTS | SIGNED_ENDPOINTS:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(path, method=method)
            view = client.application.view_functions[rule.endpoint]
            if rule.endpoint.startswith("api.") or getattr(
                view, BEARER_ATTRIBUTE, False
            ):
                assert response.status_code == 401, (method, path)
                assert response.get_json()["error"]["code"] == "unauthorized"
            elif method == "GET":
                assert response.status_code == 302, (method, path)
                assert response.headers["Location"].startswith("/login")
            else:
                # A write without a session is refused before it reaches the view: either
                # by the CSRF check (no token) or by the sign-in check.
                assert response.status_code in {302, 400}, (method, path)
            checked += 1
    assert checked >= 8


def test_a_viewer_gets_403_on_every_write(client, session):
    viewer = make_user(session, Role.viewer)
    bearer = accounts.create_token(session, viewer)
    session.commit()
    login(client, viewer)
    token = csrf_token(client, "/journeys/")
    writes = 0
    for rule, path in _routes(client.application):
        if rule.endpoint in PUBLIC_ENDPOINTS | OPEN_TO_EVERY_ROLE | SIGNED_ENDPOINTS:
            continue
        api = rule.endpoint.startswith("api.")
        headers = (
            {"Authorization": f"Bearer {bearer}"} if api else {"X-CSRFToken": token}
        )
        for method in sorted(rule.methods & WRITE_METHODS):
            response = client.open(
                path, method=method, headers=headers, json={} if api else None
            )
            assert response.status_code == 403, (method, path, response.status_code)
            writes += 1
    assert writes >= 10  # grows as routes are added; each new write is checked here


@pytest.mark.parametrize(
    ("role", "path", "status"),
    [
        (Role.viewer, "/journeys/", 200),
        (Role.viewer, "/channels/", 200),
        (Role.viewer, "/customers/", 200),
        (Role.viewer, "/analytics/", 200),
        (Role.viewer, "/admin/", 403),
        (Role.viewer, "/admin/audit", 403),
        (Role.marketer, "/admin/", 403),
        (Role.admin, "/admin/", 200),
        (Role.admin, "/admin/audit", 200),
    ],
)
def test_pages_answer_by_role(client, session, role, path, status):
    login(client, make_user(session, role))
    response = client.get(path)
    assert response.status_code == status
    if status == 403:
        assert "needs the admin role" in response.get_data(as_text=True)
