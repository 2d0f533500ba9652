"""What a browse search asks and what it gets back, independent of the store that answers it.

The web layer parses a request into :class:`Filters`; an :class:`ArchiveIndex` (one per kind of
record sink: SQL, MongoDB, CouchDB, the Parquet lake) answers with :class:`Hit` rows and a cursor
for the next page. Phone numbers are compared in E.164 (``rcetl.normalize_phone``), the form the
sinks index.

Where a store has no typed field for a filter (a party's name everywhere but SQL; the sender's
extension of a message in CouchDB and the lake; "has a recording" in CouchDB), the index narrows by
what it can and checks the rest on the API's JSON with :func:`json_check`, so every store answers
with the same records as the SQL index.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
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


# --- the API's JSON: what every store keeps and every index can read ---------------------------

def party(data: Mapping[str, Any], side: str) -> tuple[str | None, str | None]:
    """(number as shown, name) of ``from``/``to``; of a message's recipients, the first (as the SQL
    sink's ``to_*`` columns)."""
    found = data.get(side)
    if isinstance(found, list):
        found = found[0] if found else None
    if not isinstance(found, Mapping):
        return None, None
    return found.get("phoneNumber") or found.get("extensionNumber"), found.get("name")


def hit_from_json(stream: str, account: str, key: Any, time: datetime | None, data: Mapping[str, Any],
                  deleted: bool) -> Hit:
    """A result row from the record's JSON as RingCentral sent it (``stream``: call-log or message-store)."""
    (fnum, fname), (tnum, tname) = party(data, "from"), party(data, "to")
    if stream == "call-log":
        return Hit(stream=stream, id=str(key), account=account, time=time, type=data.get("type"),
                   direction=data.get("direction"), from_number=fnum, from_name=fname, to_number=tnum,
                   to_name=tname, result=data.get("result"), duration=data.get("duration"),
                   has_recording=has_recording(data), deleted=deleted)
    return Hit(stream=stream, id=str(key), account=account, time=time, type=data.get("type"),
               direction=data.get("direction"), from_number=fnum, from_name=fname, to_number=tnum, to_name=tname,
               subject=data.get("subject"), deleted=deleted)


def has_recording(data: Mapping[str, Any]) -> bool:
    recording = data.get("recording")
    return isinstance(recording, Mapping) and recording.get("id") is not None


def conversation_of(data: Mapping[str, Any]) -> str | None:
    conversation = data.get("conversation")
    found = (conversation.get("id") if isinstance(conversation, Mapping) else None) or data.get("conversationId")
    return str(found) if found is not None else None


def attachment_names(data: Mapping[str, Any], archive: Any) -> dict[str, str]:
    """blob id -> the attachment's ``fileName`` (the engine names an attachment's blob ``...-<id>``)."""
    names: dict[str, str] = {}
    for att in data.get("attachments") or []:
        if isinstance(att, Mapping) and att.get("fileName"):
            for entry in archive or []:
                if isinstance(entry, Mapping) and str(entry.get("blob_id", "")).endswith(f"-{att.get('id')}"):
                    names[str(entry["blob_id"])] = att["fileName"]
    return names


#: Filters :func:`json_check` can decide from the API's JSON.
JSON_FILTERS = ("name", "extension", "has_recording")


def json_check(filters: Filters, stream: str, only: tuple[str, ...] = JSON_FILTERS
               ) -> Callable[[Mapping[str, Any]], bool] | None:
    """A test of a record's JSON for the filters in ``only`` that ``filters`` sets, with the SQL index's
    meaning (None: nothing to test). ``name``: a substring of the ``from`` or (first) ``to`` party's
    name, letter case ignored for A-Z (:func:`fold`, as SQLite's ``LIKE``); ``extension``: a message's sender's ``extensionId`` (a call's is its mailbox,
    ``extension.id``); ``has_recording``: the call has ``recording.id``."""
    tests: list[Callable[[Mapping[str, Any]], bool]] = []
    if filters.name and "name" in only:
        wanted = fold(filters.name)
        tests.append(lambda d: any(wanted in fold(str(party(d, side)[1] or "")) for side in ("from", "to")))
    if filters.extension and "extension" in only:
        ext = int(filters.extension)
        if stream == "call-log":
            tests.append(lambda d: _int(_field(d, "extension", "id")) == ext)
        else:
            tests.append(lambda d: _int(_field(d, "from", "extensionId")) == ext)
    if filters.has_recording and "has_recording" in only and stream == "call-log":
        tests.append(has_recording)
    if not tests:
        return None
    return lambda data: all(test(data) for test in tests)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_TEXT_RUN = re.compile(r'[ !#-\[\]-~]+')  # printable ASCII that JSON text holds as it is (no " or \\)


def fold(text: str) -> str:
    """``text`` with A-Z as a-z: how a name search compares (SQLite's ``LIKE``; other letters exact)."""
    return text.translate(_ASCII_LOWER)


def raw_run(name: str) -> str | None:
    """The longest part of ``name`` that stands as it is in any record's raw JSON text holding the
    name (printable ASCII but ``"`` and ``\\``: ``rcetl.json_dumps`` may escape any other character),
    for a store to narrow a name search on the text before the exact check; None if under 2 characters."""
    run = max(_TEXT_RUN.findall(name), key=len, default="")
    return run if len(run) >= 2 else None


def _field(data: Mapping[str, Any], outer: str, inner: str) -> Any:
    found = data.get(outer)
    return found.get(inner) if isinstance(found, Mapping) else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None
