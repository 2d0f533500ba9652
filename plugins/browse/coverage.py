"""The coverage calendar: what the archive holds per day and stream, what failed, and what
RingCentral deletes soon that is not archived yet.

Retention rules are RingCentral's published ones (shared/reference/ringcentral-api.md, section 6
"Data retention"): call recordings 90 days, the call log about 12 months, fax and voicemail per the
account's retention setting (7 to 90 days; the shortest is assumed unless the pipeline's
``browse.message_retention_days`` says otherwise), SMS kept by count, not age.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from .query import ArchiveIndex

#: Days RingCentral keeps an item of each stream after it happened (None: not deleted by age).
RETENTION_DAYS: dict[str, int | None] = {"recording": 90, "call-log": 365, "message-store": None}
#: Fax and voicemail: the account setting is 7..90 days; 7 is the safe assumption.
MESSAGE_RETENTION_DEFAULT = 7
#: A warning is "urgent" this many days before deletion.
URGENT_DAYS = 7


@dataclass
class Day:
    day: date
    counts: dict[str, int] = field(default_factory=dict)
    #: records of the day that the last `rcetl verify` proved archived (per stream)
    proven: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    #: (stream, days left) of not-yet-archived items RingCentral deletes by age
    deletes_in: list[tuple[str, int]] = field(default_factory=list)

    @property
    def status(self) -> str:
        if any(left <= URGENT_DAYS for _, left in self.deletes_in):
            return "urgent"
        if self.failed:
            return "failed"
        if not self.counts:
            return "empty"
        return "verified" if self.proven == self.counts else "archived"


@dataclass
class Coverage:
    days: list[Day]
    warnings: list[str]
    today: date
    last_verified: datetime | None = None


def _occurred(record: dict[str, Any]) -> datetime | None:
    text = record.get("occurred_at") if isinstance(record, dict) else None
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def retention_for(stream: str, record: dict[str, Any], message_days: int) -> int | None:
    if stream == "message-store":
        kind = str((record.get("data") or {}).get("type") or "")
        return message_days if kind in ("Fax", "VoiceMail") else None
    return RETENTION_DAYS.get(stream)


def build(index: ArchiveIndex, failed: Iterable[Any], *, days: int = 120, now: datetime | None = None,
          message_days: int = MESSAGE_RETENTION_DEFAULT, proofs: Mapping[tuple[str, str, Any], Any] | None = None
          ) -> Coverage:
    """The calendar for the last ``days`` days (newest first) from the index, the failed items and
    the proofs ``rcetl verify`` left in the state store (keyed by stream, account, record key)."""
    now = now or datetime.now(timezone.utc)
    today = now.date()
    start = datetime.combine(today - timedelta(days=days - 1), datetime.min.time(), timezone.utc)
    by_day: dict[date, Day] = defaultdict(lambda: Day(date.min))
    for dc in index.days(start, now + timedelta(days=1)):
        d = date.fromisoformat(dc.day)
        by_day.setdefault(d, Day(d)).counts[dc.stream] = dc.records
    last_verified = None
    if proofs:
        proven = {(stream, account, str(key)) for stream, account, key in proofs}
        last_verified = max(p.at for p in proofs.values())
        for stream, account, key, day in index.day_keys(start, now + timedelta(days=1)):
            if (stream, account, key) in proven:
                d = date.fromisoformat(day)
                entry = by_day.setdefault(d, Day(d))
                entry.proven[stream] = entry.proven.get(stream, 0) + 1
    warnings: list[str] = []
    for item in failed:
        occurred = _occurred(item.record)
        if occurred is None:
            continue
        d = occurred.date()
        entry = by_day.setdefault(d, Day(d))
        entry.day = d
        entry.failed[item.stream] = entry.failed.get(item.stream, 0) + 1
        keep = retention_for(item.stream, item.record, message_days)
        if keep is not None:
            left = (d + timedelta(days=keep) - today).days
            entry.deletes_in.append((item.stream, left))
            if left <= URGENT_DAYS:
                when = "has deleted" if left < 0 else f"deletes in {left} days"
                warnings.append(f"{item.stream} {item.key!r} of {d.isoformat()}: not archived, RingCentral {when} "
                                f"(last error: {item.error})")
    out = []
    for offset in range(days):
        d = today - timedelta(days=offset)
        entry = by_day.get(d) or Day(d)
        entry.day = d
        out.append(entry)
    return Coverage(out, warnings, today, last_verified)
