"""The journey document: the only definition of its shape, parsing, export, validation and
upgrades between schema versions. See docs/journey-format.md."""

from engine.language.graph.document import (
    DESCRIPTION_LENGTH,
    NAME_LENGTH,
    REENTRY,
    SCHEMA,
    Document,
    DocumentError,
    Edge,
    Entry,
    EventRule,
    Node,
    Problem,
)
from engine.language.graph.reading import UPGRADES, parse, to_dict, upgrade
from engine.language.graph.validation import check, length_problems, validate

__all__ = [
    "DESCRIPTION_LENGTH",
    "NAME_LENGTH",
    "REENTRY",
    "SCHEMA",
    "UPGRADES",
    "Document",
    "DocumentError",
    "Edge",
    "Entry",
    "EventRule",
    "Node",
    "Problem",
    "check",
    "length_problems",
    "parse",
    "to_dict",
    "upgrade",
    "validate",
]
