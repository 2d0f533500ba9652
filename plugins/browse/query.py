"""What a browse search asks and what it gets back, independent of the store that answers it.

The web layer parses a request into :class:`Filters`; an :class:`ArchiveIndex` (one per kind of
record sink: SQL, MongoDB) answers with :class:`Hit` rows and a cursor for the next page. Phone
numbers are compared in E.164 (``rcetl.normalize_phone``), the form the sinks index.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

import rcetl

#: The kinds a user picks from; "voice" and "fax" calls live in the call log, the rest are messages.
KINDS = ("call", "sms", "fax", "voicemail", "pager")
DIRECTIONS = ("Inbound", "Outbound")
PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


class BadQuery(ValueError):
    """A search parameter that cannot be understood; shown to the user, never a 500."""


@dataclass(frozen=True)
class Filters:
    """One search. Every field is optional; all given fields must match."""

    phone: str | None = None  # E.164 after parsing
    phone_text: str = ""  # what the user typed, echoed back in the form
    name: str | None = None
    extension: str | None = None
    direction: str | None = None
    kind: str | None = None
    result: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    has_recording: bool = False
    cursor: str | None = None
    limit: int = PAGE_SIZE

    @property
    def wants_calls(self) -> bool:
        return self.kind in (None, "call", "fax")

    @property
    def wants_messages(self) -> bool:
        return self.kind in (None, "sms", "fax", "voicemail", "pager") and not self.has_recording and not self.result

    def message_types(self) -> tuple[str, ...]:
        return {"sms": ("SMS",), "fax": ("Fax",), "voicemail": ("VoiceMail",), "pager": ("Pager",)}.get(
            self.kind or "", ())

    def call_types(self) -> tuple[str, ...]:
        return {"call": ("Voice",), "fax": ("Fax",)}.get(self.kind or "", ())


def _date(text: str, name: str, *, end: bool = False) -> datetime:
    try:
        day = datetime.strptime(text.strip(), "%Y-%m-%d").replace(tzinfo=timezone.utc)
    except ValueError:
        raise BadQuery(f"{name}: {text!r} is not a date; use YYYY-MM-DD") from None
    return day + timedelta(days=1) if end else day


def parse_filters(args: Mapping[str, str]) -> Filters:
    """Filters from query-string arguments; raises :class:`BadQuery` naming the bad field."""
    phone_text = (args.get("phone") or "").strip()
    phone = None
    if phone_text:
        phone = rcetl.normalize_phone(phone_text)
        if phone is None:
            raise BadQuery(f"phone: {phone_text!r} is not a phone number (try +16505550123 or (650) 555-0123)")
    direction = args.get("direction") or None
    if direction is not None and direction not in DIRECTIONS:
        raise BadQuery(f"direction: choose one of {', '.join(DIRECTIONS)}")
    kind = args.get("kind") or None
    if kind is not None and kind not in KINDS:
        raise BadQuery(f"kind: choose one of {', '.join(KINDS)}")
    try:
        limit = min(int(args.get("limit") or PAGE_SIZE), MAX_PAGE_SIZE)
    except ValueError:
        raise BadQuery("limit: a whole number") from None
    extension = (args.get("extension") or "").strip() or None
    if extension is not None and not extension.isdigit():
        raise BadQuery("extension: an extension id or number (digits only)")
    return Filters(
        phone=phone, phone_text=phone_text, name=(args.get("name") or "").strip() or None,
        extension=extension, direction=direction, kind=kind,
        result=(args.get("result") or "").strip() or None,
        since=_date(args["since"], "since") if args.get("since") else None,
        until=_date(args["until"], "until", end=True) if args.get("until") else None,
        has_recording=args.get("has_recording") in ("1", "on", "true"),
        cursor=args.get("cursor") or None, limit=max(1, limit),
    )


@dataclass
class Hit:
    """One row of a result list: a call or a message."""

    stream: str  # "call-log" or "message-store"
    id: str
    account: str
    time: datetime | None
    type: str | None
    direction: str | None
    from_number: str | None
    from_name: str | None
    to_number: str | None
    to_name: str | None
    result: str | None = None
    duration: int | None = None
    has_recording: bool = False
    subject: str | None = None
    deleted: bool = False


@dataclass
class Page:
    hits: list[Hit]
    next_cursor: str | None = None


@dataclass
class Binary:
    """A stored binary as every sink holds it: its checksum and where each sink put it."""

    blob_id: str
    kind: str
    content_type: str | None
    size: int | None
    sha256: str | None
    status: str | None
    locations: dict[str, str] = field(default_factory=dict)
    file_name: str | None = None


@dataclass
class Detail:
    """A call (with its legs and recording) or a message (with its attachments), raw JSON included."""

    hit: Hit
    raw: dict[str, Any]
    legs: list[dict[str, Any]] = field(default_factory=list)
    binaries: list[Binary] = field(default_factory=list)
    conversation_id: str | None = None


@dataclass
class DayCount:
    day: str  # YYYY-MM-DD
    stream: str
    records: int


class ArchiveIndex(Protocol):
    """Read-only queries a record sink answers for browse (implemented per store)."""

    def search_calls(self, filters: Filters) -> Page: ...

    def search_messages(self, filters: Filters) -> Page: ...

    def call(self, account: str, call_id: str) -> Detail | None: ...

    def message(self, account: str, message_id: int) -> Detail | None: ...

    def thread(self, account: str, conversation_id: str, limit: int = 200) -> list[Hit]: ...

    def days(self, since: datetime, until: datetime) -> list[DayCount]: ...

    def day_keys(self, since: datetime, until: datetime) -> Iterator[tuple[str, str, str, str]]:
        """(stream, account, key as text, YYYY-MM-DD) of every record in the span (coverage vs proofs)."""
        ...


def binaries_from_archive(archive: Any, names: Mapping[str, str] | None = None) -> list[Binary]:
    """The ``archive`` JSON a record sink keeps (one entry per binary) as :class:`Binary` rows."""
    out = []
    for entry in archive or []:
        if not isinstance(entry, Mapping):
            continue
        blob_id = str(entry.get("blob_id", ""))
        out.append(Binary(blob_id=blob_id, kind=str(entry.get("kind") or ""),
                          content_type=entry.get("content_type"), size=entry.get("size"),
                          sha256=entry.get("sha256"), status=entry.get("status"),
                          locations=dict(entry.get("locations") or {}),
                          file_name=(names or {}).get(blob_id)))
    return out


def encode_cursor(time: datetime | None, ident: str) -> str:
    return f"{time.isoformat() if time else ''}|{ident}"


def decode_cursor(cursor: str) -> tuple[datetime | None, str]:
    stamp, sep, ident = cursor.partition("|")
    if not sep:
        raise BadQuery("cursor: not a cursor this page made")
    try:
        return (datetime.fromisoformat(stamp) if stamp else None), ident
    except ValueError:
        raise BadQuery("cursor: not a cursor this page made") from None
