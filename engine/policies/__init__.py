"""Brand-wide policies: the rules above every journey's sends.

One document holds them (each part optional):

    {"frequency_caps": [{"channels": ["email", "sms"], "max": 3, "per": "P7D"}],
     "quiet_hours": {"start": "21:00", "end": "08:00", "channels": ["sms", "app"],
                     "timezone_trait": "timezone"},
     "global_holdout": {"percent": 5}}

- A frequency cap counts the deliveries a customer was sent (or is about to be) on its channels
  over a sliding window, across all journeys; a send past it is not made, recorded as
  `suppressed` with reason `frequency_cap`.
- Quiet hours, in the customer's time zone (the trait named; UTC when missing), hold a send on
  their channels until they end; the run waits like a timer.
- The global holdout is a stable share of customers (by a hash of the profile id, which a merge
  keeps) who get no send from any journey, each recorded with reason `global_holdout`.

A send node marked `transactional` (a receipt, a password reset) is untouched by all of them,
and is not counted against a cap. This module reads and checks the document and decides for one
send; `engine.policies.gate` counts in SQL for live runs, `engine.policies.store` keeps the
document.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine import durations
from engine.delivery import FREQUENCY_CAP, GLOBAL_HOLDOUT
from engine.language.nodes.wait_until import after_quiet_hours

QUIET_HOURS, THROTTLE = "quiet_hours", "throttle"
LONGEST_WINDOW = timedelta(days=90)  # deliveries are counted over at most this long
MOST_HELD_OUT = 50  # percent
CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
TRAIT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class PolicyError(ValueError):
    """A document that cannot be the policies, with every problem by field."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{field}: {text}" for field, text in problems))
        self.problems = problems


@dataclass(frozen=True)
class FrequencyCap:
    channels: tuple[str, ...]
    max: int
    per: str  # ISO 8601, as written
    window: timedelta

    def words(self) -> str:
        window = durations.in_words(self.per)
        window = window[2:] if window.startswith("1 ") else window  # "per day"
        return (
            f"{self.max} {'message' if self.max == 1 else 'messages'} on "
            f"{' or '.join(self.channels)} per {window}"
        )


@dataclass(frozen=True)
class QuietHours:
    start: str
    end: str
    channels: tuple[str, ...]
    timezone_trait: str = "timezone"

    def words(self) -> str:
        return f"{self.start}-{self.end} on {', '.join(self.channels)}"


@dataclass(frozen=True)
class Policies:
    frequency_caps: tuple[FrequencyCap, ...] = ()
    quiet_hours: QuietHours | None = None
    holdout_percent: float = 0.0
    revision: int = 0

    @property
    def empty(self) -> bool:
        return (
            not self.frequency_caps
            and self.quiet_hours is None
            and not self.holdout_percent
        )

    def caps_of(self, channel: str) -> list[tuple[int, FrequencyCap]]:
        """The caps that count sends on `channel`, with their place in the document."""
        return [
            (index, cap)
            for index, cap in enumerate(self.frequency_caps)
            if channel in cap.channels
        ]


NONE = Policies()


def _text_list(
    value: Any,
    where: str,
    problems: list[tuple[str, str]],
    known: frozenset[str] | None,
) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        problems.append((where, "give a list of one or more channel slugs"))
        return ()
    found: list[str] = []
    for index, slug in enumerate(value):
        if not isinstance(slug, str) or not slug:
            problems.append((f"{where}[{index}]", "a channel slug is text"))
        elif known is not None and slug not in known:
            problems.append((f"{where}[{index}]", f"there is no channel {slug!r}"))
        elif slug not in found:
            found.append(slug)
    return tuple(found)


def _unknown(
    value: dict[str, Any],
    allowed: set[str],
    where: str,
    problems: list[tuple[str, str]],
) -> None:
    for key in sorted(set(value) - allowed):
        path = f"{where}.{key}" if where else key
        problems.append((path, f"unknown field; allowed: {', '.join(sorted(allowed))}"))


