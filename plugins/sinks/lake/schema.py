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

import json
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

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

def text(value: Any) -> str | None:
    if type(value) is str and value.isascii():  # the common case first: most fields are ASCII
        return value
    if value is None or isinstance(value, (dict, list)):
        return None
    s = value if isinstance(value, str) else str(value)
    return s if s.isascii() else s.encode("utf-8", "replace").decode("utf-8")  # Arrow strings are UTF-8


def integer(value: Any) -> int | None:
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
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def _number(party: Any) -> str | None:
    return text(party.get("phoneNumber") or party.get("extensionNumber")) if isinstance(party, Mapping) else None


def _e164(party: Any) -> str | None:
    if not isinstance(party, Mapping):
        return None
    number = party.get("phoneNumber")
    return rcetl.normalize_phone(number) if type(number) is str else None


def _parties(from_: Any, to: Any) -> dict[str, Any]:
    return {"from_number": _number(from_), "from_e164": _e164(from_), "to_number": _number(to), "to_e164": _e164(to)}


def _call(data: Mapping[str, Any]) -> dict[str, Any]:
    ext = data.get("extension") if isinstance(data.get("extension"), Mapping) else {}
    return {"start_time": instant(data.get("startTime")), "duration": integer(data.get("duration")),
            "type": text(data.get("type")), "direction": text(data.get("direction")),
            "action": text(data.get("action")), "result": text(data.get("result")),
            **_parties(data.get("from"), data.get("to")), "extension_id": text(ext.get("id"))}


def _call_log(data: Mapping[str, Any], archive: list[dict[str, Any]]) -> dict[str, Any]:
    legs = data.get("legs") if isinstance(data.get("legs"), list) else []
    return {"session_id": text(data.get("sessionId")), "telephony_session_id": text(data.get("telephonySessionId")),
            **_call(data), "recording_id": text((data.get("recording") or {}).get("id")),
            "last_modified_time": instant(data.get("lastModifiedTime")),
            "legs": [{"leg_type": text(leg.get("legType")), **_call(leg)} for leg in legs if isinstance(leg, Mapping)]}


def _first_blob(archive: list[dict[str, Any]]) -> dict[str, Any]:
    return archive[0] if archive else {}


def _recording(data: Mapping[str, Any], archive: list[dict[str, Any]]) -> dict[str, Any]:
    call = data.get("call") if isinstance(data.get("call"), Mapping) else {}
    blob = _first_blob(archive)
    return {"call_id": text(call.get("id")), "start_time": instant(call.get("startTime")),
            "duration": integer(call.get("duration")), "direction": text(call.get("direction")),
            "type": text(data.get("type")), "content_type": text(data.get("contentType")),
            "extension_id": text((call.get("extension") or {}).get("id")),
            **_parties(call.get("from"), call.get("to")),
            "size": integer(blob.get("size")), "sha256": text(blob.get("sha256")), "status": text(blob.get("status"))}


def _message(data: Mapping[str, Any], archive: list[dict[str, Any]]) -> dict[str, Any]:
    to = data.get("to")
    first_to = to[0] if isinstance(to, list) and to else {}
    blobs = {b.get("blob_id"): b for b in archive}
    atts = []
    for att in data.get("attachments") or []:
        if not isinstance(att, Mapping):
            continue
        blob = next((b for bid, b in blobs.items() if str(bid).endswith(f"-{att.get('id')}")), {})
        atts.append({"id": integer(att.get("id")), "type": text(att.get("type")),
                     "content_type": text(att.get("contentType")), "file_name": text(att.get("fileName")),
                     "size": integer(blob.get("size") or att.get("size")), "sha256": text(blob.get("sha256")),
                     "status": text(blob.get("status"))})
    return {"id": integer(data.get("id")), "conversation_id": integer(data.get("conversationId")),
            "type": text(data.get("type")), "direction": text(data.get("direction")),
            "creation_time": instant(data.get("creationTime")), "last_modified_time": instant(data.get("lastModifiedTime")),
            **_parties(data.get("from"), first_to),
            "subject": text(data.get("subject")), "availability": text(data.get("availability")),
            "message_status": text(data.get("messageStatus")), "attachments": atts}


TYPED: dict[str, Callable[[Mapping[str, Any], list[dict[str, Any]]], dict[str, Any]]] = {
    "call-log": _call_log, "recording": _recording, "message-store": _message}


def is_deleted(rec: rcetl.Record) -> bool:
    data = rec.data
    return bool(rec.deleted or data.get("deleted") is True or data.get("availability") in ("Deleted", "Purged"))


def row_of(ar: rcetl.ArchivedRecord) -> dict[str, Any]:
    rec = ar.record
    archive = ar.archive_json()
    typed = TYPED.get(rec.stream)
    return {
        "account": text(rec.account) or "",
        "key": text(str(rec.key)) or "",
        "key_json": json.dumps(rec.key),  # ASCII: lone surrogates escaped, ints exact, one form per key
        "occurred_at": _ms(instant(rec.occurred_at)),
        "deleted": is_deleted(rec),
        **(typed(rec.data, archive) if typed else {}),
        "raw": rcetl.json_dumps(rec.data),
        "archive": rcetl.json_dumps(archive),
    }


def _ms(when: datetime | None) -> datetime | None:
    """Cut to the column's milliseconds, so a stored row compares equal to the same record again."""
    return when.replace(microsecond=when.microsecond // 1000 * 1000) if when else None


def partition_date(rec: rcetl.Record) -> str:
    """The day (UTC) a record belongs to; Hive's null partition when the record has no time."""
    when = instant(rec.occurred_at)
    return when.strftime("%Y-%m-%d") if when else "__HIVE_DEFAULT_PARTITION__"
