from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    SelectChoice,
    SelectField,
    StringField,
)
from wtforms.validators import DataRequired, Length, Optional, ValidationError

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


DATE_HELP = "give a date as YYYY-MM-DD"


class AuditFilterForm(BaseForm):
    """The audit log's filters, read from the query string."""

    class Meta:
        csrf = False

    action = StringField("Action")
    actor = StringField("Who", validators=[Length(max=254)])
    target = StringField("Target", validators=[Length(max=100)])
    since = DateField("From", validators=[Optional()], invalid_value_message=DATE_HELP)
    until = DateField("To", validators=[Optional()], invalid_value_message=DATE_HELP)

    def validate_until(self, field: DateField) -> None:
        if field.data and self.since.data and field.data < self.since.data:
            raise ValidationError("the end date is before the start date")
