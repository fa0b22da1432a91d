"""The Policies page's form: caps as rows, quiet hours, the holdout share."""

from __future__ import annotations

from typing import Any

from wtforms import (
    BooleanField,
    FieldList,
    Form,
    FormField,
    HiddenField,
    IntegerField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
)
from wtforms.validators import NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from webapp.forms import BaseForm

WINDOWS = [
    SelectChoice("PT1H", "hour"),
    SelectChoice("P1D", "day"),
    SelectChoice("P7D", "week"),
    SelectChoice("P30D", "30 days"),
]


class ChannelChoices(SelectMultipleField):  # type: ignore[misc]
    """Channels as a row of check boxes."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class CapForm(Form):  # type: ignore[misc]
    channels = ChannelChoices("Channels", choices=[], validate_choice=False)
    max = IntegerField(
        "At most", validators=[Optional(), NumberRange(min=1, max=10_000)]
    )
    per = SelectField("Per", choices=WINDOWS, default="P7D", validate_choice=False)
    remove = BooleanField("Remove")


class PoliciesForm(BaseForm):
    revision = HiddenField()
    caps = FieldList(FormField(CapForm), min_entries=0)
    quiet_on = BooleanField("Hold sends during quiet hours")
    quiet_start = StringField("From", default="21:00", render_kw={"type": "time"})
    quiet_end = StringField("Until", default="08:00", render_kw={"type": "time"})
    quiet_channels = ChannelChoices("On", choices=[], validate_choice=False)
    quiet_trait = StringField("Time zone trait", default="timezone")
    holdout = StringField(
        "Share of customers held out, in percent",
        default="0",
        render_kw={"inputmode": "decimal"},
    )

    kept_caps: list[int]

    def place(self, path: str) -> Any:
        """The field a problem of the document (`frequency_caps[0].max`) belongs to."""
        head, _, rest = path.partition(".")
        if head.startswith("frequency_caps[") and rest:
            number = int(head[len("frequency_caps[") : -1])
            if number < len(self.kept_caps):
                cap = self.caps[self.kept_caps[number]].form
                return getattr(cap, rest.split("[")[0], None)
        names = {
            "quiet_hours.start": self.quiet_start,
            "quiet_hours.end": self.quiet_end,
            "quiet_hours.channels": self.quiet_channels,
            "quiet_hours.timezone_trait": self.quiet_trait,
            "global_holdout.percent": self.holdout,
        }
        return names.get(path.split("[")[0] if path.startswith("quiet") else path)

    def offer(self, channels: list[tuple[str, str]]) -> None:
        """Offer the channels that exist (slug, name), and each cap's own window if the
        API set one the list does not name."""
        slugs = [SelectChoice(slug, name) for slug, name in channels]
        for entry in self.caps:
            entry.form.channels.choices = slugs
            per = entry.form.per
            if per.data and per.data not in {choice.value for choice in WINDOWS}:
                per.choices = [*WINDOWS, SelectChoice(per.data, per.data)]
        self.quiet_channels.choices = slugs

    def document(self) -> dict[str, Any]:
        """The policies document these fields state (checked by engine.policies.parse)."""
        found: dict[str, Any] = {}
        caps = []
        self.kept_caps = []
        for index, entry in enumerate(self.caps):
            cap = entry.form
            if cap.remove.data or (not cap.channels.data and cap.max.data is None):
                continue
            self.kept_caps.append(index)
            caps.append(
                {
                    "channels": list(cap.channels.data or []),
                    "max": cap.max.data,
                    "per": cap.per.data,
                }
            )
        if caps:
            found["frequency_caps"] = caps
        if self.quiet_on.data:
            found["quiet_hours"] = {
                "start": (self.quiet_start.data or "")[:5],
                "end": (self.quiet_end.data or "")[:5],
                "channels": list(self.quiet_channels.data or []),
                "timezone_trait": self.quiet_trait.data or "timezone",
            }
        text = (self.holdout.data or "0").replace("%", "").strip()
        try:
            percent: Any = float(text)
            percent = int(percent) if percent.is_integer() else percent
        except ValueError:
            percent = text
        if percent != 0:
            found["global_holdout"] = {"percent": percent}
        return found
