"""The filters of the analytics pages: a GET form, read from the query string."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from wtforms import DateField, SelectChoice, SelectField
from wtforms.validators import Optional, ValidationError

from engine.counters import Window, hour_of
from webapp.forms import BaseForm

PERIODS = [
    SelectChoice("24h", "Last 24 hours"),
    SelectChoice("7d", "Last 7 days"),
    SelectChoice("30d", "Last 30 days"),
    SelectChoice("90d", "Last 90 days"),
    SelectChoice("all", "All time"),
    SelectChoice("custom", "Dates below"),
]
HOURS = {"24h": 24, "7d": 7 * 24, "30d": 30 * 24, "90d": 90 * 24}
MAX_HOURLY = timedelta(days=3)


class FiltersForm(BaseForm):
    """Period (or dates), journey version and the trend's granularity."""

    class Meta:
        csrf = False  # reading figures changes nothing

    period = SelectField("Period", choices=PERIODS, default="7d")
    since = DateField("From", validators=[Optional()])
    until = DateField("To (inclusive)", validators=[Optional()])
    version = SelectField(
        "Version", choices=[SelectChoice("", "All versions")], default=""
    )
    granularity = SelectField(
        "Trend by",
        choices=[
            SelectChoice("auto", "Automatic"),
            SelectChoice("hour", "Hour"),
            SelectChoice("day", "Day"),
        ],
        default="auto",
    )

    def validate_until(self, field: DateField) -> None:
        if self.period.data != "custom":
            return
        if self.since.data is None or field.data is None:
            raise ValidationError("give both dates, or choose a period above")
        if field.data < self.since.data:
            raise ValidationError("the end date is before the start date")

    def window(self, now: datetime, version_ids: dict[str, int]) -> Window:
        """The counters the figures cover (a bad custom range falls back to 7 days)."""
        versions = (
            (version_ids[self.version.data],)
            if self.version.data in version_ids
            else ()
        )
        if self.period.data == "all":
            return Window(version_ids=versions)
        if self.period.data == "custom" and not self.errors:
            since = datetime.combine(self.since.data, time(), UTC)
            until = datetime.combine(self.until.data, time(), UTC) + timedelta(days=1)
            return Window(since, until, versions)
        hours = HOURS.get(self.period.data or "", HOURS["7d"])
        until = hour_of(now) + timedelta(hours=1)
        return Window(until - timedelta(hours=hours), until, versions)

    def trend_by(self, window: Window, now: datetime) -> str:
        if self.granularity.data in ("hour", "day"):
            return str(self.granularity.data)
        since = window.since or now - timedelta(days=30)
        return "hour" if (window.until or now) - since <= MAX_HOURLY else "day"
