"""Event schemas: a tracking plan of what each event type's `properties` hold.

A schema is a JSON Schema (draft 2020-12, checked by the `jsonschema` library) of an event's
`properties`, with a mode:

- `enforce`: an event that breaks it is refused (400 `schema_violation`, each problem with
  its JSON pointer) and kept in a quarantine for 7 days, to be replayed once the schema or
  the channel is fixed;
- `strip`: properties the schema does not name are removed and the rest is taken; what
  still breaks it is flagged;
- `flag`: the event is taken, and marked with its problems.

`channels` limits a schema to the events of some channels (empty: every channel). This
module reads documents, checks events and infers a draft schema from events seen; `store`
keeps schemas, versions and the quarantine in SQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from genson import SchemaBuilder
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

DIALECT = "https://json-schema.org/draft/2020-12/schema"
MODES = ("enforce", "strip", "flag")
MAX_PROBLEMS = 20  # reported per event
MAX_SCHEMA_BYTES = 64 * 1024

Problems = list[tuple[str, str]]


class SchemaDocumentError(ValueError):
    """A schema document that cannot be kept: each problem as (field, sentence)."""

    def __init__(self, problems: Problems) -> None:
        where, sentence = problems[0]
        super().__init__(f"{where}: {sentence}")
        self.problems = problems


@dataclass(frozen=True)
class EventSchema:
    event_type: str
    schema: Mapping[str, Any]
    mode: str = "enforce"
    channels: tuple[str, ...] = ()
    version: int = 0
    validator: Any = field(default=None, compare=False, repr=False)

    def applies_to(self, channel: str) -> bool:
        return not self.channels or channel in self.channels

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema": dict(self.schema),
            "mode": self.mode,
            "channels": list(self.channels),
        }


@dataclass(frozen=True)
class Problem:
    """One way an event breaks its schema: where (a JSON pointer into the event) and why."""

    pointer: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"pointer": self.pointer, "message": self.message}


@dataclass(frozen=True)
class Checked:
    """What a schema makes of an event: its properties as they are to be stored (stripped
    of unnamed ones in `strip` mode), the problems left, and whether it is refused."""

    properties: dict[str, Any]
    problems: tuple[Problem, ...] = ()
    refused: bool = False
    stripped: tuple[str, ...] = ()
    mode: str | None = None

    @property
    def flagged(self) -> bool:
        return bool(self.problems) and not self.refused


def parse(event_type: str, raw: Any, slugs: Iterable[str] | None = None) -> EventSchema:
    """A schema document read and checked (SchemaDocumentError naming each problem);
    `slugs`: the channels that exist, to check `channels` against."""
    problems: Problems = []
    if not isinstance(raw, Mapping):
        raise SchemaDocumentError(
            [("", 'send {"schema": {...}, "mode": "enforce" | "strip" | "flag"}')]
        )
    for extra in sorted(set(raw) - {"schema", "mode", "channels"}, key=str):
        problems.append((str(extra), f"“{extra}” is not part of an event schema"))
    mode = raw.get("mode", "enforce")
    if mode not in MODES:
        problems.append(("mode", "the mode is enforce, strip or flag"))
    channels = raw.get("channels", [])
    known = set(slugs) if slugs is not None else None
    if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
        problems.append(("channels", "channels are a list of channel slugs"))
        channels = []
    for index, slug in enumerate(channels):
        if known is not None and slug not in known:
            problems.append((f"channels[{index}]", f"there is no channel “{slug}”"))
    schema = raw.get("schema")
    if not isinstance(schema, Mapping):
        problems.append(("schema", "the schema is a JSON Schema object"))
    else:
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as error:
            pointer = "/".join(str(part) for part in error.absolute_path)
            where = f"schema/{pointer}" if pointer else "schema"
            problems.append((where, f"not a valid JSON Schema: {error.message}"))
        else:
            problems += _reference_problems(schema)
        if len(_dumps(schema)) > MAX_SCHEMA_BYTES:
            problems.append(
                ("schema", f"keep the schema under {MAX_SCHEMA_BYTES:,} bytes")
            )
    if problems:
        raise SchemaDocumentError(problems)
    assert isinstance(schema, Mapping)
    return compiled(
        EventSchema(event_type, dict(schema), str(mode), tuple(dict.fromkeys(channels)))
    )


def _references(value: Any, where: str = "schema") -> Iterable[tuple[str, str]]:
    if isinstance(value, Mapping):
        for key, member in value.items():
            if key in ("$ref", "$dynamicRef") and isinstance(member, str):
                yield f"{where}/{key}", member
            else:
                yield from _references(member, f"{where}/{key}")
    elif isinstance(value, list):
        for index, member in enumerate(value):
            yield from _references(member, f"{where}/{index}")


_BASE = "urn:throughline:event-schema"


def _reference_problems(schema: Mapping[str, Any]) -> Problems:
    """References must point inside the schema (`#/$defs/...`) and lead somewhere: a
    schema is never fetched from elsewhere."""
    found: Problems = []
    resolver = (
        Registry()
        .with_resource(_BASE, DRAFT202012.create_resource(dict(schema)))
        .resolver(base_uri=_BASE)
    )
    for where, reference in _references(schema):
        if not reference.startswith("#"):
            found.append(
                (where, "a reference points inside the schema, e.g. #/$defs/money")
            )
            continue
        try:
            resolver.lookup(reference)
        except Unresolvable:
            found.append(
                (where, f"the reference {reference} leads nowhere in the schema")
            )
    return found


def compiled(schema: EventSchema, version: int | None = None) -> EventSchema:
    """The schema with its validator made (once, when it is read)."""
    return EventSchema(
        schema.event_type,
        schema.schema,
        schema.mode,
        schema.channels,
        schema.version if version is None else version,
        # An empty registry: a reference is never fetched from the network.
        Draft202012Validator(schema.schema, registry=Registry()),
    )


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _pointer(path: Iterable[Any]) -> str:
    parts = [str(part).replace("~", "~0").replace("/", "~1") for part in path]
    return "/properties" + "".join(f"/{part}" for part in parts)


class Uncheckable(Exception):
    """The schema itself cannot check an event."""


def problems_of(
    schema: EventSchema, properties: Mapping[str, Any]
) -> tuple[Problem, ...]:
    """How `properties` break `schema`, first by where they are, at most MAX_PROBLEMS
    (Uncheckable when the schema itself cannot be used)."""
    try:
        found = sorted(
            schema.validator.iter_errors(properties),
            key=lambda error: (list(map(str, error.absolute_path)), error.message),
        )
    except Exception as error:  # a reference or a pattern the schema cannot use
        raise Uncheckable(type(error).__name__) from None
    return tuple(
        Problem(_pointer(error.absolute_path), error.message)
        for error in found[:MAX_PROBLEMS]
    )


def named(schema: Mapping[str, Any]) -> set[str] | None:
    """The properties a schema names at the top (None: it names none, so keeps all)."""
    properties = schema.get("properties")
    patterns = schema.get("patternProperties")
    if not isinstance(properties, Mapping) or patterns:
        return None
    return set(properties)


def check(schema: EventSchema | None, properties: Mapping[str, Any]) -> Checked:
    """What `schema` makes of an event's properties (no schema: taken as they are)."""
    if schema is None:
        return Checked(dict(properties))
    kept = dict(properties)
    stripped: tuple[str, ...] = ()
    if schema.mode == "strip":
        allowed = named(schema.schema)
        if allowed is not None:
            stripped = tuple(sorted(name for name in kept if name not in allowed))
            kept = {name: value for name, value in kept.items() if name in allowed}
    try:
        found = problems_of(schema, kept)
    except Uncheckable as error:
        # Taken and flagged, never refused: the schema is at fault, not the event.
        return Checked(
            kept,
            (Problem("/properties", f"the schema cannot check events ({error})"),),
            stripped=stripped,
            mode=schema.mode,
        )
    return Checked(
        kept,
        found,
        refused=bool(found) and schema.mode == "enforce",
        stripped=stripped,
        mode=schema.mode,
    )


def infer(samples: Iterable[Mapping[str, Any]]) -> dict[str, Any] | None:
    """A draft schema of the properties seen (types merged, required where always
    present), or None when there were no samples."""
    builder = SchemaBuilder(schema_uri=DIALECT)
    seen = 0
    for properties in samples:
        builder.add_object(dict(properties))
        seen += 1
    if not seen:
        return None
    schema: dict[str, Any] = builder.to_schema()
    schema.setdefault("type", "object")
    return schema


def dotted(pointer: str) -> str:
    """A JSON pointer as the dotted field name the rest of the API uses:
    `/properties/cart_value` -> `properties.cart_value`."""
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    return ".".join(parts)


def where(problems: tuple[Problem, ...]) -> str:
    """Where an event breaks its schema, by field names only (never a value it carried):
    “properties.cart_value and 1 more”."""
    first = dotted(problems[0].pointer) or "properties"
    more = len(problems) - 1
    return first + (f" and {more} more" if more else "")
