"""What execution reads once: the parsed documents of published versions (cached, since a
version never changes), the live journeys by trigger, a version's journey, the channels."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import transaction
from engine.language import graph
from engine.models import (
    Channel,
    Journey,
    JourneyStatus,
    JourneyVersion,
)

_documents: dict[int, graph.Document] = {}


def document_of(session: Session, version_id: int) -> graph.Document:
    """The parsed document of a published version (versions never change, so it is cached)."""
    found = _documents.get(version_id)
    if found is None:
        version = session.get(JourneyVersion, version_id)
        if version is None:
            raise LookupError(f"journey version {version_id} is gone")
        found = graph.parse(version.document)
        if len(_documents) > 5000:
            _documents.clear()
        _documents[version_id] = found
    return found


def forget_documents() -> None:
    """Empty the cache of parsed versions (for a process that switches databases)."""
    _documents.clear()


@dataclass(frozen=True)
class LiveJourney:
    journey_id: int
    name: str
    version_id: int
    number: int
    document: graph.Document


def live_journeys(session: Session) -> dict[str, list[LiveJourney]]:
    """Live journeys by the event type of their trigger."""
    rows = session.execute(
        select(Journey.id, Journey.name, JourneyVersion.id, JourneyVersion.number)
        .join(
            JourneyVersion,
            (JourneyVersion.journey_id == Journey.id)
            & (JourneyVersion.number == Journey.live_version),
        )
        .where(Journey.status == JourneyStatus.live)
    )
    found: dict[str, list[LiveJourney]] = {}
    for journey_id, name, version_id, number in rows:
        document = document_of(session, version_id)
        event = str(document.trigger().config.get("event"))
        found.setdefault(event, []).append(
            LiveJourney(journey_id, name, version_id, number, document)
        )
    return found


def journey_of(
    session: Session, version_id: int
) -> tuple[JourneyStatus | None, str, int]:
    """The status and name of a version's journey and the version's number, read once per
    transaction (a sweep advances hundreds of runs of the same few versions)."""
    known = transaction.of(session).versions_read
    found = known.get(version_id)
    if found is None:
        row = session.execute(
            select(Journey.status, Journey.name, JourneyVersion.number)
            .join(JourneyVersion, JourneyVersion.journey_id == Journey.id)
            .where(JourneyVersion.id == version_id)
        ).first()
        found = (row[0], row[1], row[2]) if row else (None, "", 0)
        known[version_id] = found
    return found


def channels_by_slug(session: Session) -> dict[str, Channel]:
    """Channels by slug, read once per transaction (a batch of engine work)."""
    state = transaction.of(session)
    found = state.channels_by_slug
    if found is None:
        found = {c.slug: c for c in session.scalars(select(Channel))}
        state.channels_by_slug = found
    return found
