"""The lake's typed schema per stream, and the rows a record becomes.

Every stream's files share the common columns (the natural key, the exact JSON, where the binaries
went); the three built-in streams add typed columns for analytics. Nested parts stay nested, as
Arrow lists of structs in the same row (``legs`` of a call, ``attachments`` of a message), not
child tables: Spark, DuckDB, Athena and Hive read them natively (``explode``/``unnest``), a record
stays one row that is replaced as a whole, and no join can ever see half an update.

``raw`` is the API's JSON as text (``rcetl.json_dumps``: UTF-8, with ASCII escapes for what UTF-8
cannot hold): exact 64-bit ids (a Parquet double would round message ids above 2^53) and lone
surrogates survive; typed columns are a convenience index over it.
The schema is part of the format: add columns at the end, never change a type (docs/sinks/lake.md).
"""

from __future__ import annotations

import functools
import io
import json
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, TypeGuard

import pyarrow as pa

import rcetl

SCHEMA_VERSION = 1
_TS = pa.timestamp("ms", tz="UTC")

COMMON = [
    pa.field("account", pa.string(), nullable=False),
    pa.field("key", pa.string(), nullable=False),            # the natural key as text, for people
    pa.field("key_json", pa.string(), nullable=False),       # exact and typed: 42 or "VgLc..." (JSON)
    pa.field("occurred_at", _TS),
    pa.field("deleted", pa.bool_(), nullable=False),
]
TAIL = [
    pa.field("raw", pa.string(), nullable=False),            # the API's JSON, exact (rcetl.json_dumps)
    pa.field("archive", pa.string(), nullable=False),        # binaries: locations and SHA-256 (JSON)
]
# *_number as the API wrote it; *_e164 normalised (rcetl.normalize_phone, the SQL sink's columns).
_PARTY = [pa.field("from_number", pa.string()), pa.field("from_e164", pa.string()),
          pa.field("to_number", pa.string()), pa.field("to_e164", pa.string())]
_CALL = [
    pa.field("start_time", _TS), pa.field("duration", pa.int64()), pa.field("type", pa.string()),
    pa.field("direction", pa.string()), pa.field("action", pa.string()), pa.field("result", pa.string()),
    *_PARTY, pa.field("extension_id", pa.string()),
]
LEG = pa.struct([pa.field("leg_type", pa.string()), *_CALL])
ATTACHMENT = pa.struct([
    pa.field("id", pa.int64()), pa.field("type", pa.string()), pa.field("content_type", pa.string()),
    pa.field("file_name", pa.string()), pa.field("size", pa.int64()), pa.field("sha256", pa.string()),
    pa.field("status", pa.string()),
])

STREAM_FIELDS: dict[str, list[pa.Field]] = {
    "call-log": [pa.field("session_id", pa.string()), pa.field("telephony_session_id", pa.string()), *_CALL,
                 pa.field("recording_id", pa.string()), pa.field("last_modified_time", _TS),
                 pa.field("legs", pa.list_(LEG))],
    "recording": [pa.field("call_id", pa.string()), pa.field("start_time", _TS), pa.field("duration", pa.int64()),
                  pa.field("direction", pa.string()), pa.field("type", pa.string()),
                  pa.field("content_type", pa.string()), pa.field("extension_id", pa.string()), *_PARTY,
                  pa.field("size", pa.int64()), pa.field("sha256", pa.string()), pa.field("status", pa.string())],
    "message-store": [pa.field("id", pa.int64()), pa.field("conversation_id", pa.int64()),
                      pa.field("type", pa.string()), pa.field("direction", pa.string()),
                      pa.field("creation_time", _TS), pa.field("last_modified_time", _TS), *_PARTY,
                      pa.field("subject", pa.string()), pa.field("availability", pa.string()),
                      pa.field("message_status", pa.string()), pa.field("attachments", pa.list_(ATTACHMENT))],
}


def schema_for(stream: str) -> pa.Schema:
    return pa.schema([*COMMON, *STREAM_FIELDS.get(stream, []), *TAIL],
                     metadata={"rcetl.schema_version": str(SCHEMA_VERSION), "rcetl.stream": stream})


