"""Phone numbers in one form (E.164), so that a number written any way finds the same calls.

RingCentral reports numbers mostly in E.164 (``+16505550123``) but not always (national forms
from some carriers, extension numbers such as ``101`` in the same ``phoneNumber`` field of
internal calls), and people search with whatever they have at hand: ``(650) 555-0123``,
``650-555-0123 ext. 12``. Sinks store the normalised form in typed columns (``from_e164``,
``to_e164``) and searches normalise their input with the same function.

Parsing is Google's libphonenumber (``phonenumbers``): numbering plans are not something to
write by hand.
"""

from __future__ import annotations

from functools import lru_cache

__all__ = ["normalize_phone"]

# Longer than any phone number with formatting and an extension; longer input is not a number.
_MAX_INPUT = 64


def normalize_phone(value: str | None, region: str = "US") -> str | None:
    """``value`` as E.164 (``+16505550123``), or None when it is not a phone number.

    ``region`` is the country assumed for national forms (``650-555-0123``); a number with a
    ``+`` or an international prefix keeps its own country. Extensions (``x12``, ``ext. 12``)
    are dropped: the E.164 form names the line. Extension numbers (``101``), names, service
    codes (``*67``) and empty values give None.
    """
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value or len(value) > _MAX_INPUT:
        return None
    return _normalize(value, region.upper())


@lru_cache(maxsize=65536)  # archives repeat the same few thousand numbers; parsing is the cost
def _normalize(value: str, region: str) -> str | None:
    import phonenumbers  # here, not at the top: `import rcetl` (and so `rcetl --help`) stays cheap

    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None
    # "Possible" (a plausible length for its country), not "valid": validity follows numbering-plan
    # metadata that lags real allocations, and a number RingCentral reported must stay findable.
    # Only fully possible: a local-only number (7 digits in the US) has no area code to name it.
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason != phonenumbers.ValidationResult.IS_POSSIBLE:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
