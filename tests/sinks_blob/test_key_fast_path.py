"""sanitize_component returns plain ASCII names (ids, dates, extension numbers) as they are without
its per-character pass: the result must be what the full pass gives, for any string."""

from __future__ import annotations

import random
import re
import string

import pytest

from rcetl import blobs

ALPHABET = string.ascii_letters + string.digits + "-_. /\\:*?\"<>|\t\u202e\u00e9\u0301"


def _full_pass(value: str, max_bytes: int) -> str:
    plain = blobs._PLAIN
    blobs._PLAIN = re.compile(r"(?!)")  # matches nothing: every value takes the full pass
    try:
        return blobs.sanitize_component(value, max_bytes)
    finally:
        blobs._PLAIN = plain


@pytest.mark.parametrize("max_bytes", [3, 8, blobs.MAX_COMPONENT_BYTES])
def test_the_fast_path_agrees_with_the_full_pass(max_bytes: int) -> None:
    rnd = random.Random(max_bytes)
    cases = ["CON", "con.txt", "Com1.mp3", "LPT9", "nul", "a.", ".a", "..", ".", "-", "_", "a..b", "2024",
             "rec-1.mp3", "x" * max_bytes, "x" * (max_bytes + 1), "60748697003", "A_b-C.d.e"]
    cases += ["".join(rnd.choice(ALPHABET) for _ in range(rnd.randint(0, 10))) for _ in range(20_000)]
    for value in cases:
        assert blobs.sanitize_component(value, max_bytes) == _full_pass(value, max_bytes), value


def test_plain_values_come_back_as_they_are() -> None:
    for value in ("2024", "03", "60748697003", "recording", "mp3", "rec-1", "a_b.c"):
        assert blobs.sanitize_component(value) is value
    assert blobs.sanitize_component("CON") == "_CON" and blobs.sanitize_component("a.") == "a"
