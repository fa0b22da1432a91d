"""ISO 8601 durations (`PT10M`, `P1D`, `-P3D`), parsed by isodate."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import isodate


class DurationError(ValueError):
    """Text that is not an ISO 8601 duration, with a sentence saying so."""


def parse(text: object, allow_negative: bool = False, allow_zero: bool = False) -> Any:
    """A timedelta (or isodate Duration, for months and years) for `text`."""
    if not isinstance(text, str) or not text.strip():
        raise DurationError("give a duration such as PT10M (10 minutes), PT2H or P1D")
    try:
        value = isodate.parse_duration(text.strip())
    except (isodate.ISO8601Error, ValueError):
        raise DurationError(
            f"{text!r} is not an ISO 8601 duration; write e.g. PT10M (10 minutes), PT2H or P1D"
        ) from None
    probe = datetime(2000, 1, 1)
    shifted = probe + value
    if shifted < probe and not allow_negative:
        raise DurationError(f"{text!r} is negative; give a duration after the moment")
    if shifted == probe and not allow_zero:
        raise DurationError(f"{text!r} is zero; give a duration longer than that")
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
