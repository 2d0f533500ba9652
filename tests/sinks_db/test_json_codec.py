"""rcetl.json_dumps / json_loads: orjson's speed without its limits (ids keep their exact type)."""

from __future__ import annotations

import json

import pytest

import rcetl

AWKWARD = [
    {"id": 2**64},  # beyond what orjson encodes
    {"id": -(2**63) - 1},
    {"id": 2**63},  # inside orjson's unsigned range
    {"name": "\udc80 lone surrogate"},
    {"name": "caf\u00e9 \U0001f600", "n": [1, 2.5, None, True]},
    {"digits": "12345678901234567890123"},  # a long digit run inside a string
]


@pytest.mark.parametrize("value", AWKWARD)
def test_round_trip_keeps_every_value_and_type(value) -> None:
    text = rcetl.json_dumps(value)
    assert isinstance(text, str)
    back = rcetl.json_loads(text)
    assert back == value
    assert [type(v) for v in back.values()] == [type(v) for v in value.values()]
    assert rcetl.json_loads(text.encode("utf-8", "surrogatepass")) == value
    assert json.loads(text) == value  # valid JSON for any other reader
    assert rcetl.json_dumps(value) == text  # deterministic


def test_big_ints_in_text_from_elsewhere_stay_ints() -> None:
    # orjson alone would return floats here (1.8446744073709552e+19), silently changing an id.
    assert rcetl.json_loads('{"a":18446744073709551616,"b":-9223372036854775809}') == {
        "a": 18446744073709551616, "b": -9223372036854775809}


def test_output_is_compact() -> None:
    assert rcetl.json_dumps({"a": [1, {"b": "c"}]}) == '{"a":[1,{"b":"c"}]}'
