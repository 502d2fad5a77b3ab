"""orjson's speed, the standard library's values: integers beyond 64 bits stay exact."""

from __future__ import annotations

import json

import pytest

from pylive import exact_json

BIG = 2**64  # one past the largest integer orjson reads as an integer


@pytest.mark.parametrize(
    "value",
    [
        {"n": BIG},
        {"n": -BIG, "f": 0.25},  # a float beside it: orjson would have rounded the integer
        [BIG + 1, 1.5, {"deep": [10**30]}],
        {"plain": "text", "i": 2**63 - 1, "list": [1, 2, 3]},
        1e300,
    ],
)
def test_values_read_and_written_are_the_standard_librarys(value: object) -> None:
    text = json.dumps(value)
    assert exact_json.loads(text) == json.loads(text)
    assert exact_json.loads(text.encode()) == json.loads(text)
    assert json.loads(exact_json.dumps(value)) == value


def test_what_is_not_json_is_refused() -> None:
    for text in ("NaN", "[Infinity]", "{", ""):
        with pytest.raises(ValueError):
            exact_json.loads(text)


def test_a_lone_surrogate_is_written_as_an_escape() -> None:
    assert exact_json.dumps({"s": "\ud800"}) == b'{"s":"\\ud800"}'
