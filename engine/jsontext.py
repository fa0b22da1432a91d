"""JSON text for the database: documents written in bulk and the JSON columns.

orjson writes the same text as the standard library for what the engine stores (datetimes as
ISO 8601 with their offset, enums as their values, keys that are numbers as text) several
times faster; a value it refuses (an integer wider than 64 bits, say) goes through the standard
library, which either writes it or raises TypeError as before.
"""

from __future__ import annotations

import enum
import json
from datetime import datetime
from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS


def _standard(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    raise TypeError(f"{type(value).__name__} is not a column value")


def dumps(value: Any) -> str:
    """`value` as compact JSON text."""
    try:
        return orjson.dumps(value, option=_OPTIONS).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"), default=_standard)
