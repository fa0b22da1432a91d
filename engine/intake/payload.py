"""What JSON from outside may hold: only what every database can store and every page show.

A body is read once with `loads`, which refuses what Python's parser would take but storage
would not (NaN and Infinity, numbers too large, keys given twice, nesting that exhausts the
parser), then `check` walks it for the rest: nesting deeper than `MAX_DEPTH`, NUL characters
and lone surrogates (PostgreSQL refuses the first, no page can encode the second), keys over
`MAX_KEY_LENGTH` characters and more than `MAX_KEYS` keys in all. Each refusal names the path
of the value at fault, e.g. `properties.items[3].sku`.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 32
MAX_KEY_LENGTH = 200
MAX_KEYS = 500
# Integers beyond a signed 64-bit number fit no database column and no JSON reader elsewhere.
LARGEST_INTEGER = 2**63 - 1
# Longer digit strings are refused before Python converts them (its own limit is 4,300).
_MAX_DIGITS = 20
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class PayloadError(ValueError):
    """JSON that cannot be taken in; `field` is the path of the value at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class _Refused:
    """A value the parser met that `check` refuses, with its place found on the walk."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


class _Repeated(dict[str, Any]):
    """An object in which a key appeared more than once."""

    repeated = ""


def _constant(name: str) -> _Refused:
    return _Refused(f"{name} is not a number JSON allows; send a finite number")


def _integer(text: str) -> int | _Refused:
    if len(text.lstrip("-")) > _MAX_DIGITS or abs(int(text)) > LARGEST_INTEGER:
        return _Refused(
            "the number is too large; integers must lie within ±9223372036854775807"
        )
    return int(text)


def _float(text: str) -> float | _Refused:
    value = float(text)
    if math.isinf(value):
        return _Refused("the number is too large to store; send a smaller one")
    return value


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) == len(pairs):
        return found
    repeated = _Repeated(found)
    seen: set[str] = set()
    for key, _value in pairs:
        if key in seen:
            repeated.repeated = key
            break
        seen.add(key)
    return repeated


def loads(text: str | bytes, max_keys: int | None = MAX_KEYS) -> Any:
    """Parse JSON text and `check` it; PayloadError (a ValueError) says what is wrong where.

    Text that is not JSON at all raises json.JSONDecodeError as `json.loads` does.
    """
    value = parse(text)
    check(value, max_keys=max_keys)
    return value


def parse(text: str | bytes) -> Any:
    """Parse JSON text, leaving what `check` refuses in place for it to find with its path.

    For a body whose parts are judged apart (a batch of events): `check` each part.
    """
    try:
        value = json.loads(
            text,
            parse_constant=_constant,
            parse_int=_integer,
            parse_float=_float,
            object_pairs_hook=_object,
        )
    except RecursionError:
        raise PayloadError(
            "body", f"the JSON is nested too deeply; at most {MAX_DEPTH} levels"
        ) from None
    return value


def _join(path: str, key: str) -> str:
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key, ensure_ascii=True)}]"


def _where(path: str) -> str:
    return path or "body"


def check(value: Any, path: str = "", max_keys: int | None = MAX_KEYS) -> None:
    """Raise PayloadError for the first value (depth first) that cannot be taken in.

    `max_keys` bounds the keys of the whole value (None: a document such as a journey,
    bounded by its own rules).
    """
    keys = 0
    # An explicit stack instead of recursion: the walk itself never runs out of frames.
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, _Refused):
            raise PayloadError(_where(where), item.message)
        if isinstance(item, str):
            if _UNSTORABLE.search(item):
                raise PayloadError(_where(where), _unstorable_text(item, "text"))
            continue
        if isinstance(item, float) and not math.isfinite(item):
            raise PayloadError(
                _where(where), "NaN and Infinity are not numbers JSON allows"
            )
        if isinstance(item, int) and not isinstance(item, bool):
            if abs(item) > LARGEST_INTEGER:
                raise PayloadError(
                    _where(where),
                    "the number is too large; integers must lie within ±9223372036854775807",
                )
            continue
        if not isinstance(item, (dict, list)):
            continue
        if depth >= MAX_DEPTH:
            raise PayloadError(
                _where(where),
                f"the JSON is nested too deeply; at most {MAX_DEPTH} levels",
            )
        if isinstance(item, list):
            stack.extend(
                (member, f"{where}[{index}]", depth + 1)
                for index, member in reversed(list(enumerate(item)))
            )
            continue
        if isinstance(item, _Repeated):
            raise PayloadError(
                _join(where, item.repeated),
                f"the key {item.repeated!r} appears twice in one object; send it once",
            )
        keys += len(item)
        if max_keys is not None and keys > max_keys:
            raise PayloadError(
                _where(where), f"too many keys; at most {max_keys} in one body"
            )
        children = []
        for key, member in item.items():
            if not isinstance(key, str):
                raise PayloadError(_where(where), "object keys must be text")
            if _UNSTORABLE.search(key):
                raise PayloadError(_where(where), _unstorable_text(key, "a key"))
            if len(key) > MAX_KEY_LENGTH:
                raise PayloadError(
                    _where(where),
                    f"a key is longer than {MAX_KEY_LENGTH} characters",
                )
            children.append((member, _join(where, key), depth + 1))
        stack.extend(reversed(children))


def _unstorable_text(text: str, what: str) -> str:
    if "\x00" in text:
        return f"{what} holds a NUL character (\\u0000), which cannot be stored"
    return f"{what} holds a lone surrogate (half of a UTF-16 pair), which is not valid Unicode"


def scrub(text: str) -> str:
    """`text` with NUL characters and lone surrogates replaced by U+FFFD, for showing it."""
    return _UNSTORABLE.sub("\ufffd", text) if _UNSTORABLE.search(text) else text


def scrubbed(value: Any) -> Any:
    """A copy of a JSON value with every string and key scrubbed; what `check` refuses null."""
    if isinstance(value, _Refused) or (
        isinstance(value, int) and abs(value) > LARGEST_INTEGER
    ):
        return None
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [scrubbed(member) for member in value]
    if isinstance(value, dict):
        return {scrub(str(key)): scrubbed(member) for key, member in value.items()}
    return value
