"""How a record becomes a CouchDB document: its ``_id``, typed fields for Mango, the exact JSON.

The API's JSON is kept as *text* (``raw``), not as a nested object: CouchDB-protocol servers and
clients written in JavaScript (PouchDB, Fauxton, most web apps) parse JSON numbers as doubles, and
message ids exceed 2^53, so an object would come back with rounded ids. ``rcetl.json_dumps`` writes
it (ASCII escapes where UTF-8 cannot hold a value, so lone surrogates survive every server).
Typed fields beside it are what Mango indexes and ``_find`` use; ids there are strings.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, unquote

import rcetl

#: Version of the document layout, stored in every document (``rcetl``).
LAYOUT = 1
#: Fields the sink owns in a record document; anything else (attachments, binaries) is kept on update.
RECORD_FIELDS = ("rcetl", "kind", "stream", "account", "key", "key_type", "deleted", "occurred_at", "time",
                 "direction", "type", "extension_id", "from_number", "to_number", "from_e164", "to_e164",
                 "numbers_e164", "result", "availability",
                 "archive", "raw")
#: Mango indexes created on open: name -> fields (all documents of one database share them).
INDEXES: dict[str, list[str]] = {
    "stream-time": ["stream", "time"],
    "stream-account": ["stream", "account"],
    "direction": ["stream", "direction", "time"],
    "type": ["stream", "type", "time"],
    "extension": ["extension_id", "time"],
    "from-e164": ["from_e164", "time"],
    "to-e164": ["to_e164", "time"],
}


#: What ``quote(value, safe="")`` leaves unchanged: ASCII letters and digits and ``_.-~``.
_UNQUOTED = re.compile(r"[A-Za-z0-9_.~-]*")


def _part(value: str) -> str:
    # Percent-encoding keeps ':' (the separator) out of components and makes any key, even one with
    # lone surrogates or control characters, a valid and reversible id.
    # Most components (stream names, account and call ids) are left as they are by quote(): skip it.
    text = value if _UNQUOTED.fullmatch(value) else quote(value, safe="", errors="surrogatepass")
    return "%5F" + text[1:] if text.startswith("_") else text  # ids starting with '_' are reserved


def doc_id(stream: str, account: str, key: rcetl.Key) -> str:
    """``<stream>:<account>:<i|s>:<key>``: deterministic, and 42 and "42" are two documents."""
    kind = "i" if isinstance(key, int) and not isinstance(key, bool) else "s"
    return f"{_part(stream)}:{_part(account)}:{kind}:{_part(str(key))}"


def stream_prefix(stream: str, account: str | None = None) -> str:
    return f"{_part(stream)}:" + (f"{_part(account)}:" if account is not None else "")


def key_of(doc_id_: str) -> rcetl.Key:
    """The natural key, exactly typed, back from a document id."""
    _, _, kind, text = doc_id_.split(":", 3)
    key = unquote(text, errors="surrogatepass")
    return int(key) if kind == "i" else key


def blob_doc_id(blob_id: str) -> str:
    """A binary stored on a document of its own (larger than ``inline_max_bytes``)."""
    return f"blob:{_part(blob_id)}"


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    s = value if isinstance(value, str) else str(value)
    return s.encode("utf-8", "replace").decode("utf-8") if not s.isascii() else s


def _utc(value: Any) -> str | None:
    """API times as UTC ISO text with milliseconds: sortable as strings, so Mango ranges work."""
    if not isinstance(value, str):
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is not timezone.utc:
        try:
            dt = dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)
        except OverflowError:  # e.g. 0001-01-01T00:30+01:00: its UTC instant is before year 1
            return None
    if dt.year >= 1000:  # the same text as below (milliseconds truncated), without strftime's cost
        return dt.isoformat(timespec="milliseconds")[:23] + "Z"
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _number(party: Any) -> str | None:
    if not isinstance(party, Mapping):
        return None
    return _text(party.get("phoneNumber") or party.get("extensionNumber"))


def _e164(party: Any) -> str | None:
    """A party's phoneNumber in E.164 (rcetl.normalize_phone, as the SQL and MongoDB sinks store it)."""
    # ``type(...) is dict`` first: API JSON is dicts, and the ABC check costs more than the lookup.
    if type(party) is dict or isinstance(party, Mapping):
        return rcetl.normalize_phone(party.get("phoneNumber"))
    return None