def _caps(
    value: Any, problems: list[tuple[str, str]], known: frozenset[str] | None
) -> tuple[FrequencyCap, ...]:
    if not isinstance(value, list):
        problems.append(("frequency_caps", "give a list of caps"))
        return ()
    caps = []
    for index, item in enumerate(value):
        where = f"frequency_caps[{index}]"
        if not isinstance(item, dict):
            problems.append((where, "a cap is an object {channels, max, per}"))
            continue
        _unknown(item, {"channels", "max", "per"}, where, problems)
        channels = _text_list(
            item.get("channels"), f"{where}.channels", problems, known
        )
        most = item.get("max")
        if isinstance(most, bool) or not isinstance(most, int) or most < 1:
            problems.append(
                (f"{where}.max", "give a whole number of messages, 1 or more")
            )
            most = None
        window = None
        try:
            parsed = durations.parse(item.get("per"))
            window = parsed if isinstance(parsed, timedelta) else None
            if window is None:
                problems.append(
                    (f"{where}.per", "give the window in days, hours or minutes (P7D)")
                )
            elif window > LONGEST_WINDOW:
                problems.append((f"{where}.per", "give a window of at most 90 days"))
                window = None
        except durations.DurationError as error:
            problems.append((f"{where}.per", str(error)))
        if channels and most is not None and window is not None:
            caps.append(FrequencyCap(channels, most, str(item["per"]).strip(), window))
    return tuple(caps)


def _quiet(
    value: Any, problems: list[tuple[str, str]], known: frozenset[str] | None
) -> QuietHours | None:
    if not isinstance(value, dict):
        problems.append(("quiet_hours", "give an object {start, end, channels}"))
        return None
    _unknown(
        value, {"start", "end", "channels", "timezone_trait"}, "quiet_hours", problems
    )
    clocks = {}
    for name in ("start", "end"):
        text = value.get(name)
        if not isinstance(text, str) or not CLOCK.match(text):
            problems.append(
                (f"quiet_hours.{name}", "give a time of day as HH:MM (21:00)")
            )
        else:
            clocks[name] = text
    if len(clocks) == 2 and clocks["start"] == clocks["end"]:
        problems.append(("quiet_hours.end", "the end must differ from the start"))
    channels = _text_list(
        value.get("channels"), "quiet_hours.channels", problems, known
    )
    trait = value.get("timezone_trait", "timezone")
    if not isinstance(trait, str) or not TRAIT.match(trait):
        problems.append(
            (
                "quiet_hours.timezone_trait",
                "give the name of a trait (letters, digits, _)",
            )
        )
        trait = "timezone"
    if len(clocks) < 2 or not channels or clocks["start"] == clocks["end"]:
        return None
    return QuietHours(clocks["start"], clocks["end"], channels, trait)


def _holdout(value: Any, problems: list[tuple[str, str]]) -> float:
    if not isinstance(value, dict):
        problems.append(("global_holdout", "give an object {percent}"))
        return 0.0
    _unknown(value, {"percent"}, "global_holdout", problems)
    percent = value.get("percent")
    if (
        isinstance(percent, bool)
        or not isinstance(percent, int | float)
        or not 0 <= percent <= MOST_HELD_OUT
    ):
        problems.append(
            (
                "global_holdout.percent",
                f"give a share from 0 to {MOST_HELD_OUT} percent",
            )
        )
        return 0.0
    return float(percent)


def parse(
    document: Any, channels: frozenset[str] | None = None, revision: int = 0
) -> Policies:
    """The policies a document states; PolicyError naming every problem by field.

    `channels`: the slugs that exist (None: do not check them)."""
    if not isinstance(document, dict):
        raise PolicyError(
            [("", "send an object {frequency_caps?, quiet_hours?, global_holdout?}")]
        )
    problems: list[tuple[str, str]] = []
    _unknown(
        document, {"frequency_caps", "quiet_hours", "global_holdout"}, "", problems
    )
    caps = (
        _caps(document["frequency_caps"], problems, channels)
        if document.get("frequency_caps") is not None
        else ()
    )
    quiet = (
        _quiet(document["quiet_hours"], problems, channels)
        if document.get("quiet_hours") is not None
        else None
    )
    percent = (
        _holdout(document["global_holdout"], problems)
        if document.get("global_holdout") is not None
        else 0.0
    )
    if problems:
        raise PolicyError(problems)
    return Policies(caps, quiet, percent, revision)


def document_of(policies: Policies) -> dict[str, Any]:
    """The document of `policies`, as the API gives it back."""
    found: dict[str, Any] = {}
    if policies.frequency_caps:
        found["frequency_caps"] = [
            {"channels": list(cap.channels), "max": cap.max, "per": cap.per}
            for cap in policies.frequency_caps
        ]
    if policies.quiet_hours is not None:
        quiet = policies.quiet_hours
        found["quiet_hours"] = {
            "start": quiet.start,
            "end": quiet.end,
            "channels": list(quiet.channels),
            "timezone_trait": quiet.timezone_trait,
        }
    if policies.holdout_percent:
        percent = policies.holdout_percent
        found["global_holdout"] = {
            "percent": int(percent) if percent.is_integer() else percent
        }
    return found