# --- values -------------------------------------------------------------------------------------
# A record becomes a *tuple* of its column values in schema order, and a batch becomes a table
# column by column (``table_of``): no dict per row or per leg, and Arrow converts each column's
# Python list in one C call. This halves the CPU of a write next to ``Table.from_pylist`` of dicts
# (docs/sinks/lake.md "Speed").

def _is_map(value: Any) -> TypeGuard[Mapping[str, Any]]:
    return type(value) is dict or isinstance(value, Mapping)  # the exact-type check skips ABC machinery


def text(value: Any) -> str | None:
    if type(value) is str and value.isascii():  # the common case first: most fields are ASCII
        return value
    if value is None or isinstance(value, (dict, list)):
        return None
    s = value if isinstance(value, str) else str(value)
    return s if s.isascii() else s.encode("utf-8", "replace").decode("utf-8")  # Arrow strings are UTF-8


def integer(value: Any) -> int | None:
    if type(value) is int:
        return value if -(2**63) <= value < 2**63 else None
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    return value if isinstance(value, int) and -(2**63) <= value < 2**63 else None


def instant(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    if dt.tzinfo is timezone.utc:
        return dt
    try:
        return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)
    except OverflowError:  # e.g. 0001-01-01T00:30+01:00: its UTC instant is before year 1
        return None


def _party(party: Any) -> tuple[str | None, str | None]:
    """(number as the API wrote it, E.164) of a ``from``/``to`` object."""
    if not _is_map(party):
        return None, None
    number = party.get("phoneNumber")
    shown = text(number or party.get("extensionNumber"))
    return shown, (rcetl.normalize_phone(number) if type(number) is str else None)


def _call(data: Mapping[str, Any]) -> tuple[Any, ...]:
    """The ``_CALL`` columns, in order."""
    get = data.get
    ext = get("extension")
    # type/direction/action/result/legType/session ids go as the API sent them: table_of makes
    # them text only in the rare column where Arrow refuses a value (they are strings in practice).
    return (instant(get("startTime")), integer(get("duration")), get("type"), get("direction"),
            get("action"), get("result"), *_party(get("from")), *_party(get("to")),
            text(ext.get("id")) if _is_map(ext) else None)


def _call_log(data: Mapping[str, Any], archive: list[dict[str, Any]]) -> tuple[Any, ...]:
    legs = data.get("legs")
    recording = data.get("recording")
    return (data.get("sessionId"), data.get("telephonySessionId"), *_call(data),
            text(recording.get("id")) if _is_map(recording) else None, instant(data.get("lastModifiedTime")),
            [(leg.get("legType"), *_call(leg)) for leg in legs if _is_map(leg)]
            if type(legs) is list else [])


def _first_blob(archive: list[dict[str, Any]]) -> dict[str, Any]:
    return archive[0] if archive else {}


def _recording(data: Mapping[str, Any], archive: list[dict[str, Any]]) -> tuple[Any, ...]:
    call = found if _is_map(found := data.get("call")) else {}
    blob = _first_blob(archive)
    ext = call.get("extension")
    return (text(call.get("id")), instant(call.get("startTime")), integer(call.get("duration")),
            text(call.get("direction")), text(data.get("type")), text(data.get("contentType")),
            text(ext.get("id")) if _is_map(ext) else None, *_party(call.get("from")), *_party(call.get("to")),
            integer(blob.get("size")), text(blob.get("sha256")), text(blob.get("status")))


def _message(data: Mapping[str, Any], archive: list[dict[str, Any]]) -> tuple[Any, ...]:
    to = data.get("to")
    first_to = to[0] if isinstance(to, list) and to else {}
    blobs = {b.get("blob_id"): b for b in archive}
    atts = []
    for att in data.get("attachments") or []:
        if not _is_map(att):
            continue
        blob = next((b for bid, b in blobs.items() if str(bid).endswith(f"-{att.get('id')}")), {})
        atts.append((integer(att.get("id")), text(att.get("type")), text(att.get("contentType")),
                     text(att.get("fileName")), integer(blob.get("size") or att.get("size")),
                     text(blob.get("sha256")), text(blob.get("status"))))
    return (integer(data.get("id")), integer(data.get("conversationId")), text(data.get("type")),
            text(data.get("direction")), instant(data.get("creationTime")), instant(data.get("lastModifiedTime")),
            *_party(data.get("from")), *_party(first_to), text(data.get("subject")),
            text(data.get("availability")), text(data.get("messageStatus")), atts)


