"""wait_until: hold the run until a time of day in the customer's time zone, or a date trait."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine import durations
from engine.language import rules
from engine.language.nodes import (
    Channels,
    CheckContext,
    Config,
    NodeType,
    Outcome,
    RunContext,
    _checks,
    _words,
    register,
)

CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def _clock(value: Any) -> time | None:
    found = CLOCK.match(value) if isinstance(value, str) else None
    return time(int(found.group(1)), int(found.group(2))) if found else None


def _zone(name: Any) -> tzinfo:
    if isinstance(name, str) and name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return UTC


def next_time_of_day(
    now: datetime, at: time, zone: tzinfo, weekdays: list[int] | None
) -> datetime:
    """The first moment after `now` that is `at` o'clock in `zone` on an allowed day (strictly
    after, so a loop back through this node always waits)."""
    local = now.astimezone(zone)
    for days in range(0, 8):
        day = local.date() + timedelta(days=days)
        candidate = datetime.combine(day, at, tzinfo=zone)
        if candidate > local and (not weekdays or candidate.isoweekday() in weekdays):
            return candidate.astimezone(UTC)
    raise AssertionError("a week always holds an allowed weekday")


def after_quiet_hours(
    moment: datetime, quiet: dict[str, str] | None, zone: tzinfo
) -> datetime:
    """`moment`, or the end of the quiet hours (e.g. 21:00-08:00 local) that contain it."""
    if not quiet:
        return moment
    start, end = _clock(quiet.get("start")), _clock(quiet.get("end"))
    if start is None or end is None:
        return moment
    local = moment.astimezone(zone)
    now_t = local.time()
    inside = start <= now_t < end if start < end else (now_t >= start or now_t < end)
    if not inside:
        return moment
    day = local.date() if now_t < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=zone).astimezone(UTC)


DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _days(weekdays: Any) -> str:
    """` on Mon–Fri`, ` on weekends`, ` on Mon, Wed`, or nothing for every day."""
    if not isinstance(weekdays, list):
        return ""
    days = sorted({d for d in weekdays if isinstance(d, int) and 1 <= d <= 7})
    if not days or len(days) == 7:
        return ""
    if days == [6, 7]:
        return " on weekends"
    if len(days) > 2 and days == list(range(days[0], days[-1] + 1)):
        return f" on {DAY_NAMES[days[0] - 1]}–{DAY_NAMES[days[-1] - 1]}"
    return " on " + ", ".join(DAY_NAMES[d - 1] for d in days)


@register
class WaitUntil(NodeType):
    type_name = "wait_until"
    label = "Wait until"
    help = "Waits for a time of day in the customer's time zone, or for a date in their profile."
    fields = {
        "time": "HH:MM in the customer's time zone",
        "weekdays": "allowed days, 1 (Monday) to 7 (Sunday)",
        "timezone_trait": "trait holding the customer's IANA time zone (default: timezone)",
        "trait": "trait holding a date or date-time",
        "offset": "ISO 8601 duration added to the trait's date, may be negative",
        "quiet_hours": "{start, end} HH:MM local: a wake-up inside is moved to the end",
    }
    waits = True

    def check(self, config: Config, ctx: CheckContext) -> list[tuple[str, str]]:
        problems = _checks.unknown_keys(config, self.fields)
        by_time, by_trait = "time" in config, "trait" in config
        if by_time == by_trait:
            return [
                *problems,
                (
                    "time",
                    "wait either until a time of day or until a date trait: choose one",
                ),
            ]
        if by_time:
            if _clock(config["time"]) is None:
                problems.append(("time", "write the time as HH:MM, e.g. 09:00"))
            weekdays = config.get("weekdays")
            if weekdays is not None and (
                not isinstance(weekdays, list)
                or not weekdays
                or any(isinstance(d, bool) or d not in range(1, 8) for d in weekdays)
            ):
                problems.append(
                    (
                        "weekdays",
                        "choose the days of the week, or none for every day",
                    )
                )
            problems += _checks.text(
                config, "timezone_trait", "the time zone trait", required=False
            )
            problems += _checks.unknown_keys(
                config, set(self.fields) - {"trait", "offset"}
            )
        else:
            problems += _checks.text(config, "trait", "the date trait")
            if "offset" in config:
                problems += _checks.duration(
                    config, "offset", "the offset", allow_negative=True, allow_zero=True
                )
            problems += _checks.unknown_keys(
                config, {"trait", "offset", "quiet_hours", "timezone_trait"}
            )
        quiet = config.get("quiet_hours")
        if quiet is not None and (
            not isinstance(quiet, dict)
            or _clock(quiet.get("start")) is None
            or _clock(quiet.get("end")) is None
        ):
            problems.append(
                (
                    "quiet_hours",
                    "give quiet hours as a start and an end time, e.g. 21:00 and 08:00",
                )
            )
        return problems

    def summary(self, config: Config, channels: Channels) -> str:
        if "trait" in config:
            trait = _words.name(config.get("trait"))
            offset = config.get("offset")
            if isinstance(offset, str) and durations.in_words(offset) not in (
                "",
                "no time",
            ):
                side = "before" if durations.is_negative(offset) else "after"
                text = f"Wait until {durations.in_words(offset)} {side} {trait}"
            else:
                text = f"Wait until {trait}"
        else:
            clock = config.get("time") if _clock(config.get("time")) else _words.BLANK
            text = f"Wait until {clock} their time{_days(config.get('weekdays'))}"
        quiet = config.get("quiet_hours")
        if (
            isinstance(quiet, dict)
            and _clock(quiet.get("start"))
            and _clock(quiet.get("end"))
        ):
            text += f", not {quiet['start']}–{quiet['end']}"
        return text

    def _target(self, ctx: RunContext) -> tuple[datetime | None, str]:
        config = ctx.config
        traits = ctx.scope.get("customer", {}).get("traits", {}) or {}
        zone = _zone(traits.get(config.get("timezone_trait", "timezone")))
        if "time" in config:
            at = _clock(config["time"])
            assert at is not None
            wake = next_time_of_day(ctx.now, at, zone, config.get("weekdays"))
            reason = f"until {config['time']} {getattr(zone, 'key', 'UTC')}"
        else:
            raw = traits.get(config["trait"])
            instant = rules.instant(raw)
            if instant is None:
                return (
                    None,
                    f"trait {config['trait']} holds no date ({raw!r}); going on",
                )
            wake = durations.add(instant, config.get("offset", "PT0S"))
            reason = f"until {config['trait']} {config.get('offset', '')}".rstrip()
        wake = after_quiet_hours(wake, config.get("quiet_hours"), zone)
        if wake <= ctx.now:
            return None, f"{reason}: that moment has passed; going on"
        return wake, reason

    def run(self, ctx: RunContext) -> Outcome:
        if ctx.resume is not None:
            return Outcome(port="out", detail={"reason": "the awaited time came"})
        wake, reason = self._target(ctx)
        if wake is None:
            return Outcome(port="out", detail={"reason": reason})
        return Outcome(
            wake_at=wake, detail={"reason": reason, "wake_at": wake.isoformat()}
        )
