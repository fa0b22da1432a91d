"""What to look at before publishing a journey: the mistakes that only show once customers are in.

None of these stops a publish (the document is valid); each is a sentence for the marketer with
what it concerns, so the page can link to it: sends through a channel that cannot deliver, another
live journey that starts on the same event, no goal, and sends with no fallback through a channel
whose breaker stopped deliveries lately.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.analytics import queries
from engine.analytics.counters import Metric
from engine.analytics.queries import Window
from engine.journeys import summaries
from engine.language import templates
from engine.models import Channel, Journey, JourneyStatus, JourneyVersion
from engine.schemas import fields
from engine.schemas import store as schema_store

LOOK_BACK = timedelta(days=7)


@dataclass(frozen=True)
class Warning:
    """One thing to check: `kind` says what (channel, same_trigger, goal, breaker, template, schema)."""

    kind: str
    message: str
    node: str | None = None  # the step it concerns
    channel: str | None = None  # the channel's slug
    journey_id: int | None = None  # the other journey


def _nodes(document: Any) -> list[dict[str, Any]]:
    raw = document.get("nodes") if isinstance(document, dict) else None
    return [n for n in raw if isinstance(n, dict)] if isinstance(raw, list) else []


def _trigger_event(document: Any) -> str | None:
    for node in _nodes(document):
        if node.get("type") == "trigger":
            event = (node.get("config") or {}).get("event")
            return event if isinstance(event, str) and event else None
    return None


def _sends(document: Any) -> list[tuple[str, str, str | None]]:
    """(node id, channel slug, fallback slug) of every send."""
    found = []
    for node in _nodes(document):
        config = node.get("config") or {}
        if node.get("type") == "send" and isinstance(config.get("channel"), str):
            fallback = config.get("fallback_channel")
            found.append(
                (
                    str(node.get("id")),
                    config["channel"],
                    fallback if isinstance(fallback, str) and fallback else None,
                )
            )
    return found


def _channel_warnings(
    session: Session, document: Any, names: dict[str, summaries.StepName]
) -> list[Warning]:
    sends = _sends(document)
    slugs = {
        slug for _, channel, fallback in sends for slug in (channel, fallback) if slug
    }
    channels = {
        c.slug: c
        for c in session.scalars(select(Channel).where(Channel.slug.in_(slugs)))
    }
    found = []
    for node_id, slug, fallback in sends:
        step = names.get(node_id)
        where = f"“{step.title}” ({step.summary})" if step else node_id
        for used in (slug, fallback):
            channel = channels.get(used) if used else None
            if channel is None:
                continue
            if not channel.enabled:
                problem = "is disabled, so its messages are not sent"
            elif not channel.outbound_url:
                problem = "has no action URL, so every message to it is suppressed"
            else:
                continue
            found.append(
                Warning(
                    "channel",
                    f"{where} sends through {channel.name}, which {problem}.",
                    node=node_id,
                    channel=channel.slug,
                )
            )
    return found


def _same_trigger(
    session: Session, journey: Journey, event: str | None, now: datetime
) -> list[Warning]:
    if event is None:
        return []
    found = []
    others = session.execute(
        select(Journey, JourneyVersion.document)
        .join(
            JourneyVersion,
            (JourneyVersion.journey_id == Journey.id)
            & (JourneyVersion.number == Journey.live_version),
        )
        .where(Journey.status == JourneyStatus.live, Journey.id != journey.id)
        .order_by(Journey.name)
    ).all()
    window = Window(since=now - LOOK_BACK, until=None)
    for other, document in others:
        if _trigger_event(document) != event:
            continue
        caught = sum(
            queries.totals(session, other.id, window, (Metric.ENTERED,)).values()
        )
        found.append(
            Warning(
                "same_trigger",
                f"“{other.name}” is live and also starts when {event} arrives: it took in "
                f"{caught} customer{'' if caught == 1 else 's'} in the last 7 days, and each "
                "such customer would enter this journey too, unless the two triggers' "
                "conditions tell them apart.",
                journey_id=other.id,
            )
        )
    return found


def _breaker_warnings(
    session: Session,
    document: Any,
    names: dict[str, summaries.StepName],
    now: datetime,
) -> list[Warning]:
    """Sends without a fallback through a channel whose breaker held deliveries lately."""
    window = Window(since=now - LOOK_BACK, until=None)
    held = queries.by_channel(session, Metric.REASON, "breaker_open", window)
    statement = select(Channel.id, Channel.slug, Channel.name)
    channels = {slug: (cid, name) for cid, slug, name in session.execute(statement)}
    found = []
    for node_id, slug, fallback in _sends(document):
        channel_id, name = channels.get(slug, (None, slug))
        if fallback or channel_id is None or not held.get(channel_id):
            continue
        step = names.get(node_id)
        where = f"“{step.title}” ({step.summary})" if step else node_id
        found.append(
            Warning(
                "breaker",
                f"{where} has no fallback channel, and {name} failed often enough in the "
                f"last 7 days that {held[channel_id]} deliveries were held back: a "
                "fallback would reach those customers another way.",
                node=node_id,
                channel=slug,
            )
        )
    return found


# Where each node type keeps its templates: config keys holding {field: template}.
TEMPLATE_FIELDS = {
    "send": ("message",),
    "webhook": ("body", "headers"),
    "update_profile": ("set",),
}


def template_warnings(
    node: dict[str, Any], step: summaries.StepName | None
) -> list[Warning]:
    """A name in one of the step's templates that would always render empty, with the name it
    probably meant (`customer.first_name` for `customer.traits.first_name`). With `step`, the
    sentence starts by naming it (for a list of every step's warnings)."""
    config = node.get("config") or {}
    where = f"“{step.title}” ({step.summary}): " if step else ""
    found = []
    for key in TEMPLATE_FIELDS.get(str(node.get("type")), ()):
        fields = config.get(key) if isinstance(config, dict) else None
        for field, source in fields.items() if isinstance(fields, dict) else ():
            for name, meant in templates.unknown_names(source):
                found.append(
                    Warning(
                        "template",
                        f"{where}{{{{ {name} }}}} in “{field}” is always empty; did you "
                        f"mean {{{{ {meant} }}}}?",
                        node=str(node.get("id")),
                    )
                )
    return found


def schema_warnings(
    session: Session,
    document: Any,
    node_id: str | None = None,
    names: dict[str, summaries.StepName] | None = None,
) -> list[Warning]:
    """A property a step reads that its event's schema does not name (of one step, or of
    every step, each sentence then naming its step)."""
    found = []
    for gap in fields.missing(document, schema_store.every(session)):
        if node_id is not None and gap.node != node_id:
            continue
        step = (names or {}).get(gap.node)
        where = f"“{step.title}” ({step.summary}): " if step else ""
        found.append(Warning("schema", where + gap.message, node=gap.node))
    return found


def before_publishing(
    session: Session, journey: Journey, now: datetime
) -> list[Warning]:
    """Everything worth a look before the draft goes live, most harmful first."""
    document = journey.draft
    names = summaries.named_steps(session, document)
    found = [
        warning
        for node in _nodes(document)
        for warning in template_warnings(node, names.get(str(node.get("id"))))
    ]
    found += schema_warnings(session, document, names=names)
    found += _channel_warnings(session, document, names)
    found += _same_trigger(session, journey, _trigger_event(document), now)
    if not (isinstance(document, dict) and document.get("goal")):
        found.append(
            Warning(
                "goal",
                "The journey has no goal, so its conversions, time to goal and the uplift "
                "of a holdout cannot be measured. Set one in the journey's settings.",
            )
        )
    found += _breaker_warnings(session, document, names, now)
    return found