def _mailbox(uri: Any) -> str | None:
    """The extension of a message's mailbox, from its ``uri`` (``.../extension/{id}/message-store/...``):
    RingCentral's message JSON names it nowhere else."""
    if not isinstance(uri, str):
        return None
    head, sep, _ = uri.partition("/message-store/")
    owner = head.rsplit("/extension/", 1)[-1] if sep and "/extension/" in head else ""
    return owner if owner and "/" not in owner else None


def typed_fields(stream: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """The fields people filter on, from the API's JSON (the raw JSON stays the authority)."""
    call = found if stream == "recording" and isinstance(found := data.get("call"), Mapping) else data
    to = data.get("to")
    first_to = to[0] if isinstance(to, list) and to else to
    extension = call.get("extension") if isinstance(call.get("extension"), Mapping) else {}
    from_ = call.get("from") if stream == "recording" else data.get("from")
    to_ = call.get("to") if stream == "recording" else first_to
    from_e164, to_e164 = _e164(from_), _e164(to_)
    # Every number the record names: both parties of the call and of each leg, every recipient.
    legs = found_legs if isinstance(found_legs := data.get("legs"), list) else []
    parties = [from_, *(to if isinstance(to, list) else [to_])]
    parties += [p for leg in legs if isinstance(leg, Mapping) for p in (leg.get("from"), leg.get("to"))]
    done = {id(from_): from_e164, id(to_): to_e164}  # the same objects, normalised once
    return {
        "time": _utc(call.get("startTime") or data.get("creationTime")),
        "direction": _text(call.get("direction") or data.get("direction")),
        "type": _text(data.get("type")),
        "extension_id": _text(extension.get("id") if extension else _mailbox(data.get("uri"))),
        "from_number": _number(from_),
        "to_number": _number(to_),
        "from_e164": from_e164,
        "to_e164": to_e164,
        "numbers_e164": sorted({n for p in parties if (n := done[id(p)] if id(p) in done else _e164(p))}),
        "result": _text(data.get("result")),
        "availability": _text(data.get("availability")),
    }


def is_deleted(rec: rcetl.Record) -> bool:
    data = rec.data
    return bool(rec.deleted or data.get("deleted") is True or data.get("availability") in ("Deleted", "Purged"))


def record_body(ar: rcetl.ArchivedRecord) -> dict[str, Any]:
    """The sink's fields of a record document, as JSON-native values (compared to detect changes)."""
    rec = ar.record
    occurred = rec.occurred_at
    if occurred is not None and occurred.tzinfo is None:
        occurred = occurred.replace(tzinfo=timezone.utc)
    return {
        "rcetl": LAYOUT,
        "kind": "record",
        "stream": rec.stream,
        "account": _text(rec.account),
        "key": _text(str(rec.key)),
        "key_type": "int" if isinstance(rec.key, int) else "str",
        "deleted": is_deleted(rec),
        "occurred_at": _utc(occurred.isoformat()) if occurred else None,
        **typed_fields(rec.stream, rec.data),
        # Round-tripped through JSON so a value compares equal to what the server gives back.
        "archive": json.loads(json.dumps(archive)) if (archive := ar.archive_json()) else [],
        "raw": rcetl.json_dumps(rec.data),
    }


def placeholder_body(record: rcetl.Record | None) -> dict[str, Any]:
    """The body of a record document that holds binaries before its record is written (the engine
    stores binaries first); ``kind: pending`` keeps it out of ``archived()`` until then."""
    if record is None:
        return {"rcetl": LAYOUT, "kind": "binary"}
    return {"rcetl": LAYOUT, "kind": "pending", "stream": record.stream, "account": _text(record.account),
            "key": _text(str(record.key)), "key_type": "int" if isinstance(record.key, int) else "str"}
