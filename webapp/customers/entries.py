"""Timeline entries as the profile page shows them: kind, channel, time, one line, details."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.audit import action_words
from engine.delivery import reason_words
from engine.journeys import summaries
from engine.models import Channel, Journey, JourneyVersion

STATUS_WORDS = {
    "delivered": "Delivered",
    "failed": "Failed",
    "suppressed": "Suppressed",
    "pending": "Sending",
}


@dataclass(frozen=True)
class Entry:
    kind: str  # event, step, delivery, profile: the CSS modifier and icon
    label: str  # the kind in words, with the status where it matters
    tone: str  # good, bad, muted or plain: the badge colour
    source: str  # the channel (or journey, or person) it came from or went to
    source_kind: str  # channel kind for the icon: web, email, ..., journey, person
    at: datetime
    summary: str
    details: str  # pretty JSON, shown folded
    trace_id: str | None = None  # of the event that caused it (engine.tracing)


def _short(values: dict[str, Any], limit: int = 3) -> str:
    parts = [
        f"{key}={json.dumps(value) if isinstance(value, dict | list) else value}"
        for key, value in list(values.items())[:limit]
    ]
    more = len(values) - limit
    return ", ".join(parts) + (f" and {more} more" if more > 0 else "")


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


class Presenter:
    """Turns timeline items into entries, knowing the channels and journeys by id."""

    def __init__(self, session: Session, items: Iterable[dict[str, Any]]) -> None:
        items = list(items)
        self.channels = {c.id: c for c in session.scalars(select(Channel))}
        journey_ids = {i["journey_id"] for i in items if i.get("journey_id")}
        self.journeys = {
            journey_id: name
            for journey_id, name in session.execute(
                select(Journey.id, Journey.name).where(Journey.id.in_(journey_ids))
            )
        }
        self.items = items
        # Steps are named as the version the customer was on drew them; a delivery by the
        # same step as a step of that journey on this page.
        version_ids = {i["version_id"] for i in items if i.get("version_id")}
        self.steps: dict[int, dict[str, summaries.StepName]] = {}
        self.steps_of_journey: dict[int, dict[str, summaries.StepName]] = {}
        channel_names = {c.slug: c.name for c in self.channels.values()}
        for version_id, journey_id, document in session.execute(
            select(
                JourneyVersion.id, JourneyVersion.journey_id, JourneyVersion.document
            ).where(JourneyVersion.id.in_(version_ids))
        ):
            named = summaries.step_names(document, channel_names)
            self.steps[version_id] = named
            self.steps_of_journey.setdefault(journey_id, {}).update(named)

    def entries(self) -> list[Entry]:
        return [self.entry(item) for item in self.items]

    def _channel(self, channel_id: int | None) -> tuple[str, str]:
        channel = self.channels.get(channel_id) if channel_id else None
        if channel is None:
            return "a removed channel", "other"
        return channel.name, channel.kind.value

    def _journey(self, item: dict[str, Any]) -> str:
        return self.journeys.get(item.get("journey_id") or 0, "a deleted journey")

    def entry(self, item: dict[str, Any]) -> Entry:
        at = datetime.fromisoformat(item["at"])
        build = getattr(self, "_" + item["kind"])
        built: Entry = build(item, at)
        return built

    def _event(self, item: dict[str, Any], at: datetime) -> Entry:
        source, source_kind = self._channel(item["channel_id"])
        summary = item["type"]
        if item["properties"]:
            summary += f" · {_short(item['properties'])}"
        if item["traits"]:
            summary += f" · traits {_short(item['traits'])}"
        tone, label = "plain", "Event in"
        if item["status"] == "failed":
            tone, label = "bad", "Event failed"
            summary += f" · not applied: {item.get('error') or 'unknown error'}"
        elif item["status"] == "pending":
            tone, label = "muted", "Event queued"
        details = {
            k: item.get(k)
            for k in (
                "event_id",
                "occurred_at",
                "properties",
                "traits",
                "error",
                "trace_id",
            )
        }
        return Entry(
            "event",
            label,
            tone,
            source,
            source_kind,
            at,
            summary,
            _pretty(details),
            item.get("trace_id"),
        )

    def _step(self, item: dict[str, Any], at: datetime) -> Entry:
        step = self.steps.get(item.get("version_id") or 0, {}).get(item["node"])
        if step is not None:
            summary = f"{step.title}: {step.summary} → {item['outcome']}"
        else:
            summary = f"{item['node']} ({item['type']}) → {item['outcome']}"
        if item.get("reason"):
            summary += f": {item['reason']}"
        tone = "bad" if item["outcome"] in {"failed", "error"} else "plain"
        return Entry(
            "step",
            "Step",
            tone,
            self._journey(item),
            "journey",
            at,
            summary,
            _pretty(
                {
                    "run_id": item["run_id"],
                    **(item.get("detail") or {}),
                    "trace_id": item.get("trace_id"),
                }
            ),
            item.get("trace_id"),
        )

    def _delivery(self, item: dict[str, Any], at: datetime) -> Entry:
        if item.get("action") == "webhook":
            source, source_kind = "Webhook", "webhook"
        else:
            source, source_kind = self._channel(item["channel_id"])
        status = item["status"]
        step = self.steps_of_journey.get(item.get("journey_id") or 0, {}).get(
            item.get("node") or ""
        )
        node = step.title if step is not None else item.get("node")
        where = f"{self._journey(item)} › {node}" if node else ""
        if status == "suppressed":
            reason = reason_words(item.get("reason"))
            summary = f"Not sent: {reason}"
        elif status == "failed":
            summary = f"Failed after {item['attempts']} attempt(s): " + (
                reason_words(item.get("reason"))
                or item.get("last_error")
                or "no answer"
            )
        elif status == "delivered":
            summary = "Sent"
        else:
            summary = f"Waiting to be sent ({item['attempts']} attempt(s) so far)"
        if item.get("message"):
            summary += f" · {_short(item['message'], 2)}"
        if where:
            summary += f" · from {where}"
        if item.get("fallback_of"):
            summary += " · fallback"
        tone = {"delivered": "good", "failed": "bad", "suppressed": "warn"}.get(
            status, "muted"
        )
        details = {
            k: item.get(k)
            for k in (
                "delivery_id",
                "status",
                "reason",
                "attempts",
                "response_status",
                "last_error",
                "fallback_of",
                "message",
                "trace_id",
            )
            if item.get(k) is not None
        }
        return Entry(
            "delivery",
            STATUS_WORDS.get(status, status),
            tone,
            source,
            source_kind,
            at,
            summary,
            _pretty(details),
            item.get("trace_id"),
        )

    def _profile(self, item: dict[str, Any], at: datetime) -> Entry:
        detail = item.get("detail") or {}
        action = item["action"]
        summary = action_words(action)
        if action == "customer.consent":
            changes = detail.get("changes") or {}
            summary += ": " + ", ".join(
                f"{slug} {'allowed' if allowed else 'withdrawn'}"
                for slug, allowed in changes.items()
            )
        elif action == "customer.merge":
            merged = ", ".join(f"#{n}" for n in detail.get("merged") or [])
            summary += f": {merged} joined this profile"
        summary += f" · by {item['actor']}"
        return Entry(
            "profile", "Profile", "plain", item["actor"], "person", at, summary,
            _pretty(detail),
        )  # fmt: skip
