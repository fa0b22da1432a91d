"""Every route checks the user's role: walk the whole url_map."""

import re
from collections import Counter

import pytest

from engine import accounts
from engine.models import Role
from tests.factories import csrf_token, login, make_user
from webapp.security import BEARER_ATTRIBUTE, PUBLIC, ROLE_ATTRIBUTE, SIGNED

PUBLIC_ENDPOINTS = {"api.openapi", "auth.login", "ops.healthz", "static"}
# Inbound webhooks prove their caller by signature (see test_intake.py), not by role; a
# real-time decision takes a channel's signature or any API token (test_decisions.py).
SIGNED_ENDPOINTS = {"hooks.receive", "hooks.receive_batch", "api.decide_now"}


def _path(rule) -> str:
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: "1", rule.rule)


def _routes(app):
    for rule in app.url_map.iter_rules():
        yield rule, _path(rule)


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


# What each kind of route answers each caller: the table every route is checked against.
# A route is public, signed (webhooks), a page (sign-in session) or takes a bearer token (the
# API and /metrics); a caller is anonymous, or has a role below or at least the route's.
ALLOWED = "allowed: neither 401 nor 403, no sign-in redirect, no 5xx"
SIGN_IN = "sent to sign in: 302 to /login?next=<the page>"
UNAUTHORIZED = "401 with a JSON error"
FORBIDDEN = "403"
UNSIGNED = "refused for want of a signature: 400, 401 or 404"
EXPECTED = {
    ("public", "anonymous"): ALLOWED,
    ("public", "below"): ALLOWED,
    ("public", "at least"): ALLOWED,
    ("signed", "anonymous"): UNSIGNED,
    ("signed", "below"): UNSIGNED,
    ("signed", "at least"): UNSIGNED,
    ("page", "anonymous"): SIGN_IN,
    ("page", "below"): FORBIDDEN,
    ("page", "at least"): ALLOWED,
    ("token", "anonymous"): UNAUTHORIZED,
    ("token", "below"): FORBIDDEN,
    ("token", "at least"): ALLOWED,
}
CALLERS = (None, Role.viewer, Role.marketer, Role.admin)


def _kind(app, rule) -> tuple[str, Role | None]:
    """(kind of route, role it needs) from what its view declares."""
    view = app.view_functions[rule.endpoint]
    declared = getattr(view, ROLE_ATTRIBUTE, None)
    if declared in (PUBLIC, SIGNED):
        return declared, None
    assert isinstance(declared, Role), f"{rule.endpoint} declares no role"
    bearer = rule.endpoint.startswith("api.") or getattr(view, BEARER_ATTRIBUTE, False)
    return ("token" if bearer else "page"), declared


def _caller(role: Role | None, needed: Role | None) -> str:
    if role is None:
        return "anonymous"
    return "at least" if needed is None or role.includes(needed) else "below"


def _matches(expected: str, response) -> bool:
    status = response.status_code
    # The sign-in check names the page asked for; signing out lands on the bare form.
    to_sign_in = status == 302 and response.headers["Location"].startswith(
        "/login?next="
    )
    if expected == ALLOWED:
        return status < 500 and status not in {401, 403} and not to_sign_in
    if expected == SIGN_IN:
        return to_sign_in
    if expected == UNAUTHORIZED:
        return status == 401 and response.get_json()["error"]["code"] == "unauthorized"
    if expected == FORBIDDEN:
        return status == 403
    return status in {400, 401, 404}


def test_every_route_answers_every_role_as_its_declaration_says(app, session):
    """Anonymous, viewer, marketer and admin on every route and method; the routes that
    sign out come last for each caller, as they end its session."""
    users = {role: make_user(session, role) for role in CALLERS if role is not None}
    tokens = {
        role: accounts.create_token(session, user) for role, user in users.items()
    }
    session.commit()
    routes = sorted(
        (
            (rule.endpoint == "auth.logout", rule.rule, method, rule)
            for rule, _path in _routes(app)
            if rule.endpoint != "static"
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"})
        ),
        key=lambda route: route[:3],
    )
    checked: Counter[str] = Counter()
    wrong = []
    for role in CALLERS:
        client = app.test_client()
        if role is not None:
            login(client, users[role])
        token = csrf_token(client, "/login")
        for _last, _rule, method, rule in routes:
            kind, needed = _kind(app, rule)
            expected = EXPECTED[(kind, _caller(role, needed))]
            headers = {"X-CSRFToken": token}
            if kind == "token" and role is not None:
                headers["Authorization"] = f"Bearer {tokens[role]}"
            path = _path(rule)
            response = client.open(path, method=method, headers=headers)
            if not _matches(expected, response):
                wrong.append((role, method, path, response.status_code, expected))
            checked[expected] += 1
            if kind == "token" and role is not None:
                # The session cookie alone never stands in for a token.
                alone = client.open(path, method=method, headers={"X-CSRFToken": token})
                if not _matches(UNAUTHORIZED, alone):
                    wrong.append((role, method, path, alone.status_code, "no token"))
                checked["session without a token: 401"] += 1
    print(
        f"\nroles checked: {len(routes)} routes x {len(CALLERS)} callers =",
        f"{len(routes) * len(CALLERS)};",
        "; ".join(f"{name}: {n}" for name, n in sorted(checked.items())),
    )
    assert wrong == []
    assert len(routes) >= 80


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
