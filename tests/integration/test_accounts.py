import pytest

from engine import accounts
from engine.models import Role, utcnow
from tests.factories import PASSWORD, make_user


def test_passwords_are_stored_as_argon2_hashes(session):
    user = make_user(session, email="Ada@Example.com")
    assert user.email == "ada@example.com"
    assert user.password_hash.startswith("$argon2")
    assert PASSWORD not in user.password_hash


@pytest.mark.parametrize(
    ("email", "password", "message"),
    [
        ("not-an-email", PASSWORD, "is not an email address"),
        ("a@b.c", "short", "at least 10 characters"),
    ],
)
def test_bad_user_input_is_refused_with_a_reason(session, email, password, message):
    with pytest.raises(accounts.AccountError, match=message):
        accounts.create_user(session, email, Role.viewer, password)


def test_an_email_is_used_once(session):
    make_user(session, email="ada@example.com")
    with pytest.raises(accounts.AccountError, match="already exists"):
        accounts.create_user(session, "ADA@example.com", Role.viewer, PASSWORD)


def test_authenticate_accepts_only_the_right_password_of_an_active_user(session):
    user = make_user(session, email="ada@example.com")
    assert accounts.authenticate(session, "ada@example.com", "wrong password!") is None
    assert accounts.authenticate(session, "nobody@example.com", PASSWORD) is None
    assert accounts.authenticate(session, " Ada@example.com ", PASSWORD) is user
    assert user.last_login_at is not None
    user.active = False
    assert accounts.authenticate(session, "ada@example.com", PASSWORD) is None


def test_tokens_are_stored_hashed_and_can_be_revoked(session):
    user = make_user(session)
    token = accounts.create_token(session, user, "ci")
    session.commit()
    assert token.startswith("tl_")
    row = user_token = session.scalars(
        accounts.select(accounts.ApiToken).where(accounts.ApiToken.user_id == user.id)
    ).one()
    assert token not in (row.token_hash, row.prefix) and len(row.token_hash) == 64
    assert accounts.user_for_token(session, token) is user
    assert accounts.user_for_token(session, token + "x") is None
    assert accounts.user_for_token(session, "Bearer nonsense") is None
    user_token.revoked_at = utcnow()
    assert accounts.user_for_token(session, token) is None
