"""JSON text for the database: the documents the engine writes in bulk (`engine.bulk`).

orjson writes what the standard library writes for the values rows hold (datetimes as ISO 8601
with their offset, enums as their values, keys that are numbers as text; text other than ASCII
as itself rather than escaped, the same to PostgreSQL), several times faster. Where the two
differ: NaN and the infinities, which JSON cannot hold and PostgreSQL refused, are written as
null; dates, times and UUIDs are written as text where the standard library raised TypeError. A
value orjson refuses (an integer wider than 64 bits, say) goes through the standard library.
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