def holdout_bucket(profile_id: int) -> int:
    """Where a profile falls in 0..9999, the same in every process and after a merge (which
    keeps one of the merged profiles' ids)."""
    digest = hashlib.sha256(f"holdout\x1f{profile_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000


def held_out(policies: Policies, profile_id: int | None) -> bool:
    """Whether the profile is in the global holdout."""
    if not policies.holdout_percent or profile_id is None:
        return False
    return holdout_bucket(profile_id) < round(policies.holdout_percent * 100)


def zone_of(traits: dict[str, Any], trait: str) -> ZoneInfo | None:
    name = traits.get(trait)
    if isinstance(name, str) and name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            return None
    return None


@dataclass(frozen=True)
class Suppressed:
    """The send is not made, for `reason` (a delivery reason), said in `words`."""

    reason: str
    words: str


@dataclass(frozen=True)
class Held:
    """The send waits until `until` (then its step runs again), said in `words`."""

    reason: str
    until: datetime
    words: str


Verdict = Suppressed | Held | None  # None: send


class Counts(Protocol):
    """How many sends a customer was given on some channels since a moment."""

    def sent(self, index: int, cap: FrequencyCap, since: datetime) -> int: ...

    def add(self, channel: str) -> None: ...


class Throttle(Protocol):
    """A journey's send limit: `most` a minute, each send given the minute it may go in."""

    most: int

    def slot(self, now: datetime) -> datetime:
        """The start of the first minute from now's with room, taken for this send."""
        ...


def decide(
    policies: Policies,
    channel: str,
    profile_id: int | None,
    traits: dict[str, Any],
    now: datetime,
    counts: Counts | None,
    throttle: Throttle | None = None,
    held: str | None = None,
) -> Verdict:
    """What the policies say of one non-transactional send on `channel` now: held out,
    held for quiet hours, capped, held for its journey's send limit, or (None) sent, which
    `counts` then counts. `held`: why the run was held at this send before (a run held for
    the send limit already has its minute)."""
    if held_out(policies, profile_id):
        return Suppressed(
            GLOBAL_HOLDOUT,
            f"not sent: the customer is in the global holdout "
            f"({policies.holdout_percent:g}% of customers get no journey's messages)",
        )
    quiet = policies.quiet_hours
    if quiet is not None and channel in quiet.channels:
        zone = zone_of(traits, quiet.timezone_trait)
        until = after_quiet_hours(
            now, {"start": quiet.start, "end": quiet.end}, zone or ZoneInfo("UTC")
        )
        if until > now:
            place = zone.key if zone is not None else "UTC"
            return Held(
                QUIET_HOURS,
                until,
                f"held for quiet hours until {quiet.end} {place}",
            )
    if counts is not None:
        for index, cap in policies.caps_of(channel):
            if counts.sent(index, cap, now - cap.window) >= cap.max:
                return Suppressed(
                    FREQUENCY_CAP, f"not sent: frequency cap of {cap.words()} reached"
                )
    if throttle is not None and held != THROTTLE:
        slot = throttle.slot(now)
        if slot > now:
            return Held(
                THROTTLE,
                slot,
                f"held by the journey's send limit ({throttle.most} a minute) "
                f"until {slot:%H:%M} UTC",
            )
    if counts is not None:
        counts.add(channel)
    return None


@dataclass
class MinuteSlots:
    """A send limit kept in memory (a simulation): sends given each minute."""

    most: int
    taken: dict[datetime, int] = field(default_factory=dict)

    def slot(self, now: datetime) -> datetime:
        minute = now.replace(second=0, microsecond=0)
        while self.taken.get(minute, 0) >= self.most:
            minute += timedelta(minutes=1)
        self.taken[minute] = self.taken.get(minute, 0) + 1
        return max(minute, now)


@dataclass
class Remembered:
    """Counts kept in memory (a simulation): the sends made so far, by channel and time."""

    now: datetime | None = None
    made: list[tuple[str, datetime]] = field(default_factory=list)

    def sent(self, index: int, cap: FrequencyCap, since: datetime) -> int:
        return sum(1 for ch, at in self.made if ch in cap.channels and at > since)

    def add(self, channel: str) -> None:
        if self.now is not None:
            self.made.append((channel, self.now))
