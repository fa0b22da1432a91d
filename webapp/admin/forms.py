from wtforms import BooleanField, EmailField, SelectChoice, SelectField
from wtforms.validators import DataRequired, Length

from engine.models import Role
from webapp.forms import BaseForm

ROLE_CHOICES = [
    SelectChoice(Role.viewer.value, "Viewer: reads everything, changes nothing"),
    SelectChoice(
        Role.marketer.value, "Marketer: edits, simulates and publishes journeys"
    ),
    SelectChoice(Role.admin.value, "Admin: also users, channels and secrets"),
]


class NewUserForm(BaseForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    role = SelectField("Role", choices=ROLE_CHOICES, default=Role.viewer.value)


SHORT_ROLE_CHOICES = [
    SelectChoice(role.value, role.value.capitalize()) for role in Role
]


class EditUserForm(BaseForm):
    role = SelectField("Role", choices=SHORT_ROLE_CHOICES)
    active = BooleanField("Can sign in")
