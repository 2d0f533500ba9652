"""Pages are decoded by rcetl's fast codec: every integer stays an exact int, whatever its size
(message and call ids above 2^53 are real), and a body that is not JSON is named in one line."""

from __future__ import annotations

import pytest

import rcetl
from rcetl.plugins.sources.ringcentral.http import parse_json

# 2^53 + 1 is the first int a float cannot hold; 2^64 - 1 is the last orjson reads natively;
# beyond 64 bits (either sign) the standard parser takes over.
EXACT = [2**53 + 1, 2**63 + 5, 2**64 - 1, 2**64 + 1, -(2**63) - 1, 10**30]


@pytest.mark.parametrize("value", EXACT)
def test_ids_of_any_size_stay_exact_ints(value: int) -> None:
    page = parse_json(b'{"records": [{"id": %d, "n": [1, %d]}]}' % (value, value), "GET /message-store")
    record = page["records"][0]
    assert type(record["id"]) is int and record["id"] == value
    assert record["n"] == [1, value] and type(record["n"][1]) is int


def test_floats_strings_and_escapes_as_the_standard_parser_reads_them() -> None:
    body = '{"d": 1.5, "e": 1e3, "s": "caf\\u00e9 \\ud83d\\ude00", "u": "Ωmega", "z": null, "t": true}'.encode()
    import json

    assert parse_json(body, "GET /x") == json.loads(body)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"<!DOCTYPE html><html>gateway</html>", "HTML, not JSON"),
        (b"", "an empty body"),
        (b'{"records": [', "truncated or malformed"),
        (b'{"a": "\xff\xfe"}', "not valid UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deep"),
    ],
)
def test_a_body_that_is_not_json_is_named(body: bytes, words: str) -> None:
    with pytest.raises(rcetl.TransientError, match=words):
        parse_json(body, "GET /call-log")
