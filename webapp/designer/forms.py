"""Forms of the journeys pages."""

from __future__ import annotations

from typing import Any

from flask_wtf.file import FileField, FileRequired
from wtforms import (
    HiddenField,
    IntegerField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from engine.journeys import starters
from engine.language.graph import DESCRIPTION_LENGTH, NAME_LENGTH
from webapp.designer.editors import RuleField
from webapp.designer.node_forms import UNITS, from_iso, to_iso
from webapp.designer.row_fields import ExitsField
from webapp.forms import BaseForm

NAME_FITS = Length(
    max=NAME_LENGTH, message=f"the name is longer than {NAME_LENGTH} characters"
)
DESCRIPTION_FITS = Length(
    max=DESCRIPTION_LENGTH,
    message=f"the description is longer than {DESCRIPTION_LENGTH:,} characters",
)
BLANK = "blank"
STARTER_CHOICES = [SelectChoice(BLANK, "Blank: a trigger and an exit")] + [
    SelectChoice(starter.key, starter.title) for starter in starters.CATALOGUE
]


class NewJourneyForm(BaseForm):
    name = StringField("Name", validators=[DataRequired(), NAME_FITS])
    starter = RadioField("Start from", choices=STARTER_CHOICES, default=BLANK)


class ImportForm(BaseForm):
    document = FileField(
        "Journey document (JSON)",
        validators=[FileRequired("choose a journey document to import")],
    )


class ConfirmForm(BaseForm):
    """A form with nothing but its CSRF token, for actions that only need a yes."""


REENTRY_CHOICES = [
    SelectChoice("never", "Once: a customer enters at most one time"),
    SelectChoice("after_exit", "Again, once they have left it"),
    SelectChoice("always", "Any time, even while already in it"),
]


class JourneySettingsForm(BaseForm):
    """The document-level settings: name, entry, goal and exit events."""

    revision = HiddenField()
    name = StringField("Name", validators=[DataRequired(), NAME_FITS])
    description = TextAreaField(
        "Description", validators=[Optional(), DESCRIPTION_FITS]
    )
    reentry = SelectField("A customer may enter", choices=REENTRY_CHOICES)
    max_entries = IntegerField(
        "At most this many times (blank: no limit)",
        validators=[Optional(), NumberRange(min=1)],
    )
    goal_event = StringField(
        "Event that counts as converting",
        validators=[Optional()],
        description="Blank for no goal. A customer who converts leaves the journey.",
    )
    goal_amount = IntegerField(
        "Within", validators=[Optional(), NumberRange(min=1)], default=7
    )
    goal_unit = SelectField("Unit", choices=UNITS, default="D")
    goal_where = RuleField("Only when", optional=True)
    exit_on = ExitsField(
        "Exit events",
        description="A customer who does one of these leaves the journey at once.",
    )
    max_sends_per_minute = IntegerField(
        "At most this many messages a minute (blank: no limit)",
        validators=[Optional(), NumberRange(min=1, max=100_000)],
        description="For a launch that must not flood a channel or a support desk: "
        "sends past the limit wait, in order, for the next minutes. Transactional "
        "sends never wait.",
    )

    def load(self, document: dict[str, Any]) -> None:
        self.name.data = document.get("name")
        self.description.data = document.get("description")
        entry = document.get("entry") or {}
        self.reentry.data = entry.get("reentry", "after_exit")
        self.max_entries.data = entry.get("max_entries")
        goal = document.get("goal") or {}
        self.goal_event.data = goal.get("event")
        found = from_iso(goal.get("within"))
        if found:
            self.goal_amount.data, self.goal_unit.data = found
        self.goal_where.load(goal.get("where"))
        self.exit_on.load(document.get("exit_on") or [])
        throttle = document.get("throttle")
        if isinstance(throttle, dict):
            self.max_sends_per_minute.data = throttle.get("max_sends_per_minute")

    def validate(self, extra_validators: Any = None) -> bool:
        valid = bool(super().validate(extra_validators))
        if (self.goal_event.data or "").strip() and not self.goal_amount.data:
            self.goal_amount.errors = [
                *self.goal_amount.errors,
                "Give the time to convert in.",
            ]
            valid = False
        return valid

    def dump_into(self, document: dict[str, Any]) -> dict[str, Any]:
        """A copy of `document` with these settings in it."""
        found = {**document, "name": (self.name.data or "").strip()}
        description = (self.description.data or "").strip()
        if description:
            found["description"] = description
        else:
            found.pop("description", None)
        found["entry"] = {
            "reentry": self.reentry.data,
            "max_entries": self.max_entries.data,
        }
        event = (self.goal_event.data or "").strip()
        if event:
            amount, unit = int(self.goal_amount.data or 1), self.goal_unit.data
            within = (document.get("goal") or {}).get("within")
            if from_iso(within) != (amount, unit):  # P7D stays P7D, not P1W
                within = to_iso(amount, unit)
            goal: dict[str, Any] = {"event": event, "within": within}
            if self.goal_where.data is not None:
                goal["where"] = self.goal_where.data
            found["goal"] = goal
        else:
            found.pop("goal", None)
        found["exit_on"] = self.exit_on.data
        if self.max_sends_per_minute.data:
            found["throttle"] = {"max_sends_per_minute": self.max_sends_per_minute.data}
        else:
            found.pop("throttle", None)
        return found
