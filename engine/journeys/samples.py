"""Examples for the designer: field names seen in recent data, and a sample customer and event.

Everything here reads a bounded sample (the most recent rows), never a whole table, so it
stays cheap however many customers and events are stored.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import demo
from engine.intake.contract import KNOWN_IDENTIFIERS
from engine.models import Channel, Customer, Event
from engine.profiles import identity
from engine.schemas import store as schema_store

SAMPLE_SIZE = 500  # rows read per question
SCAN_WINDOW = 50_000  # only events among the latest this many are looked at
MAX_KEYS = 200  # names returned per question
MAX_DEPTH = 3  # nested objects are named down to a.b.c


@dataclass(frozen=True)
class FieldHint:
    """A field a rule or template can name, with a word on where it comes from."""

    path: str
    note: str


@dataclass(frozen=True)
class Sample:
    """The names a template sees for a sample customer, and who that customer is."""

    scope: dict[str, Any]
    label: str


def _names(value: Mapping[str, Any], prefix: str = "", depth: int = 1) -> Iterator[str]:
    for key, item in value.items():
        if not isinstance(key, str) or not key or "." in key:
            continue
        yield prefix + key
        if isinstance(item, Mapping) and depth < MAX_DEPTH:
            yield from _names(item, f"{prefix}{key}.", depth + 1)


def _most_common(mappings: Iterable[Any]) -> list[str]:
    """Key paths of the mappings, the most frequent first, then by name."""
    counts: Counter[str] = Counter()
    for mapping in mappings:
        if isinstance(mapping, Mapping):
            counts.update(set(_names(mapping)))
    ranked = sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))
    return [name for name, _count in ranked[:MAX_KEYS]]


def trait_keys(session: Session, limit: int = SAMPLE_SIZE) -> list[str]:
    """Trait names (nested ones as a.b) of the most recently created customers."""
    rows = session.scalars(
        select(Customer.traits)
        .where(Customer.merged_into_id.is_(None))
        .order_by(Customer.id.desc())
        .limit(limit)
    )
    return _most_common(rows)


def _recent_events(event_type: str) -> Any:
    """Events of a type among the latest SCAN_WINDOW, newest first."""
    newest = select(func.max(Event.id)).scalar_subquery()
    return (
        select(Event)
        .where(Event.type == event_type, Event.id > newest - SCAN_WINDOW)
        .order_by(Event.id.desc())
    )


def property_keys(
    session: Session, event_type: str, limit: int = SAMPLE_SIZE
) -> list[str]:
    """Property names (nested ones as a.b) of the latest events of `event_type`."""
    statement = _recent_events(event_type).with_only_columns(Event.payload).limit(limit)
    return _most_common(
        payload.get("properties") if isinstance(payload, Mapping) else None
        for payload in session.scalars(statement)
    )


def field_suggestions(
    session: Session,
    trigger_event: str | None,
    event_types: Iterable[str] = (),
    limit: int = SAMPLE_SIZE,
) -> list[FieldHint]:
    """Fields a rule can test, from what recent customers and events carried.

    Args:
        trigger_event: the journey's trigger event type (names `trigger.properties.*`).
        event_types: the types `event` can be where the rule is evaluated (the trigger's,
            an awaited event's); their properties are named as `event.properties.*`.
    """
    hints: dict[str, str] = {}

    def add(path: str, note: str) -> None:
        hints.setdefault(path, note)

    for kind in KNOWN_IDENTIFIERS:
        add(f"customer.{kind}", "identifier")
    for name in trait_keys(session, limit):
        add(f"customer.traits.{name}", "trait")
    types = list(dict.fromkeys(t for t in event_types if t))[:5]
    schemas = schema_store.every(session)

    def properties_of(event_type: str) -> list[str]:
        # The schema's properties first (the tracking plan), then what events carried.
        schema = schemas.get(event_type)
        named = schema.schema.get("properties") if schema is not None else None
        planned = list(named) if isinstance(named, dict) else []
        return [*planned, *property_keys(session, event_type, limit)]

    for event_type in types:
        for name in properties_of(event_type):
            add(f"event.properties.{name}", f"{event_type} property")
    if trigger_event:
        for name in properties_of(trigger_event):
            add(f"trigger.properties.{name}", f"{trigger_event} property")
    for name, note in (
        ("event.type", "event type"),
        ("event.channel", "channel the event came from"),
        ("event.occurred_at", "when the event happened"),
        ("customer.consent", "consent per channel"),
    ):
        add(name, note)
    return [FieldHint(path, note) for path, note in hints.items()]


def _sample_customer(
    session: Session, customer_id: int | None = None
) -> tuple[dict[str, Any], str]:
    chosen = session.get(Customer, customer_id) if customer_id else None
    if chosen is not None and chosen.merged_into_id is None:
        scope = identity.scope_of(session, chosen)
        return (
            scope,
            f"{scope.get('email') or scope.get('phone') or scope['id']} (#{chosen.id})",
        )
    customer = session.scalar(
        select(Customer)
        .where(Customer.merged_into_id.is_(None))
        .order_by(Customer.id.desc())
        .limit(1)
    )
    if customer is not None:
        scope = identity.scope_of(session, customer)
        return scope, f"the newest customer, {scope.get('email') or scope['id']}"
    spec = demo.CUSTOMERS[0]
    scope = {
        **{k: spec[k] for k in KNOWN_IDENTIFIERS if k in spec},
        "traits": copy.deepcopy(spec["traits"]),
        "consent": {},
    }
    return scope, "a sample customer (there are no customers yet)"


def _sample_event(session: Session, event_type: str | None) -> dict[str, Any]:
    if event_type:
        found = session.execute(
            _recent_events(event_type)
            .with_only_columns(Event, Channel.slug)
            .join(Channel, Channel.id == Event.channel_id)
            .limit(1)
        ).first()
        if found is not None:
            event, slug = found
            payload = event.payload if isinstance(event.payload, dict) else {}
            return {
                "id": event.id,
                "type": event.type,
                "channel": slug,
                "properties": payload.get("properties") or {},
                "traits": payload.get("traits") or {},
                "occurred_at": event.occurred_at.isoformat(),
            }
    properties = next(
        (copy.deepcopy(p) for _c, _r, kind, p in demo.EVENTS if kind == event_type), {}
    )
    return {"type": event_type or "", "properties": properties, "traits": {}}


def sample_scope(
    session: Session,
    trigger_event: str | None,
    traits: Mapping[str, Any] | None = None,
    customer_id: int | None = None,
) -> Sample:
    """What a template sees for a customer and the latest trigger event.

    The customer is the profile `customer_id` names (one the marketer picked), else the newest;
    with no customers yet, a sample profile from the demo data stands in. `traits`, when
    given, replace the customer's traits (the designer lets a marketer try other values).
    """
    customer, label = _sample_customer(session, customer_id)
    if traits is not None and dict(traits) != customer.get("traits"):
        customer["traits"] = copy.deepcopy(dict(traits))
        label += ", with the sample traits below"
    event = _sample_event(session, trigger_event)
    return Sample(
        scope={
            "trigger": event,
            "event": copy.deepcopy(event),
            "customer": customer,
            "context": {},
        },
        label=label,
    )
