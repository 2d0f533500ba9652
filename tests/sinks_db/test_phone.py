"""rcetl.normalize_phone: every way a number is written gives one E.164 form; non-numbers give None."""

from __future__ import annotations

import pytest

import rcetl

SAME_NUMBER = [
    "+16505550123",
    "16505550123",
    "6505550123",
    "(650) 555-0123",
    "650-555-0123",
    "650.555.0123",
    "+1 650 555 0123",
    " +1 (650) 555-0123 ",
    "1-650-555-0123",
    "+1 650 555 0123 ext. 101",
    "650-555-0123 x12",
    "tel:+1-650-555-0123",
    "011 1 650 555 0123",
]


@pytest.mark.parametrize("written", SAME_NUMBER)
def test_every_form_of_a_us_number_gives_its_e164(written: str) -> None:
    assert rcetl.normalize_phone(written) == "+16505550123"


@pytest.mark.parametrize("written", ["+44 20 7183 8750", "+442071838750", "011 44 20 7183 8750"])
def test_a_foreign_number_keeps_its_country(written: str) -> None:
    assert rcetl.normalize_phone(written) == "+442071838750"


def test_national_forms_follow_the_region() -> None:
    assert rcetl.normalize_phone("020 7183 8750", region="GB") == "+442071838750"
    assert rcetl.normalize_phone("020 7183 8750", region="gb") == "+442071838750"
    # The same digits read as a US number are not a possible number.
    assert rcetl.normalize_phone("020 7183 8750") is None


@pytest.mark.parametrize(
    "value",
    [None, "", "   ", "101", "1234", "Alice Smith", "*67", "555-0123", "+1650555012", "anonymous",
     "9" * 80, 16505550123, {"phoneNumber": "+16505550123"}],
)
def test_what_is_not_a_phone_number_gives_none(value) -> None:
    assert rcetl.normalize_phone(value) is None


def test_numbers_outside_current_allocations_stay_findable() -> None:
    # 555 numbers are fictional (not "valid" to libphonenumber) but RingCentral's examples and
    # the sandbox use them: an archived number must normalise, or it could never be searched.
    assert rcetl.normalize_phone("(555) 555-0100") == "+15555550100"


def test_the_sql_sinks_fast_path_agrees_with_normalize_phone() -> None:
    """plugins/sinks/sql/rows.phone skips parsing "+1" and ten digits; it must give what parsing gives."""
    import random

    from rcetl.plugins.sinks.sql.rows import _PHONES, phone

    rng = random.Random(17)
    written = ["+1" + str(area) + "".join(rng.choice("0123456789") for _ in range(7)) for area in range(200, 1000)]
    written += ["+10505550123", "+11505550123", "+1650555012", "+165055501234", "+1650555012\u0663",
                "+1\uff16505550123", "+1 650555012", "+16505550123 ", "+2650555012", "+16505550123"]
    for number in written:
        _PHONES.clear()
        assert phone(number) == rcetl.normalize_phone(number), number
