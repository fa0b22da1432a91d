import threading
import time

import pytest
from sqlalchemy import select, text, update

from engine import accounts
from engine.models import ApiToken, Role, User, utcnow
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


def _answers_while_writing(app, database, token, threads=6, each=15):
    """Statuses of GET /api/v1/journeys sent from `threads` threads at once while another
    connection keeps writing; an exception counts as a 500."""
    writing = threading.Event()
    writing.set()

    def write():
        while writing.is_set():
            with database.session(writer=True) as session:
                session.execute(
                    update(User).where(User.id == -1).values(last_login_at=utcnow())
                )
                session.execute(
                    text("CREATE TEMPORARY TABLE IF NOT EXISTS scratch (n INTEGER)")
                )
                session.execute(text("INSERT INTO scratch VALUES (1)"))

    barrier = threading.Barrier(threads)
    statuses = []

    def read():
        client = app.test_client()
        barrier.wait()
        for _ in range(each):
            try:
                response = client.get(
                    "/api/v1/journeys", headers={"Authorization": f"Bearer {token}"}
                )
                statuses.append(response.status_code)
            except Exception:  # noqa: BLE001  (propagated from the app under TESTING)
                statuses.append(500)

    writer = threading.Thread(target=write)
    writer.start()
    readers = [threading.Thread(target=read) for _ in range(threads)]
    for thread in readers:
        thread.start()
    for thread in readers:
        thread.join(60)
    writing.clear()
    writer.join(10)
    return statuses


@pytest.mark.security
def test_concurrent_reads_with_one_token_never_fail_while_others_write(
    app, session, database
):
    token = accounts.create_token(session, make_user(session, Role.viewer))
    session.commit()
    statuses = _answers_while_writing(app, database, token)
    assert statuses == [200] * len(statuses)


@pytest.mark.security
def test_a_token_use_is_recorded_at_most_once_a_minute(client, session, redis_client):
    user = make_user(session, Role.viewer)
    token = accounts.create_token(session, user)
    session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    session.rollback()
    row = session.scalars(select(ApiToken)).one()
    first = row.last_used_at
    assert first is not None
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    session.rollback()
    assert session.scalars(select(ApiToken)).one().last_used_at == first
    # A minute later (its Redis mark gone), the next use is recorded again.
    redis_client.delete(f"throughline:token-used:{row.id}")
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    session.rollback()
    assert session.scalars(select(ApiToken)).one().last_used_at > first


@pytest.mark.security
def test_a_read_succeeds_when_its_use_cannot_be_recorded(client, session, monkeypatch):
    from sqlalchemy.exc import OperationalError

    def locked(*_args, **_kwargs):
        raise OperationalError("UPDATE api_tokens", {}, Exception("database is locked"))

    monkeypatch.setattr(accounts, "mark_token_used", locked)
    token = accounts.create_token(session, make_user(session, Role.viewer))
    session.commit()
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


@pytest.mark.security
def test_a_write_through_the_api_records_its_token_use_without_waiting(
    client, session, settings
):
    from engine.crypto import SecretBox
    from engine.journeys import starters
    from tests.factories import make_channels

    box = SecretBox(settings.encryption_key)
    make_channels(session, box, "email", "sms", "support-desk", "app")
    token = accounts.create_token(session, make_user(session, Role.marketer))
    session.commit()
    started = time.monotonic()
    response = client.post(
        "/api/v1/journeys",
        json=starters.document("cart_recovery"),
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201, response.get_json()
    # Its own transaction holds SQLite's write lock: a second one would wait it out.
    assert time.monotonic() - started < 5
    session.rollback()
    assert session.scalars(select(ApiToken)).one().last_used_at is not None
