"""orjson's speed, the standard library's values: integers beyond 64 bits stay exact."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

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


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(JSON_VALUES)
def test_any_json_reads_as_the_standard_library_reads_it(value: object) -> None:
    text = json.dumps(value)
    expected = json.loads(text)
    for data in (text, text.encode(), bytearray(text.encode())):
        read = exact_json.loads(data)
        assert read == expected and json.dumps(read) == text  # same types, same digits
