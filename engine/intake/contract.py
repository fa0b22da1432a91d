"""The inbound event contract: what a channel may post, checked field by field."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

MAX_TYPE_LENGTH = 200
MAX_IDENTIFIER_LENGTH = 320
KNOWN_IDENTIFIERS = ("id", "email", "phone", "anonymous_id")
IDENTIFIER_KIND = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
TOP_LEVEL = {"type", "customer", "traits", "properties", "occurred_at"}
# The span of `occurred_at` taken by default: an event older than this or more than a day
# ahead of the clock is a channel's mistake (a zero date, a date in milliseconds).
EARLIEST_OCCURRED_AT = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_AHEAD = timedelta(days=1)
# Which identifier decides a customer's partition when an event carries several.
PARTITION_PREFERENCE = KNOWN_IDENTIFIERS


class EventError(ValueError):
    """An event that breaks the contract; `field` names the part at fault.

    The sentence says why without repeating the value sent: refusals are kept for the
    channel's health figures, and a refused value may be personal data.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class IncomingEvent:
    type: str
    identifiers: tuple[tuple[str, str], ...]
    traits: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)
    occurred_at: datetime | None = None


def normalize_identifier(kind: str, value: str) -> str:
    value = value.strip()
    return value.lower() if kind == "email" else value


def _identifiers(customer: Any, prefix: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(customer, dict) or not customer:
        raise EventError(
            f"{prefix}customer",
            "customer must be an object with at least one identifier: id, email, phone or anonymous_id",
        )
    found = []
    for kind, value in customer.items():
        where = f"{prefix}customer.{kind}"
        if not IDENTIFIER_KIND.match(kind):
            raise EventError(
                where, "identifier names are lower-case letters, digits and _"
            )
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            raise EventError(where, f"{kind} must be non-empty text")
        if len(value) > MAX_IDENTIFIER_LENGTH:
            raise EventError(
                where, f"{kind} is longer than {MAX_IDENTIFIER_LENGTH} characters"
            )
        if kind == "email" and "@" not in value:
            raise EventError(where, f"{kind} is not an email address (it has no @)")
        found.append((kind, normalize_identifier(kind, value)))
    return tuple(found)


def parse_event(
    body: Any,
    prefix: str = "",
    earliest: datetime = EARLIEST_OCCURRED_AT,
    now: datetime | None = None,
) -> IncomingEvent:
    """Check an event body against the contract; raise EventError naming the first bad field.

    `occurred_at` must lie between `earliest` and a day after `now` (the clock by default).
    """
    if not isinstance(body, dict):
        raise EventError(prefix.rstrip(".") or "body", "an event is a JSON object")
    unknown = sorted(set(body) - TOP_LEVEL)
    if unknown:
        raise EventError(
            f"{prefix}{unknown[0]}", f"{unknown[0]!r} is not part of an event"
        )
    kind = body.get("type")
    if not isinstance(kind, str) or not kind.strip():
        raise EventError(
            f"{prefix}type",
            "type is required: the name of what happened, e.g. cart_abandoned",
        )
    if len(kind) > MAX_TYPE_LENGTH:
        raise EventError(
            f"{prefix}type", f"type is longer than {MAX_TYPE_LENGTH} characters"
        )
    identifiers = _identifiers(body.get("customer"), prefix)
    for name in ("traits", "properties"):
        if name in body and not isinstance(body[name], dict):
            raise EventError(f"{prefix}{name}", f"{name} must be an object")
    occurred_at = None
    if body.get("occurred_at") is not None:
        raw = body["occurred_at"]
        try:
            occurred_at = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
            if occurred_at.tzinfo is None:
                occurred_at = occurred_at.replace(tzinfo=UTC)
            # In UTC: 0001-01-01T00:00+01:00 has no UTC time and fails here, not on storing.
            occurred_at = occurred_at.astimezone(UTC)
        except (ValueError, OverflowError):
            raise EventError(
                f"{prefix}occurred_at",
                "occurred_at must be an ISO 8601 date-time, e.g. 2026-11-21T10:00:00Z",
            ) from None
        latest = (now or datetime.now(UTC)) + LATEST_AHEAD
        if not earliest <= occurred_at <= latest:
            raise EventError(
                f"{prefix}occurred_at",
                f"occurred_at must lie between {earliest:%Y-%m-%d} and a day from now;"
                " send the moment the event happened, in ISO 8601 with its offset",
            )
    return IncomingEvent(
        type=kind.strip(),
        identifiers=identifiers,
        traits=dict(body.get("traits") or {}),
        properties=dict(body.get("properties") or {}),
        occurred_at=occurred_at,
    )


def partition_for(identifiers: tuple[tuple[str, str], ...], partitions: int) -> int:
    """The partition of the customer an event names, from its preferred identifier.

    A customer's events stay in one partition (and so in order) while channels name them by
    the same preferred identifier; profile locks keep them correct when they do not.
    """
    ranked = sorted(
        identifiers,
        key=lambda pair: (
            PARTITION_PREFERENCE.index(pair[0])
            if pair[0] in PARTITION_PREFERENCE
            else len(PARTITION_PREFERENCE),
            pair,
        ),
    )
    kind, value = ranked[0]
    digest = hashlib.blake2b(f"{kind}:{value}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions
