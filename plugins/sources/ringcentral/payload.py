"""Checks on what RingCentral sends before anything of it is archived.

A page or record that is not what the API documents (records not a list, an id missing or turned
into a float, a date that is not a date) stops the stream with one line naming the field and the
value, before its checkpoint moves: nothing half-understood reaches the archive (invariant 8: an
id that went through a float has lost digits, so it is refused rather than rounded).
"""

from __future__ import annotations

from typing import Any

import rcetl

from .durations import parse_instant


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def records_of(page: Any, path: str) -> list[dict[str, Any]]:
    """The ``records`` of a list page, checked to be a list of objects."""
    if not isinstance(page, dict):
        raise rcetl.PermanentError(f"RingCentral sent a {type(page).__name__} instead of a JSON object for {path}")
    records = page.get("records")
    if records is None:
        return []
    if not isinstance(records, list):
        raise rcetl.PermanentError(f"RingCentral sent 'records' as a {type(records).__name__}, not a list, for {path}")
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise rcetl.PermanentError(f"RingCentral sent record {i} of {path} as a {type(rec).__name__}, not an object")
    return records


def require_id(holder: dict[str, Any], what: str, field: str = "id") -> int | str:
    """An id exactly as sent: an integer or a non-empty string, never a float or a bool."""
    value = holder.get(field)
    if value is None:
        raise rcetl.PermanentError(f"RingCentral sent a {what} without an {field!r}: {_short(holder)}")
    if isinstance(value, bool) or not isinstance(value, (int, str)) or (isinstance(value, str) and not value.strip()):
        raise rcetl.PermanentError(
            f"RingCentral sent a {what} whose {field!r} is {_short(value)} ({type(value).__name__}): "
            "ids must be integers or strings, exact"
        )
    return value


def optional_instant(holder: dict[str, Any], field: str, what: str):  # -> datetime | None
    """A date field that may be absent but, when present, must be an ISO-8601 instant."""
    value = holder.get(field)
    if value is None:
        return None
    parsed = parse_instant(value) if isinstance(value, str) else None
    if parsed is None:
        raise rcetl.PermanentError(f"RingCentral sent a {what} whose {field!r} is not a date: {_short(value)}")
    return parsed
