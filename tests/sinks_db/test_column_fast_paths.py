"""The SQL sink maps a batch column by column (plugins/sinks/sql/rows.py): each column function
decides its common case inline or for the whole column at once, and must give exactly what the
value-by-value function gives for every value, hostile ones included, in any mix."""

from __future__ import annotations

import itertools
from datetime import datetime, timezone

import pytest

import rcetl
from rcetl.plugins.sinks.sql.rows import (
    Rows,
    integer,
    integers,
    phone,
    phones,
    text,
    texts,
    timestamp,
    timestamps,
)

TEXTS = [None, "", "abc", "a\x00b", "\ud83d", "lone \udcde low", "José", "x" * 300, "y" * 255, 5, 0, True, False,
         {"a": 1}, [1], 1.5, "😀", "\ud83d\udcde"]
INTS = [None, 0, 5, -5, 2**63, -(2**63) - 1, 2**63 - 1, -(2**63), True, False, "123", "-4", " 7", "１２", "abc",
        1.0, "", "9" * 18, "9" * 19, "9" * 20, [3], {"id": 3}]
TIMES = [None, "2016-06-06T18:26:52.000Z", "2016-06-06T18:26:52.123Z", "2016-02-30T18:26:52.000Z",
         "2016-06-06T18:26:52Z", "2016-06-06T18:26:52.000+02:00", "2016-06-06T18:26+02:00Z", "not a time at all!!!!Z",
         "2016-06-06 18:26:52.000Z", 1465237612, "", "2016-06-06T18:26:52.000000Z"]
PHONES = [None, "+16505550102", "+10505550102", "+16505550102x", "+1650555010２", "(650) 555-0102", "+442071234567",
          "102", 16505550102, "", "+1 650 555 0102"]


def _typed(values: list) -> list:
    return [(type(v), v) for v in values]


@pytest.mark.parametrize("length", [None, 3, 255])
def test_texts_is_text_of_each_value(length: int | None) -> None:
    for a, b in itertools.product(TEXTS, repeat=2):
        values = [a, "ok", b]
        assert _typed(texts(list(values), length)) == _typed([text(v, length) for v in values]), values
    assert texts(["fine", None, "also fine"], 255) == ["fine", None, "also fine"]


def test_integers_is_integer_of_each_value() -> None:
    for a, b in itertools.product(INTS, repeat=2):
        values = [a, 1, b]
        assert _typed(integers(list(values))) == _typed([integer(v) for v in values]), values


def test_timestamps_is_timestamp_of_each_value() -> None:
    for a, b in itertools.product(TIMES, repeat=2):
        values = [a, b]
        assert _typed(timestamps(list(values))) == _typed([timestamp(v) for v in values]), values
    assert timestamps(["2016-06-06T18:26:52.120Z"]) == [datetime(2016, 6, 6, 18, 26, 52, 120000)]


def test_phones_is_phone_of_each_value() -> None:
    for a, b in itertools.product(PHONES, repeat=2):
        values = [a, b]
        assert _typed(phones(list(values))) == _typed([phone(v) for v in values]), values


def test_json_column_is_json_dumps_of_each_value() -> None:
    from rcetl.plugins.sinks.sql.sink import _json_column

    values = [{"id": 1, "name": "José"}, None, {"id": 2**70}, {"name": "lone \udcde"}, [1, "x"], "text", 3]
    for a, b in itertools.product(values, repeat=2):
        assert _json_column([a, b]) == [None if v is None else rcetl.json_dumps(v) for v in (a, b)], (a, b)


def test_sqlite_datetimes_are_sqlalchemys_text() -> None:
    import sqlalchemy as sa

    from rcetl.plugins.sinks.sql.sink import _sqlite_datetimes

    dialect = sa.create_engine("sqlite://").dialect
    convert = sa.DateTime().dialect_impl(dialect).bind_processor(dialect)
    values = [datetime(2016, 6, 6, 18, 26, 52), datetime(2016, 6, 6, 18, 26, 52, 120000), None,
              datetime(2016, 6, 6, 18, 26, 52, tzinfo=timezone.utc)]
    assert _sqlite_datetimes(convert)(values) == [None if v is None else convert(v) for v in values]


def test_rows_extend_keeps_the_callers_lists_and_gives_dicts() -> None:
    first = {"a": [1, 2], "b": ["x", "y"]}
    rows = Rows()
    rows.extend(first, 2)
    rows.extend({"b": ["z"], "a": [3]}, 1)
    assert first == {"a": [1, 2], "b": ["x", "y"]}
    assert rows.count == 3
    assert rows.dicts() == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}, {"a": 3, "b": "z"}]
    with pytest.raises(AssertionError):
        rows.extend({"a": [4]}, 1)
