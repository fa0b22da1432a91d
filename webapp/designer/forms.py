"""Forms of the journeys pages."""

from __future__ import annotations

from flask_wtf.file import FileField, FileRequired
from wtforms import RadioField, SelectChoice, StringField
from wtforms.validators import DataRequired, Length

from engine import starters
from webapp.forms import BaseForm

BLANK = "blank"
STARTER_CHOICES = [SelectChoice(BLANK, "Blank: a trigger and an exit")] + [
    SelectChoice(starter.key, starter.title) for starter in starters.CATALOGUE
]


class NewJourneyForm(BaseForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    starter = RadioField("Start from", choices=STARTER_CHOICES, default=BLANK)


class ImportForm(BaseForm):
    document = FileField(
        "Journey document (JSON)",
        validators=[FileRequired("choose a journey document to import")],
    )


class ConfirmForm(BaseForm):
    """A form with nothing but its CSRF token, for actions that only need a yes."""
