"""The filters of the analytics pages: a GET form, read from the query string."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from wtforms import DateField, SelectChoice, SelectField
from wtforms.validators import Optional

from engine.analytics.counters import HOURLY_FOR, hour_of
from engine.analytics.queries import Window
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
MAX_HOURLY = HOURLY_FOR
EARLIEST, LATEST = date(2000, 1, 1), date(9999, 1, 1)


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

    def validate(self, extra_validators: Any = None) -> bool:
        """Field checks, then the range: both dates for "Dates below", in order, not absurd."""
        valid = bool(super().validate(extra_validators))
        if self.period.data != "custom" or self.since.errors or self.until.errors:
            return valid
        if self.since.data is None or self.until.data is None:
            missing = self.until if self.since.data is not None else self.since
            missing.errors = [
                *missing.errors,
                "give both dates, or choose a period above",
            ]
            return False
        if self.until.data < self.since.data:
            self.until.errors = [
                *self.until.errors,
                "the end date is before the start date",
            ]
            return False
        if self.until.data >= LATEST or self.since.data < EARLIEST:
            self.until.errors = [
                *self.until.errors,
                f"dates run from {EARLIEST.year} to {LATEST.year - 1}",
            ]
            return False
        return valid

    def window(self, now: datetime, version_ids: dict[str, int]) -> Window:
        """The counters the figures cover; call `validate` first (a bad range falls back to
        the last 7 days, and the page shows why)."""
        versions = (
            (version_ids[self.version.data],)
            if self.version.data in version_ids
            else ()
        )
        if self.period.data == "all":
            return Window(version_ids=versions)
        if (
            self.period.data == "custom"
            and not self.errors
            and self.since.data is not None
            and self.until.data is not None
        ):
            since = datetime.combine(self.since.data, time(), UTC)
            until = datetime.combine(self.until.data, time(), UTC) + timedelta(days=1)
            return Window(since, until, versions)
        hours = HOURS.get(self.period.data or "", HOURS["7d"])
        until = hour_of(now) + timedelta(hours=1)
        return Window(until - timedelta(hours=hours), until, versions)

    def trend_by(self, window: Window, now: datetime) -> str:
        """Hours while hourly figures are kept (two days); days beyond, or when asked."""
        if self.granularity.data == "day":
            return "day"
        hourly_from = hour_of(now) - HOURLY_FOR
        since = window.since or now - timedelta(days=30)
        if since < hourly_from:
            return "day"  # older hours are folded into days
        if self.granularity.data == "hour":
            return "hour"
        return "hour" if (window.until or now) - since <= MAX_HOURLY else "day"

    def query(self) -> dict[str, str]:
        """The filters as query-string arguments, for links that keep them."""
        return {
            name: str(value)
            for name in ("period", "since", "until", "version", "granularity")
            if (
                value := getattr(self, name).raw_data
                and getattr(self, name).raw_data[0]
            )
        }
