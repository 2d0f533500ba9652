"""Usage reconciliation: what each record counts for, per extension and day.

Feeds ``rcetl verify --usage`` (the "volume usage reconciliation" users run against their bill):
calls and minutes from the call log, messages by type from the message store.
"""

from __future__ import annotations

import re
from typing import Any

import rcetl

_EXTENSION_IN_URI = re.compile(r"/extension/(\d+)")


def _day(value: Any) -> str:
    return value[:10] if isinstance(value, str) and len(value) >= 10 else "unknown"


def call_usage(record: rcetl.Record) -> list[rcetl.UsageRow]:
    data = record.data
    if record.deleted:
        return []
    extension = (data.get("extension") or {}).get("id")
    duration = data.get("duration") or 0
    counts = {"calls": 1, "minutes": round(float(duration) / 60.0, 2)}
    return [rcetl.UsageRow(_day(data.get("startTime")), str(extension if extension is not None else "account"),
                           counts)]


def message_usage(record: rcetl.Record) -> list[rcetl.UsageRow]:
    data = record.data
    if data.get("availability", "Alive") == "Purged":
        return []
    match = _EXTENSION_IN_URI.search(str(data.get("uri") or ""))
    kind = str(data.get("type") or "Other")
    counts = {"messages": 1, {"Fax": "faxes", "VoiceMail": "voicemails", "SMS": "sms", "Pager": "pager"}.get(
        kind, "other"): 1}
    return [rcetl.UsageRow(_day(data.get("creationTime")), match.group(1) if match else "unknown", counts)]
