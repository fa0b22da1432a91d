"""A sign-in session ends on the server: a copied cookie stops working after sign-out,
a password change, a deactivation or a role change."""

import pytest

from engine import accounts
from engine.models import Role, User
from tests.factories import csrf_token, login, make_user

pytestmark = pytest.mark.security


def _signed_in(app, user):
    """A client signed in as `user`, and its session cookie's value."""
    client = app.test_client()
    login(client, user)
    assert client.get("/journeys/").status_code == 200
    return client, client.get_cookie("session").value


def _replayed(app, cookie):
    """The answer to /journeys/ for a browser that sends a copy of an old cookie."""
    client = app.test_client()
    client.set_cookie("session", cookie)
    return client.get("/journeys/")


def _sent_to_sign_in(response):
    return response.status_code == 302 and response.headers["Location"].startswith(
        "/login"
    )


def _admin_update(app, session, user, **fields):
    admin = make_user(session, Role.admin)
    client = app.test_client()
    login(client, admin)
    token = csrf_token(client, "/admin/")
    prefix = f"u{user.id}-"
    data = {f"{prefix}{name}": value for name, value in fields.items()}
    response = client.post(
        f"/admin/users/{user.id}", data={**data, "csrf_token": token}
    )
    assert response.status_code == 302


def test_a_cookie_copied_before_sign_out_no_longer_signs_in(app, session):
    user = make_user(session)
    client, cookie = _signed_in(app, user)
    other_device, _ = _signed_in(app, user)
    response = client.post(
        "/logout", data={"csrf_token": csrf_token(client, "/journeys/")}
    )
    assert response.status_code == 302
    assert _sent_to_sign_in(_replayed(app, cookie))
    # Signing out ends the user's other sessions too.
    assert _sent_to_sign_in(other_device.get("/journeys/"))
    # Signing in again works, with a new session.
    login(client, user)
    assert client.get("/journeys/").status_code == 200


def test_a_password_change_ends_earlier_sessions(app, session):
    user = make_user(session)
    _client, cookie = _signed_in(app, user)
    accounts.set_password(user, "a brand new password")
    session.commit()
    assert _sent_to_sign_in(_replayed(app, cookie))
    fresh = app.test_client()
    login(fresh, user, password="a brand new password")
    assert fresh.get("/journeys/").status_code == 200


def test_deactivation_ends_sessions_and_reactivation_does_not_revive_them(app, session):
    user = make_user(session, Role.marketer)
    _client, cookie = _signed_in(app, user)
    _admin_update(app, session, user, role="marketer")  # no "active": deactivated
    assert _sent_to_sign_in(_replayed(app, cookie))
    _admin_update(app, session, user, role="marketer", active="y")
    session.expire_all()
    assert session.get(User, user.id).active is True
    assert _sent_to_sign_in(_replayed(app, cookie))


def test_a_role_change_ends_earlier_sessions(app, session):
    user = make_user(session, Role.marketer)
    _client, cookie = _signed_in(app, user)
    _admin_update(app, session, user, role="viewer", active="y")
    assert _sent_to_sign_in(_replayed(app, cookie))


def test_an_unchanged_user_keeps_their_session(app, session):
    user = make_user(session, Role.marketer)
    _client, cookie = _signed_in(app, user)
    _admin_update(app, session, user, role="marketer", active="y")
    assert _replayed(app, cookie).status_code == 200
