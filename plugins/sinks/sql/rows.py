"""Turn archived records into table rows: typed columns for filtering, the full JSON for the rest.

Typed columns are a convenience index over ``raw``: a value that does not fit its column (a name
longer than 255 characters, a lone surrogate, a NUL, a non-numeric id) is cleaned or dropped there,
never rejected, because the exact value is always kept in ``raw``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import rcetl

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

Row = dict[str, Any]


def text(value: Any, length: int | None = None) -> str | None:
    if type(value) is str and value.isascii() and "\x00" not in value:  # the common case, first
        return value if length is None or len(value) <= length else value[:length]
    if value is None or isinstance(value, (dict, list)):
        return None
    s = value if isinstance(value, str) else str(value)
    if not s.isascii():  # the fast path (most fields are ASCII) skips the re-encoding
        # Drivers cannot encode lone surrogates.
        s = s.encode("utf-8", "replace").decode("utf-8")
    if "\x00" in s:  # PostgreSQL text cannot hold NUL
        s = s.replace("\x00", "")
    return s[:length] if length and len(s) > length else s


def integer(value: Any) -> int | None:
    if type(value) is int:  # noqa: E721 - the common case, and excludes bool
        return value if INT64_MIN <= value <= INT64_MAX else None
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, int) and INT64_MIN <= value <= INT64_MAX:
        return value
    return None


def timestamp(value: Any) -> datetime | None:
    """API times (``2016-06-06T18:26:52.000Z``) as naive UTC datetimes, the portable SQL form."""
    if not isinstance(value, str):
        return None
    if value.endswith("Z") and len(value) >= 20:  # the API's form: already UTC
        try:
            dt = datetime.fromisoformat(value[:-1])
        except ValueError:
            return None
        if dt.tzinfo is None:
            return dt
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc).replace(tzinfo=None)
    return dt


# Parsed numbers by their written form: an archive repeats the same few thousand numbers, and
# parsing one costs more than the rest of its row.
_PHONES: dict[str, str | None] = {}


_NANP_LEADS = frozenset("23456789")


def phone(value: Any) -> str | None:
    """A party's phoneNumber in E.164, the searchable form (None for extension numbers, names)."""
    if type(value) is not str:
        return None
    # The API's usual form, a North American number already in E.164 ("+1" and ten ASCII digits,
    # the area code not starting with 0 or 1), is its own normal form: rcetl.normalize_phone
    # returns it unchanged (tests/sinks_db/test_phone.py checks the two agree). Parsing it would
    # cost more than the rest of its row, and a backfill sees mostly numbers seen once.
    if len(value) == 12 and value[1] == "1" and value[0] == "+" and value[2] in _NANP_LEADS \
            and value.isascii() and value[2:].isdigit():
        return value
    found = _PHONES.get(value, _PHONES)
    if found is _PHONES:
        if len(_PHONES) >= 100_000:
            _PHONES.clear()
        found = _PHONES[value] = rcetl.normalize_phone(value)
    return found  # type: ignore[return-value]


_NO_FIELDS: Mapping[str, Any] = {}  # what a party that is not an object has (never written to)
_PARTY_COLUMNS = {p: (f"{p}_number", f"{p}_e164", f"{p}_name", f"{p}_extension_id") for p in ("from", "to")}


def _party_into(row: Row, prefix: str, party: Any, extension: bool = True) -> None:
    """A party's columns, written into ``row`` (the hot path of every call and leg)."""
    number_col, e164_col, name_col, extension_col = _PARTY_COLUMNS[prefix]
    get: Callable[[str], Any] = party.get if type(party) is dict or isinstance(party, Mapping) else _NO_FIELDS.get
    number = get("phoneNumber")
    row[number_col] = text(number or get("extensionNumber"), 64)
    row[e164_col] = phone(number)
    row[name_col] = text(get("name"), 255)
    if extension:
        row[extension_col] = integer(get("extensionId"))


def _party(prefix: str, party: Any, *, extension: bool = True) -> Row:
    row: Row = {}
    _party_into(row, prefix, party, extension)
    return row


def _call_fields(data: Mapping[str, Any], row: Row | None = None) -> Row:
    """The columns a call-log record and each of its legs share (into ``row`` when given)."""
    get = data.get
    out: Row = {} if row is None else row
    out["start_time"] = timestamp(get("startTime"))
    out["duration"] = integer(get("duration"))
    out["type"] = text(get("type"), 32)
    out["direction"] = text(get("direction"), 16)
    out["action"] = text(get("action"), 64)
    out["result"] = text(get("result"), 64)
    out["reason"] = text(get("reason"), 128)
    _party_into(out, "from", get("from"))
    _party_into(out, "to", get("to"))
    extension = get("extension")
    out["extension_id"] = integer(extension.get("id")) \
        if type(extension) is dict or isinstance(extension, Mapping) else None
    return out


