import pytest
from sqlalchemy import select

from engine import accounts
from engine.audit import SYSTEM
from engine.models import AuditEntry, Role, utcnow
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


def _entries(session):
    return [
        (entry.actor, entry.action, entry.target_id, entry.detail)
        for entry in session.scalars(select(AuditEntry).order_by(AuditEntry.id))
    ]


def test_creating_a_user_records_who_and_which_role(session):
    admin = make_user(session, Role.admin)
    added = accounts.create(session, "ada@example.com", Role.viewer, PASSWORD, admin)
    first = accounts.create(session, "root@example.com", Role.admin, PASSWORD, None)
    session.commit()
    assert _entries(session) == [
        (admin.email, "user.create", str(added.id), {"role": "viewer"}),
        (SYSTEM, "user.create", str(first.id), {"role": "admin"}),
    ]
    with pytest.raises(accounts.AccountError, match="already exists"):
        accounts.create(session, "ADA@example.com", Role.viewer, PASSWORD, admin)
    session.rollback()
    assert len(_entries(session)) == 2


def test_an_update_records_each_change_and_ends_the_users_sessions(session):
    admin = make_user(session, Role.admin)
    other = make_user(session, Role.viewer)
    generation = other.session_generation
    changes = accounts.update(session, other, admin, Role.marketer, False)
    session.commit()
    assert changes == {"role": ["viewer", "marketer"], "active": [True, False]}
    assert other.role is Role.marketer and not other.active
    assert other.session_generation == generation + 1
    assert accounts.update(session, other, admin, Role.marketer, False) == {}
    assert other.session_generation == generation + 1  # nothing changed, nothing ended
    session.commit()
    assert _entries(session) == [(admin.email, "user.update", str(other.id), changes)]


@pytest.mark.parametrize(("role", "active"), [(Role.viewer, True), (Role.admin, False)])
def test_an_admin_cannot_remove_their_own_admin_role_or_sign_in(session, role, active):
    admin = make_user(session, Role.admin)
    with pytest.raises(accounts.AccountError, match="your own admin role"):
        accounts.update(session, admin, admin, role, active)
    session.commit()
    assert admin.role is Role.admin and admin.active
    assert _entries(session) == []


def test_a_password_change_is_recorded_and_ends_the_users_sessions(session):
    user = make_user(session)
    generation = user.session_generation
    with pytest.raises(accounts.AccountError, match="at least 10 characters"):
        accounts.change_password(session, user, "short", None)
    accounts.change_password(session, user, "a brand new password", None)
    session.commit()
    assert accounts.authenticate(session, user.email, "a brand new password") is user
    assert user.session_generation == generation + 1
    assert _entries(session) == [(SYSTEM, "user.password", str(user.id), {})]


def test_issuing_a_token_records_its_name_never_its_value(session):
    user = make_user(session)
    token = accounts.issue_token(session, user, "ci", None)
    session.commit()
    assert accounts.user_for_token(session, token) is user
    assert _entries(session) == [(SYSTEM, "token.create", str(user.id), {"name": "ci"})]
    assert token not in str(_entries(session))
