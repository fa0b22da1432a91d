"""Delivery: the calls the engine makes to channels and webhook nodes, durably.

A delivery is a row written with the step that asked for it; a drain claims due rows
(claim), makes each call (sender), and records what came of it, resuming the run that waits
on it (settle); a breaker per channel (breaker) stops calls to a channel that keeps failing.
A delivery's id is the `webhook-id` of every attempt, so a retry is never a second effect at
a channel that dedupes; consent, channel state and the breaker are checked at send time, and
every suppression and failure keeps its reason. This module holds their shared vocabulary: the reasons a delivery did not happen, what a claim
carries and what an attempt gives.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from engine.models import Channel, Delivery

log = logging.getLogger("throughline.delivery")
LEASE = timedelta(seconds=60)
WEBHOOKS = 0  # the drain partition of webhook-node calls (they have no channel)
# Reasons a delivery did not happen; the channel ones let the node's fallback channel try.
CONSENT, DISABLED, NO_URL, BREAKER, PERMANENT, EXHAUSTED, BLOCKED = (
    "consent_withdrawn", "channel_disabled", "no_outbound_url", "breaker_open",
    "permanent_4xx", "retries_exhausted", "blocked_address",
)  # fmt: skip
CHANNEL_REASONS = {DISABLED, NO_URL, BREAKER, PERMANENT, EXHAUSTED, BLOCKED}
# Reasons of the brand-wide policies (engine.policies): the send was never made.
FREQUENCY_CAP, GLOBAL_HOLDOUT = "frequency_cap", "global_holdout"
# Each reason in words, wherever a page shows why a delivery was not made.
REASON_WORDS = {
    CONSENT: "consent withdrawn for this channel",
    DISABLED: "the channel is disabled",
    NO_URL: "the channel has no action URL",
    BREAKER: "the channel kept failing, so calls to it are paused",
    PERMANENT: "the channel refused it (a 4xx answer)",
    EXHAUSTED: "no attempt succeeded before the deadline",
    BLOCKED: "calls go only to public addresses and listed private networks",
    FREQUENCY_CAP: "a frequency cap across all journeys was reached",
    GLOBAL_HOLDOUT: "the customer is in the global holdout",
}


def reason_words(reason: str | None) -> str:
    """Why a delivery was not made, in words (an unknown reason as it is)."""
    return REASON_WORDS.get(reason or "", reason or "")


TEST = "test"  # the kind of a delivery an admin sends to try a channel


@dataclass(frozen=True)
class Claimed:
    """A delivery claimed for one attempt, with what the attempt needs to know."""

    id: str
    kind: str
    attempts: int
    body: dict[str, Any]
    headers: dict[str, str]
    url: str | None
    channel_id: int | None
    channel_slug: str | None
    channel_enabled: bool
    secret: str | None
    consent: bool
    deadline_at: datetime | None
    # Where the delivery is counted, and what settling it may have to do beyond its row.
    journey_id: int | None = None
    version_id: int = 0
    node_id: str | None = None
    run_id: int | None = None
    holds_run: bool = False
    fallback_channel: str | None = None
    is_fallback: bool = False
    # The trace context of the event that caused it (engine.tracing).
    traceparent: str | None = None
    # When its row was written: the time `deliveries` is partitioned by, which finds the row
    # in one partition when it is settled.
    created_at: datetime | None = None

    @property
    def involved(self) -> bool:
        """Whether settling it may resume its run or try its fallback channel: then its row is
        read and settled one by one, else with the rest of its batch in one statement."""
        return self.holds_run or bool(self.fallback_channel and not self.is_fallback)


@dataclass(frozen=True)
class Outcome:
    """delivered, retry, postpone (breaker open: not an attempt), failed or suppressed."""

    status: str
    reason: str | None = None
    response_status: int | None = None
    latency_ms: int | None = None
    error: str | None = None


def new_test_delivery(channel: Channel, now: datetime) -> Delivery:
    """A signed test action for `channel`, tried once by the channel's normal drain.

    Its deadline is its creation time, so a failure is final at the first attempt instead
    of being retried for a day.
    """
    return Delivery(
        channel_id=channel.id,
        kind=TEST,
        payload={
            "body": {
                "test": True,
                "journey": None,
                "node": None,
                "customer": None,
                "message": {"text": "A test action from Throughline; ignore it."},
                "context": {},
            },
            "channel": channel.slug,
        },
        next_attempt_at=now,
        deadline_at=now,
        created_at=now,
    )
