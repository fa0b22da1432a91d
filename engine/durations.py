"""ISO 8601 durations (`PT10M`, `P1D`, `-P3D`), parsed by isodate."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import isodate

# Longer waits are a typo, and moments that far off overflow a date.
LONGEST = timedelta(days=100 * 365)


class DurationError(ValueError):
    """Text that is not an ISO 8601 duration, with a sentence saying so."""


def parse(text: object, allow_negative: bool = False, allow_zero: bool = False) -> Any:
    """A timedelta (or isodate Duration, for months and years) for `text`."""
    if not isinstance(text, str) or not text.strip():
        raise DurationError("give a length of time, e.g. 10 minutes, 2 hours or 1 day")
    try:
        value = isodate.parse_duration(text.strip())
    except OverflowError:
        raise DurationError(
            f"{text!r} is too long; give at most {LONGEST.days // 365} years"
        ) from None
    except (isodate.ISO8601Error, ValueError):
        raise DurationError(
            f"“{text}” cannot be read as a length of time; set it in the step's form "
            "(a journey document writes durations in ISO 8601)"
        ) from None
    probe = datetime(2000, 1, 1)
    try:
        shifted = probe + value
    except (OverflowError, ValueError):
        shifted = datetime.max
    if abs(shifted - probe) > LONGEST:
        raise DurationError(
            f"{text!r} is too long; give at most {LONGEST.days // 365} years"
        )
    if shifted < probe and not allow_negative:
        raise DurationError("it is negative; give a length of time after the moment")
    if shifted == probe and not allow_zero:
        raise DurationError("it is zero; give a longer time")
    return value


def add(moment: datetime, text: str) -> datetime:
    """`moment` moved by the duration `text` (which must be valid)."""
    result: datetime = moment + parse(text, allow_negative=True, allow_zero=True)
    return result


def as_timedelta(text: str) -> timedelta:
    """An approximate timedelta (a month is 30 days), for comparisons and display."""
    value = parse(text, allow_negative=True, allow_zero=True)
    if isinstance(value, timedelta):
        return value
    probe = datetime(2000, 1, 1)
    delta: timedelta = (probe + value) - probe
    return delta


_UNITS = (
    ("year", 365 * 86400),
    ("month", 30 * 86400),
    ("week", 7 * 86400),
    ("day", 86400),
    ("hour", 3600),
    ("minute", 60),
    ("second", 1),
)


def _count(number: int, unit: str) -> str:
    return f"{number} {unit}{'' if number == 1 else 's'}"


def in_words(text: object) -> str:
    """`PT90M` as "1 hour 30 minutes", `P3D` as "3 days"; the text itself if it is no duration.

    A negative duration reads as its length ("-P3D" is "3 days"): the caller says before or
    after. Weeks are named only when the days divide evenly into them.
    """
    if not isinstance(text, str):
        return ""
    try:
        value = parse(text, allow_negative=True, allow_zero=True)
    except DurationError:
        return text
    parts: list[str] = []
    if not isinstance(value, timedelta):  # isodate's Duration: years and months by name
        years, months = abs(int(value.years)), abs(int(value.months))
        parts += [_count(years, "year")] if years else []
        parts += [_count(months, "month")] if months else []
        value = value.tdelta
    seconds = abs(int(value.total_seconds()))
    for unit, size in _UNITS[2:]:
        if unit == "week" and seconds % size:
            continue
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(_count(amount, unit))
    return " ".join(parts) if parts else "no time"


def is_negative(text: str) -> bool:
    """Whether the (valid) duration `text` points back in time."""
    return text.strip().startswith("-")
