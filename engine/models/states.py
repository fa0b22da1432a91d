"""Every state a row can be in: one enum per kind of row, each docstring saying what its
states mean."""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    """What a user may do; each role includes the ones before it.

    viewer: reads every page and the API. marketer: also edits, simulates, publishes and
    pauses journeys and changes customers. admin: also manages users, channels and secrets.
    """

    viewer = "viewer"
    marketer = "marketer"
    admin = "admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def includes(self, other: Role) -> bool:
        return self.rank >= other.rank


class ChannelKind(enum.StrEnum):
    """Where a channel meets customers; informs icons and defaults, never behaviour."""

    web = "web"
    app = "app"
    email = "email"
    sms = "sms"
    chat = "chat"
    store = "store"
    support = "support"
    other = "other"


class JourneyStatus(enum.StrEnum):
    """draft: never published. live: entries open. paused: no entries, runs held.
    archived: hidden from the default list, no entries, runs ended."""

    draft = "draft"
    live = "live"
    paused = "paused"
    archived = "archived"


class EventStatus(enum.StrEnum):
    """pending: stored, not yet applied. processed: applied to profiles and runs.
    failed: could not be applied (the error says why); kept for inspection."""

    pending = "pending"
    processed = "processed"
    failed = "failed"


class RunStatus(enum.StrEnum):
    """active: being advanced now. waiting: parked at a wait node until `wake_at` or an
    awaited event. completed: reached an exit or a node with no way out. exited: ended by
    an `exit_on` rule, an erasure or an archive. failed: stopped by an error."""

    active = "active"
    waiting = "waiting"
    completed = "completed"
    exited = "exited"
    failed = "failed"


# A run in flight is still inside its journey: it can be advanced, moved, exited or counted.
IN_FLIGHT = (RunStatus.active, RunStatus.waiting)


class MoveStatus(enum.StrEnum):
    """moving: a plan's runs are being moved, batch by batch. done: every run the plan names
    was moved (or had left its step before its turn)."""

    moving = "moving"
    done = "done"


class DeliveryStatus(enum.StrEnum):
    """pending: written, not yet attempted or waiting for a retry. delivered: the channel
    answered 2xx. failed: permanent error or retries exhausted. suppressed: not attempted,
    for the reason recorded (consent withdrawn, channel disabled, breaker open)."""

    pending = "pending"
    delivered = "delivered"
    failed = "failed"
    suppressed = "suppressed"
