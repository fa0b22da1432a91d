"""The side panel's forms: one per node type, keyed by the engine's type names.

Each form reads a node's config into its fields (`load`) and writes the fields back as a config
(`dump`). The engine still judges the result: the form only catches what a field can say on its
own (not JSON, not a number), and the draft's validation names everything else.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from wtforms import (
    BooleanField,
    Field,
    HiddenField,
    IntegerField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    widgets,
)
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from engine import durations
from engine.language.graph.document import LABEL_LENGTH
from webapp.designer.editors import RuleField
from webapp.designer.row_fields import CasesField, MessageField, RowsField
from webapp.forms import BaseForm

UNITS = [
    SelectChoice("M", "minutes"),
    SelectChoice("H", "hours"),
    SelectChoice("D", "days"),
    SelectChoice("W", "weeks"),
]
_UNIT_MINUTES = {"M": 1, "H": 60, "D": 1440, "W": 10080}
WEEKDAYS = [
    SelectChoice(str(n), name)
    for n, name in enumerate(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"], start=1)
]


def to_iso(amount: int, unit: str) -> str:
    return f"P{amount}{unit}" if unit in {"D", "W"} else f"PT{amount}{unit}"


def from_iso(text: Any) -> tuple[int, str] | None:
    """(amount, unit) for a duration that fits one unit, else None."""
    try:
        value = durations.parse(text)
    except durations.DurationError:
        return None
    if not isinstance(value, timedelta):
        return None
    minutes = value.total_seconds() / 60
    for unit in ("W", "D", "H", "M"):
        size = _UNIT_MINUTES[unit]
        if minutes >= size and minutes % size == 0:
            return int(minutes // size), unit
    return None


class JSONField(TextAreaField):
    """A JSON value typed as text; empty means absent."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        text = (valuelist[0] if valuelist else "").strip()
        if not text:
            self.data = None
            return
        try:
            self.data = json.loads(text)
        except json.JSONDecodeError as error:
            self.data = None
            raise ValueError(
                f"this is not JSON: {error.msg} (line {error.lineno})"
            ) from None

    def _value(self) -> str:
        return "" if self.data is None else json.dumps(self.data, indent=2)


