"""Durations in options (``30d``, ``2h``) and the ISO instants RingCentral expects in queries."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any

from pydantic import BeforeValidator

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def parse_duration(value: Any) -> Any:
    """``"30d"``/``"2h"``/``"90m"`` -> timedelta; anything else is left to pydantic (ISO 8601, seconds)."""
    if isinstance(value, str):
        m = _PATTERN.match(value)
        if m:
            return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])
    return value


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def utc(dt: datetime) -> datetime:
    """A timezone-aware UTC datetime (naive values are taken as UTC)."""
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def format_instant(dt: datetime) -> str:
    """``2024-01-31T00:00:00.000Z``: always ``Z`` so no ``+`` ever needs URL-encoding."""
    dt = utc(dt)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_instant(text: str | None) -> datetime | None:
    """RingCentral's ``2016-06-06T18:26:52.000Z`` (or any ISO form) -> aware datetime; None if absent."""
    if not text:
        return None
    try:
        return utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return None


def date_windows(start: datetime, end: datetime, size: timedelta) -> list[tuple[datetime, datetime]]:
    """Consecutive ``[from, to)`` windows from ``start`` to ``end``, oldest first; the last ends at ``end``."""
    if size <= timedelta(0):
        raise ValueError("window size must be positive")
    start, end = utc(start), utc(end)
    out: list[tuple[datetime, datetime]] = []
    cursor = start
    while cursor < end:
        nxt = min(cursor + size, end)
        out.append((cursor, nxt))
        cursor = nxt
    return out