def call_log_columns(data: Mapping[str, Any]) -> Row:
    return {
        "session_id": text(data.get("sessionId"), 64),
        "telephony_session_id": text(data.get("telephonySessionId"), 128),
        **_call_fields(data),
        "recording_id": text((data.get("recording") or {}).get("id"), 64),
        "last_modified_time": timestamp(data.get("lastModifiedTime")),
    }


def leg_columns(leg: Mapping[str, Any]) -> Row:
    return _call_fields(leg, {"leg_type": text(leg.get("legType"), 64)})


def recording_columns(data: Mapping[str, Any]) -> Row:
    call = found if isinstance(found := data.get("call"), Mapping) else {}
    from_, to = _party("from", call.get("from")), _party("to", call.get("to"))
    return {
        "call_id": text(call.get("id"), 64),
        "session_id": text(call.get("sessionId"), 64),
        "start_time": timestamp(call.get("startTime")),
        "duration": integer(call.get("duration")),
        "direction": text(call.get("direction"), 16),
        "type": text(data.get("type"), 32),
        "content_type": text(data.get("contentType"), 128),
        "extension_id": integer((call.get("extension") or {}).get("id")),
        "from_number": from_["from_number"],
        "from_e164": from_["from_e164"],
        "to_number": to["to_number"],
        "to_e164": to["to_e164"],
    }


def message_columns(data: Mapping[str, Any]) -> Row:
    to = data.get("to")
    first_to = to[0] if isinstance(to, list) and to else {}
    attachments = data.get("attachments")
    return {
        "conversation_id": integer(data.get("conversationId")),
        "type": text(data.get("type"), 16),
        "direction": text(data.get("direction"), 16),
        "creation_time": timestamp(data.get("creationTime")),
        "last_modified_time": timestamp(data.get("lastModifiedTime")),
        **_party("from", data.get("from")),
        **_party("to", first_to, extension=False),  # to_number, to_e164, to_name
        "subject": text(data.get("subject")),
        "read_status": text(data.get("readStatus"), 16),
        "message_status": text(data.get("messageStatus"), 32),
        "availability": text(data.get("availability"), 16),
        "attachment_count": len(attachments) if isinstance(attachments, list) else 0,
        "fax_page_count": integer(data.get("faxPageCount")),
    }


def attachment_columns(att: Mapping[str, Any]) -> Row:
    return {
        "type": text(att.get("type"), 32),
        "content_type": text(att.get("contentType"), 128),
        "file_name": text(att.get("fileName"), 255),
    }


def with_blob(row: Row, blob: Mapping[str, Any] | None) -> Row:
    """``row`` with its binary's columns; the archive entry fills what the API JSON lacks.

    The call log's recording JSON has no content type: the archive entry holds the type the
    source announced for the download."""
    row.update(_blob_columns(blob))
    if blob and row.get("content_type") is None:
        row["content_type"] = text(blob.get("content_type"), 128)
    return row


def _blob_columns(blob: Mapping[str, Any] | None) -> Row:
    if not blob:
        return {"blob_id": None, "blob_status": None, "location": None, "size": None, "sha256": None}
    locations = blob.get("locations") or {}
    # The first sink by name: deterministic, so a rewrite never flips the column between sinks.
    location = locations[min(locations)] if locations else None
    return {
        "blob_id": text(blob.get("blob_id"), 128),
        "blob_status": text(blob.get("status"), 16),
        "location": text(location, 1024),
        "size": integer(blob.get("size")),
        "sha256": text(blob.get("sha256"), 64),
    }


def is_deleted(rec: rcetl.Record) -> bool:
    data = rec.data
    return bool(rec.deleted or data.get("deleted") is True or data.get("availability") in ("Deleted", "Purged"))


@dataclass
class TableRows:
    """The rows one batch writes: parents per table, and for child tables the parents they replace."""

    rows: dict[str, list[Row]] = field(default_factory=dict)
    # child table name -> list of (account, parent key) whose children this batch replaces
    replaced_parents: dict[str, list[tuple[str, Any]]] = field(default_factory=dict)

    def add(self, table: str, row: Row) -> None:
        self.rows.setdefault(table, []).append(row)