class LinesField(TextAreaField):
    """`name: value` pairs, one per line, as a dict (a message's fields, a webhook's body)."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        self.data = {}
        for number, line in enumerate(
            (valuelist[0] if valuelist else "").splitlines(), 1
        ):
            if not line.strip():
                continue
            name, colon, value = line.partition(":")
            if not colon or not name.strip():
                raise ValueError(f"line {number}: write it as name: value")
            self.data[name.strip()] = value.strip()

    def _value(self) -> str:
        return "\n".join(f"{k}: {v}" for k, v in (self.data or {}).items())


class CheckboxesField(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()

    def pre_validate(self, form: Any) -> None:
        # WTForms names the value the Python way ('8' is not a valid choice).
        known = {str(value) for value, *_ in self.iter_choices()}
        if any(str(value) not in known for value in self.data or []):
            raise ValidationError("Choose from the boxes shown.")


class NodeForm(BaseForm):
    """The base of every node form; `revision` ties a save to the draft it was loaded from."""

    revision = HiddenField()
    label = StringField(
        "Label",
        [Optional(), Length(max=LABEL_LENGTH)],
        description="Your own short name for this step, shown on the canvas above what it "
        "does. Optional.",
        render_kw={"maxlength": LABEL_LENGTH, "autocomplete": "off"},
    )

    def load(self, config: dict[str, Any]) -> None:
        for name, field in self._config_fields().items():
            if isinstance(field, RuleField | RowsField):
                field.load(config.get(name))
            elif name in config:
                field.data = config[name]

    def dump(self) -> dict[str, Any]:
        config: dict[str, Any] = {}
        for name, field in self._config_fields().items():
            if field.data not in (None, "", [], {}):
                config[name] = field.data
        return config

    def _config_fields(self) -> dict[str, Field]:
        return {
            name: field
            for name, field in self._fields.items()
            if name not in {"revision", "csrf_token", "label", *self.not_config}
        }

    not_config: tuple[str, ...] = ()


FORMS: dict[str, type[NodeForm]] = {}


def form_for(type_name: str) -> type[NodeForm]:
    """The form class of a node type (a KeyError names the type)."""
    return FORMS[type_name]


def _registers(type_name: str) -> Any:
    def decorate(cls: type[NodeForm]) -> type[NodeForm]:
        FORMS[type_name] = cls
        return cls

    return decorate


class _Duration:
    """Mixin for forms with one duration stored as ISO 8601 under `key`."""

    key = "duration"

    def load_duration(self, form: Any, config: dict[str, Any]) -> None:
        found = from_iso(config.get(self.key))
        if found:
            form.amount.data, form.unit.data = found

    def dump_duration(self, form: Any) -> str:
        return to_iso(int(form.amount.data), form.unit.data)


@_registers("trigger")
class TriggerForm(NodeForm):
    event = StringField("Event that starts the journey", validators=[DataRequired()])
    where = RuleField(
        "Only when",
        optional=True,
        description="With no condition, every such event starts the journey.",
    )


@_registers("wait")
class WaitForm(NodeForm, _Duration):
    amount = IntegerField(
        "Wait for", validators=[InputRequired(), NumberRange(min=1)], default=1
    )
    unit = SelectField("Unit", choices=UNITS, default="H")

    def load(self, config: dict[str, Any]) -> None:
        self.load_duration(self, config)

    def dump(self) -> dict[str, Any]:
        return {"duration": self.dump_duration(self)}


@_registers("wait_until")
class WaitUntilForm(NodeForm):
    time = StringField(
        "Time of day (HH:MM, the customer's time zone)", validators=[Optional()]
    )
    weekdays = CheckboxesField("On these days (none: any day)", choices=WEEKDAYS)
    timezone_trait = StringField("Trait holding the time zone", validators=[Optional()])
    trait = StringField("Or: date trait to wait for", validators=[Optional()])
    offset_amount = IntegerField(
        "How long before or after that date (none: on the date)",
        validators=[Optional(), NumberRange(min=1)],
    )
    offset_unit = SelectField("Unit", choices=UNITS, default="D")
    offset_side = SelectField(
        "Before or after",
        choices=[
            SelectChoice("-", "before the date"),
            SelectChoice("", "after the date"),
        ],
        default="-",
    )
    quiet_start = StringField("Quiet hours from (HH:MM)", validators=[Optional()])
    quiet_end = StringField("Quiet hours until (HH:MM)", validators=[Optional()])

    not_config = ("offset_amount", "offset_unit", "offset_side")

    def load(self, config: dict[str, Any]) -> None:
        super().load(config)
        self.weekdays.data = [str(day) for day in config.get("weekdays", [])]
        offset = config.get("offset")
        if isinstance(offset, str) and offset.strip():
            text = offset.strip()
            found = from_iso(text.lstrip("-"))
            if found:
                self.offset_amount.data, self.offset_unit.data = found
                self.offset_side.data = "-" if text.startswith("-") else ""
        quiet = config.get("quiet_hours") or {}
        self.quiet_start.data, self.quiet_end.data = (
            quiet.get("start"),
            quiet.get("end"),
        )

    def dump(self) -> dict[str, Any]:
        config = super().dump()
        config.pop("quiet_start", None)
        config.pop("quiet_end", None)
        if self.offset_amount.data:
            config["offset"] = self.offset_side.data + to_iso(
                int(self.offset_amount.data), self.offset_unit.data
            )
        if self.weekdays.data:
            config["weekdays"] = [int(day) for day in self.weekdays.data]
        if self.quiet_start.data or self.quiet_end.data:
            config["quiet_hours"] = {
                "start": self.quiet_start.data,
                "end": self.quiet_end.data,
            }
        return config


@_registers("wait_for_event")
class WaitForEventForm(NodeForm, _Duration):
    key = "timeout"
    event = StringField("Event to wait for", validators=[DataRequired()])
    where = RuleField(
        "Only when",
        optional=True,
        description="With no condition, any such event ends the wait.",
    )
    amount = IntegerField(
        "Give up after", validators=[InputRequired(), NumberRange(min=1)], default=1
    )
    unit = SelectField("Unit", choices=UNITS, default="D")

    def load(self, config: dict[str, Any]) -> None:
        self.event.data = config.get("event")
        self.where.load(config.get("where"))
        self.load_duration(self, config)

    def dump(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "event": self.event.data,
            "timeout": self.dump_duration(self),
        }
        if self.where.data is not None:
            config["where"] = self.where.data
        return config


@_registers("condition")
class ConditionForm(NodeForm):
    rule = RuleField(
        "Take the true path when",
        description="Customers who do not match take the false path.",
    )


@_registers("switch")
class SwitchForm(NodeForm):
    cases = CasesField(
        "Cases, tested in order",
        description="A customer takes the path of the first case that holds; "
        "one who matches none takes the default path.",
    )


@_registers("split")
class SplitForm(NodeForm):
    branches = JSONField(
        "Branches",
        validators=[InputRequired()],
        description='A list of {"port": "a", "percent": 50}; percents sum to 100; add "holdout": true to send nothing on a branch.',
    )


class _Channels:
    """Forms with channel pickers get their choices from the channels that exist."""

    def set_channels(self, channels: Mapping[str, str] | Iterable[str]) -> None:
        """Offer `channels`: slugs, or each slug with the name the marketer knows it by."""
        names = (
            dict(channels)
            if isinstance(channels, Mapping)
            else {slug: slug for slug in channels}
        )
        ordered = sorted(names.items(), key=lambda pair: (pair[1].lower(), pair[0]))
        for field in self._channel_fields():  # type: ignore[attr-defined]
            blank = SelectChoice(
                "",
                "— none —"
                if field.name == "fallback_channel"
                else "— choose a channel —",
            )
            field.choices = [blank] + [
                SelectChoice(slug, name) for slug, name in ordered
            ]


@_registers("decide")
class DecideForm(NodeForm):
    table = SelectField(
        "Decision table",
        choices=[SelectChoice("", "— choose a table —")],
        validators=[DataRequired("choose the decision table to ask")],
        description="The step leaves by the outcome the table gives, or by “otherwise” "
        "when none of its rules matched; later steps read its values as "
        "context.decisions.<key>.<name>.",
    )

    def set_tables(self, tables: Iterable[tuple[str, str, bool]]) -> None:
        """Offer the tables as (key, name, whether it has a published version)."""
        self.table.choices = [SelectChoice("", "— choose a table —")] + [
            SelectChoice(key, name if live else f"{name} (not published yet)")
            for key, name, live in tables
        ]


@_registers("send")
class SendForm(NodeForm, _Channels):
    channel = SelectField(
        "Channel", validators=[DataRequired("choose the channel to send through")]
    )
    message = MessageField(
        "Message",
        description="Each field is a Liquid template, e.g. "
        "Still thinking, {{ customer.traits.first_name }}?",
    )
    fallback_channel = SelectField("If it fails, try", validators=[Optional()])
    transactional = BooleanField(
        "Transactional: a receipt, a password reset",
        description="Brand-wide policies (frequency caps, quiet hours, the global "
        "holdout) never hold it back, and no cap counts it.",
    )
    # Who the preview is for (a profile number; empty: the newest customer) and their
    # traits as JSON, which the marketer may change to try other values.
    sample_customer = StringField("Preview for", validators=[Optional()])
    sample = TextAreaField(
        "Their traits for the preview (JSON)", validators=[Optional()]
    )
    not_config = ("sample", "sample_customer")

    def _channel_fields(self) -> list[SelectField]:
        return [self.channel, self.fallback_channel]

    def dump(self) -> dict[str, Any]:
        config = super().dump()
        config.setdefault("message", {})
        if not config.get("transactional"):
            config.pop("transactional", None)  # the default is written as nothing
        return config


@_registers("webhook")
class WebhookForm(NodeForm):
    url = StringField("HTTPS URL", validators=[DataRequired()])
    body = LinesField("Body fields", description="One per line, as name: template")
    headers = LinesField("Headers", description="One per line, as name: value")


@_registers("update_profile")
class UpdateProfileForm(NodeForm):
    set = JSONField(
        "Set traits",
        description='{"tier": "vip", "last_seen": "{{ event.occurred_at }}"}',
    )
    unset = StringField("Remove traits (comma separated)")
    increment = JSONField("Add to traits", description='{"orders": 1}')

    def load(self, config: dict[str, Any]) -> None:
        self.set.data = config.get("set")
        self.unset.data = ", ".join(config.get("unset", []))
        self.increment.data = config.get("increment")

    def dump(self) -> dict[str, Any]:
        config: dict[str, Any] = {}
        if self.set.data is not None:
            config["set"] = self.set.data
        names = [
            n.strip() for n in re.split(r"[,\n]", self.unset.data or "") if n.strip()
        ]
        if names:
            config["unset"] = names
        if self.increment.data is not None:
            config["increment"] = self.increment.data
        return config or {"set": {}}


@_registers("exit")
class ExitForm(NodeForm):
    """Nothing to set: the run ends here."""
