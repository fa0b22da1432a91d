import pytest

from engine import accounts
from engine.models import Role, utcnow
from tests.factories import make_user


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer tl_not-a-real-token",
        "Token abc",
    ],
)
def test_a_missing_or_bad_token_gets_401_json(client, header):
    headers = {"Authorization": header} if header is not None else {}
    response = client.get("/api/v1/me", headers=headers)
    assert response.status_code == 401
    assert response.is_json
    assert response.get_json()["error"]["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_valid_token_acts_as_its_user(client, session):
    user = make_user(session, Role.marketer)
    token = accounts.create_token(session, user)
    session.commit()
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.get_json() == {
        "id": user.id,
        "email": user.email,
        "role": "marketer",
    }


def test_a_revoked_token_or_disabled_user_is_refused(client, session):
    user = make_user(session)
    token = accounts.create_token(session, user)
    session.commit()
    user.active = False
    session.commit()
    assert (
        client.get(
            "/api/v1/me", headers={"Authorization": f"Bearer {token}"}
        ).status_code
        == 401
    )
    user.active = True
    for row in session.scalars(accounts.select(accounts.ApiToken)):
        row.revoked_at = utcnow()
    session.commit()
    assert (
        client.get(
            "/api/v1/me", headers={"Authorization": f"Bearer {token}"}
        ).status_code
        == 401
    )


def test_the_api_ignores_the_browser_session(client, session):
    from tests.factories import login

    login(client, make_user(session))
    assert client.get("/api/v1/me").status_code == 401


def test_api_errors_are_json_not_pages(client):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"