@dataclass(frozen=True)
class StreamLayout:
    """How one stream maps onto tables: its own table and optionally a child table it replaces."""

    table: str
    key_column: str
    key_type: type
    columns: Callable[[Mapping[str, Any]], Row]
    child_table: str | None = None

    def add_rows(self, ar: rcetl.ArchivedRecord, out: TableRows) -> None:
        rec = ar.record
        archive = ar.archive_json() if ar.blobs else []
        row: Row = {"account": rec.account, self.key_column: rec.key, **self.columns(rec.data)}
        if self.table == "recordings":
            with_blob(row, archive[0] if archive else None)
        row["deleted"] = is_deleted(rec)
        row["raw"] = rec.data
        row["archive"] = archive
        out.add(self.table, row)
        if self.child_table == "call_legs":
            out.replaced_parents.setdefault("call_legs", []).append((rec.account, rec.key))
            legs = out.rows.setdefault("call_legs", [])
            for i, leg in enumerate(rec.data.get("legs") or []):
                if type(leg) is dict or isinstance(leg, Mapping):
                    legs.append(_call_fields(leg, {"account": rec.account, "call_id": rec.key, "leg_index": i,
                                                   "leg_type": text(leg.get("legType"), 64)}))
        elif self.child_table == "attachments":
            out.replaced_parents.setdefault("attachments", []).append((rec.account, rec.key))
            blobs = {b["blob_id"]: b for b in archive}
            seen: set[int] = set()
            for att in rec.data.get("attachments") or []:
                att_id = integer(att.get("id")) if isinstance(att, Mapping) else None
                if att_id is None or att_id in seen:
                    continue  # no id (or a repeated one): it stays in the message's raw JSON only
                seen.add(att_id)
                # the message-store source's blob id: the attachment id is
                # scoped by its message (plugins/sources/message_store.py)
                row = with_blob({"account": rec.account, "message_id": rec.key, "id": att_id,
                                 **attachment_columns(att)}, blobs.get(f"attachment-{rec.key}-{att_id}"))
                if row["size"] is None:  # not downloaded (yet): the size the API declared
                    row["size"] = integer(att.get("size"))
                out.add("attachments", row)


STREAMS: dict[str, StreamLayout] = {
    "call-log": StreamLayout("call_log", "id", str, call_log_columns, child_table="call_legs"),
    "recording": StreamLayout("recordings", "id", str, recording_columns),
    "message-store": StreamLayout("messages", "id", int, message_columns, child_table="attachments"),
}

#: child table -> (parent key column in the child, the child's own key column)
CHILDREN: dict[str, tuple[str, str]] = {"call_legs": ("call_id", "leg_index"), "attachments": ("message_id", "id")}


def generic_row(rec: rcetl.Record, archive: list[dict[str, Any]]) -> Row:
    """A record of a stream the schema has no table for (a third-party source)."""
    return {
        "account": rec.account,
        "stream": rec.stream,
        "record_key": str(rec.key),
        "key_type": "int" if isinstance(rec.key, int) else "str",
        "occurred_at": timestamp(rec.occurred_at.isoformat()) if rec.occurred_at else None,
        "deleted": is_deleted(rec),
        "raw": rec.data,
        "archive": archive,
    }


def check_key(rec: rcetl.Record) -> None:
    layout = STREAMS.get(rec.stream)
    want = layout.key_type if layout else (str, int)
    if isinstance(rec.key, bool) or not isinstance(rec.key, want) or (
        isinstance(rec.key, int) and integer(rec.key) is None
    ):
        raise rcetl.PermanentError(
            f"record {rec.stream}/{rec.key!r}: key must be {getattr(want, '__name__', 'str or int')}, "
            f"not {type(rec.key).__name__} (ints must fit in 64 bits)",
            hint="the source must yield natural keys with their exact type (message ids are ints)",
        )


def to_rows(batch: Sequence[rcetl.ArchivedRecord]) -> TableRows:
    # The last version of a record in a batch wins: one statement may not touch a row twice.
    latest = {(ar.record.stream, ar.record.account, ar.record.key): ar for ar in batch}
    out = TableRows()
    for ar in latest.values():
        check_key(ar.record)
        layout = STREAMS.get(ar.record.stream)
        if layout:
            layout.add_rows(ar, out)
        else:
            out.add("records", generic_row(ar.record, ar.archive_json()))
    return out
