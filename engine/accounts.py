"""Users, password hashes and API tokens.

`create`, `update`, `change_password` and `issue_token` are what an admin (or the command
line) does to a user, each with its audit entry; `create_user`, `set_password` and
`create_token` are their building blocks, for callers that record no entry (fixtures).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy import update as sql_update
from sqlalchemy.orm import Session

from engine import audit
from engine.models import ApiToken, Role, User, utcnow

_hasher = PasswordHasher()
# A hash of a random password, verified against when the email is unknown so that a
# missing account costs as much time as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
MIN_PASSWORD_LENGTH = 10
TOKEN_PREFIX = "tl_"


class AccountError(ValueError):
    """A user or token request that cannot be honoured, with a sentence saying why."""


def normalize_email(email: str) -> str:
    return email.strip().lower()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def find_user(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == normalize_email(email)))


def create_user(session: Session, email: str, role: Role, password: str) -> User:
    """Add a user; the caller commits."""
    email = normalize_email(email)
    if not EMAIL.match(email):
        raise AccountError(f"{email!r} is not an email address")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(
            f"the password must have at least {MIN_PASSWORD_LENGTH} characters"
        )
    if find_user(session, email) is not None:
        raise AccountError(f"a user with the email {email} already exists")
    user = User(
        email=email, role=role, password_hash=hash_password(password), active=True
    )
    session.add(user)
    session.flush()
    return user


def create(
    session: Session, email: str, role: Role, password: str, actor: User | None
) -> User:
    """Add a user, audited; the caller commits."""
    user = create_user(session, email, role, password)
    audit.record(
        session, actor, "user.create", "user", user.id, {"role": user.role.value}
    )
    return user


def update(
    session: Session, user: User, actor: User | None, role: Role, active: bool
) -> dict[str, list[str | bool]]:
    """Change a user's role or whether they can sign in, audited; the caller commits.

    Any change ends the user's sign-in sessions. Refuses an actor's removing their own
    admin role or sign-in. Returns {field: [before, after]} of each change.
    """
    if actor is not None and user.id == actor.id and (role != Role.admin or not active):
        raise AccountError(
            "You cannot remove your own admin role or sign-in: ask another admin."
        )
    changes: dict[str, list[str | bool]] = {}
    if role != user.role:
        changes["role"] = [user.role.value, role.value]
        user.role = role
    if active != user.active:
        changes["active"] = [user.active, active]
        user.active = active
    if changes:
        # A new role or a lost sign-in starts from a fresh session.
        end_sessions(user)
        audit.record(session, actor, "user.update", "user", user.id, changes)
    return changes


def change_password(
    session: Session, user: User, password: str, actor: User | None
) -> None:
    """Set a new password and end the user's sign-in sessions, audited; the caller commits."""
    set_password(user, password)
    audit.record(session, actor, "user.password", "user", user.id)


def set_password(user: User, password: str) -> None:
    """Change the password and end the user's sign-in sessions; the caller commits."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(
            f"the password must have at least {MIN_PASSWORD_LENGTH} characters"
        )
    user.password_hash = hash_password(password)
    end_sessions(user)


def end_sessions(user: User) -> None:
    """End every sign-in session the user has now; the caller commits.

    A session carries the generation it began with and stops loading once it differs.
    """
    user.session_generation += 1


def authenticate(session: Session, email: str, password: str) -> User | None:
    """The active user with this email and password, or None."""
    user = find_user(session, email)
    if user is None:
        try:
            _hasher.verify(_DUMMY_HASH, password)
        except VerificationError:
            pass
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if not user.active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    return user


def count_users(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User)) or 0


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, user: User, name: str = "cli") -> str:
    """Create an API token for `user` and return it; only its hash is stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiToken(user=user, name=name, prefix=token[:10], token_hash=_token_hash(token))
    )
    session.flush()
    return token


def issue_token(session: Session, user: User, name: str, actor: User | None) -> str:
    """Create an API token for `user`, audited, and return it; the caller commits."""
    token = create_token(session, user, name)
    audit.record(session, actor, "token.create", "user", user.id, {"name": name})
    return token


def find_token(session: Session, token: str) -> ApiToken | None:
    """The live token row of a bearer token (not revoked, its user active), or None."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = session.scalar(
        select(ApiToken).where(ApiToken.token_hash == _token_hash(token))
    )
    if row is None or row.revoked_at is not None or not row.user.active:
        return None
    return row


def live_token_id(session: Session, token: str) -> int | None:
    """The id of a bearer token's live row (not revoked, its user active), in one
    statement; None for an unknown, revoked or disabled one."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    found: int | None = session.scalar(
        select(ApiToken.id)
        .join(User, User.id == ApiToken.user_id)
        .where(
            ApiToken.token_hash == _token_hash(token),
            ApiToken.revoked_at.is_(None),
            User.active.is_(True),
        )
    )
    return found


def user_for_token(session: Session, token: str) -> User | None:
    """The active user a bearer token belongs to, or None for an unknown or revoked token."""
    row = find_token(session, token)
    return row.user if row is not None else None


def mark_token_used(session: Session, token_id: int, when: datetime) -> None:
    """Record when a token was last used; the caller commits."""
    session.execute(
        sql_update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=when)
    )
