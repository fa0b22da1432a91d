from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, url_for
from sqlalchemy import select

from engine import accounts
from engine.models import Role, User
from webapp.admin import bp
from webapp.admin.forms import EditUserForm, NewUserForm
from webapp.paging import paginate
from webapp.security import acting_user, requires
from webapp.services import db


def _users_page(form: NewUserForm, status: int = 200) -> Any:
    page = paginate(db(), select(User).order_by(User.email))
    edit_forms = {
        user.id: EditUserForm(obj=user, prefix=f"u{user.id}") for user in page.items
    }
    for user in page.items:
        edit_forms[user.id].role.data = user.role.value
    return render_template(
        "admin/index.html",
        page=page,
        form=form,
        edit_forms=edit_forms,
        me=acting_user(),
    ), status


@bp.get("/")
@requires(Role.admin)
def index() -> Any:
    """Users and their roles."""
    return _users_page(NewUserForm())


@bp.post("/users")
@requires(Role.admin)
def create_user() -> Any:
    """Add a user with a generated password, shown once."""
    form = NewUserForm()
    if not form.validate_on_submit():
        return _users_page(form, 400)
    password = accounts.generate_password()
    try:
        user = accounts.create(
            db(), form.email.data or "", Role(form.role.data), password, acting_user()
        )
    except accounts.AccountError as error:
        form.email.errors = [*form.email.errors, str(error)]
        return _users_page(form, 400)
    db().commit()
    flash(
        f"Added {user.email} as {user.role.value}. Their password is {password} "
        "(shown this once: pass it on now).",
        "success",
    )
    return redirect(url_for("admin.index"))


@bp.post("/users/<int:user_id>")
@requires(Role.admin)
def update_user(user_id: int) -> Any:
    """Change a user's role or whether they can sign in."""
    user = db().get(User, user_id) or abort(404, "No such user.")
    form = EditUserForm(prefix=f"u{user.id}")
    if not form.validate_on_submit():
        flash("Choose one of the listed roles.", "error")
        return redirect(url_for("admin.index"))
    try:
        changes = accounts.update(
            db(), user, acting_user(), Role(form.role.data), bool(form.active.data)
        )
    except accounts.AccountError as error:
        flash(str(error), "error")
        return redirect(url_for("admin.index"))
    if changes:
        db().commit()
        flash(f"Updated {user.email}.", "success")
    return redirect(url_for("admin.index"))
