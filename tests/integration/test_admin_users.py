import re

from sqlalchemy import select

from engine import accounts
from engine.models import AuditEntry, Role, User
from tests.factories import csrf_token, login, make_user


def test_an_admin_adds_a_user_who_can_then_sign_in(client, session, app):
    admin = make_user(session, Role.admin)
    login(client, admin)
    response = client.post(
        "/admin/users",
        data={
            "email": "new@example.com",
            "role": "marketer",
            "csrf_token": csrf_token(client, "/admin/"),
        },
        follow_redirects=True,
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    password = re.search(r"Their password is (\S+) ", page).group(1)
    assert accounts.authenticate(session, "new@example.com", password) is not None
    entry = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "user.create")
    ).one()
    assert entry.actor == admin.email
    # The password is shown once: the next page does not show it.
    assert password not in client.get("/admin/").get_data(as_text=True)


def test_adding_a_user_names_the_field_at_fault(client, session):
    admin = make_user(session, Role.admin)
    login(client, admin)
    token = csrf_token(client, "/admin/")
    response = client.post(
        "/admin/users", data={"email": "nope", "role": "viewer", "csrf_token": token}
    )
    assert response.status_code == 400
    assert "is not an email address" in response.get_data(as_text=True)
    response = client.post(
        "/admin/users",
        data={"email": admin.email, "role": "viewer", "csrf_token": token},
    )
    assert response.status_code == 400
    assert "already exists" in response.get_data(as_text=True)
    response = client.post(
        "/admin/users",
        data={"email": "x@example.com", "role": "owner", "csrf_token": token},
    )
    assert response.status_code == 400
    assert "Not a valid choice" in response.get_data(as_text=True)


def test_an_admin_changes_a_role_and_access_and_it_is_audited(client, session):
    admin = make_user(session, Role.admin)
    other = make_user(session, Role.viewer)
    login(client, admin)
    token = csrf_token(client, "/admin/")
    prefix = f"u{other.id}-"
    response = client.post(
        f"/admin/users/{other.id}",
        data={
            f"{prefix}role": "marketer",
            f"{prefix}csrf_token": token,
            "csrf_token": token,
        },
    )
    assert response.status_code == 302
    session.expire_all()
    changed = session.get(User, other.id)
    assert changed.role is Role.marketer and changed.active is False
    entry = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "user.update")
    ).one()
    assert entry.detail == {"role": ["viewer", "marketer"], "active": [True, False]}


def test_an_admin_cannot_lock_themselves_out(client, session):
    admin = make_user(session, Role.admin)
    login(client, admin)
    token = csrf_token(client, "/admin/")
    prefix = f"u{admin.id}-"
    response = client.post(
        f"/admin/users/{admin.id}",
        data={f"{prefix}role": "viewer", f"{prefix}active": "y", "csrf_token": token},
        follow_redirects=True,
    )
    assert "cannot remove your own admin role" in response.get_data(as_text=True)
    session.expire_all()
    assert session.get(User, admin.id).role is Role.admin


def test_an_unknown_user_is_a_404(client, session):
    login(client, make_user(session, Role.admin))
    token = csrf_token(client, "/admin/")
    response = client.post("/admin/users/999", data={"csrf_token": token})
    assert response.status_code == 404