TYPED: dict[str, Callable[[Mapping[str, Any], list[dict[str, Any]]], tuple[Any, ...]]] = {
    "call-log": _call_log, "recording": _recording, "message-store": _message}


def is_deleted(rec: rcetl.Record) -> bool:
    data = rec.data
    return bool(rec.deleted or data.get("deleted") is True or data.get("availability") in ("Deleted", "Purged"))


#: Where the columns that decide whether a stored row is the same record version sit in a row
#: (``raw`` and ``archive`` are the last two; the typed columns derive from raw).
IDENTITY = {"occurred_at": 3, "deleted": 4, "raw": -2, "archive": -1}


def row_of(ar: rcetl.ArchivedRecord) -> tuple[Any, ...]:
    """The record's column values, in ``schema_for(stream)`` order."""
    rec = ar.record
    archive = ar.archive_json()
    typed = TYPED.get(rec.stream)
    return (text(rec.account) or "", text(str(rec.key)) or "",
            json.dumps(rec.key),  # ASCII: lone surrogates escaped, ints exact, one form per key
            _ms(instant(rec.occurred_at)), is_deleted(rec), *(typed(rec.data, archive) if typed else ()),
            rcetl.json_dumps(rec.data), rcetl.json_dumps(archive))


#: Columns with a new value in nearly every row: a dictionary for them is built, then abandoned (it
#: costs ~15% of a file's write time), and min/max statistics of ``raw``/``archive`` serve no query.
_UNIQUE = ("key", "key_json", "raw", "archive")


@functools.cache
def write_options(stream: str) -> dict[str, Any]:
    """``pq.write_table`` options for the stream's files: dictionaries and statistics per leaf column."""
    import pyarrow.parquet as pq

    empty = io.BytesIO()
    pq.write_table(schema_for(stream).empty_table(), empty)
    leaves = [c.path for c in pq.ParquetFile(empty).schema]
    return {"use_dictionary": [c for c in leaves if c not in _UNIQUE],
            "write_statistics": [c for c in leaves if c not in ("raw", "archive")]}


def table_of(schema: pa.Schema, rows: list[tuple[Any, ...]]) -> pa.Table:
    """Rows of ``row_of`` as a table, built column by column."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(schema)
    return pa.Table.from_arrays([_array(col, field.type) for col, field in zip(columns, schema, strict=True)],
                                schema=schema)


def _array(values: Any, type_: pa.DataType) -> pa.Array:
    try:
        return pa.array(values, type=type_)
    except (pa.ArrowTypeError, UnicodeEncodeError):
        # A string column holding what Arrow will not take as UTF-8 text (a number, an object, a lone
        # surrogate): every string in the column through ``text``, as a row-by-row build would do.
        return pa.array([_as_text(v, type_) for v in values], type=type_)


def _as_text(value: Any, type_: pa.DataType) -> Any:
    if pa.types.is_string(type_):
        return text(value)
    if value is None:
        return None
    if pa.types.is_list(type_):
        return [_as_text(v, type_.value_type) for v in value]
    if pa.types.is_struct(type_):
        return tuple(_as_text(v, type_.field(i).type) for i, v in enumerate(value))
    return value


def _ms(when: datetime | None) -> datetime | None:
    """Cut to the column's milliseconds, so a stored row compares equal to the same record again."""
    return when.replace(microsecond=when.microsecond // 1000 * 1000) if when else None


NO_DATE = "__HIVE_DEFAULT_PARTITION__"


def partition_date(rec: rcetl.Record) -> str:
    """The day (UTC) a record belongs to; Hive's null partition when the record has no time."""
    when = instant(rec.occurred_at)
    return when.date().isoformat() if when else NO_DATE


def row_date(row: tuple[Any, ...]) -> str:
    """``partition_date`` of the record a ``row_of`` row was built from (its UTC ``occurred_at``)."""
    when = row[IDENTITY["occurred_at"]]
    return when.date().isoformat() if when else NO_DATE
