"""The JSON text written for the database is the standard library's, only faster."""

import enum
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from engine import jsontext


class Status(enum.Enum):
    pending = "pending"


def standard(value):
    def default(item):
        if isinstance(item, datetime):
            return item.isoformat()
        if isinstance(item, enum.Enum):
            return item.value
        raise TypeError(type(item).__name__)

    return json.dumps(value, separators=(",", ":"), default=default)


@pytest.mark.parametrize(
    "value",
    [
        [
            {
                "id": 1,
                "at": datetime(2026, 12, 5, 13, 0, tzinfo=UTC),
                "status": Status.pending,
            }
        ],
        {
            "at": datetime(
                2026, 12, 5, 13, 0, 1, 250, tzinfo=timezone(timedelta(hours=2))
            )
        },
        {"naive": datetime(2026, 1, 2, 3, 4, 5), "text": "Thanks Ada ✓", "none": None},
        {"nested": {"list": [1, 2.5, True, False, "x"]}, "empty": {}},
    ],
)
def test_the_text_is_the_standard_librarys(value):
    assert json.loads(jsontext.dumps(value)) == json.loads(standard(value))
    # the same text, but for text other than ASCII, written as itself instead of escaped
    assert jsontext.dumps(value) == standard(value).encode().decode("unicode_escape")


def test_numbers_json_cannot_hold_are_written_as_null():
    assert jsontext.dumps([float("nan"), float("inf")]) == "[null,null]"


def test_numbers_as_keys_are_written_as_text():
    assert jsontext.dumps({1: "a"}) == '{"1":"a"}'


def test_an_integer_wider_than_64_bits_goes_through_the_standard_library():
    assert jsontext.dumps({"n": 2**70}) == '{"n":1180591620717411303424}'


def test_a_value_no_column_holds_is_refused():
    with pytest.raises(TypeError):
        jsontext.dumps({"what": object()})
