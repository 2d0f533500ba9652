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
        try:
            value = int(value)
        except ValueError:  # isdigit takes what int refuses: "²", "--5" (a hostile payload's)
            return None
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


# --- whole columns ---------------------------------------------------------------------------
# A batch's rows are built column by column: each typed column is one list comprehension over the
# batch whose common case (ASCII text that fits, an int in range, an API time, a "+1" number) is
# decided inline, and only other values call the functions above. Building a dict per row and a
# call per field cost ~60 us per call with its legs, more than SQLite's own work on the row; the
# columns also go to the driver as they are (zip into tuples, or PostgreSQL's arrays per column).

Columns = dict[str, list[Any]]


_TEXT_TYPES = frozenset((str, type(None)))
_INT_TYPES = frozenset((int, type(None)))


def _texts_fit(values: list[Any], length: int | None) -> bool:
    """Whether :func:`text` keeps every value as it is: each None or a str with no NUL and no lone
    surrogate, within ``length``. Decided by the C loops of set, map, join and encode, a few
    nanoseconds a value, where a Python test per value costs a few hundred."""
    if not _TEXT_TYPES.issuperset(map(type, values)):
        return False
    joined = "".join(filter(None, values))
    if "\x00" in joined:
        return False
    if not joined.isascii():
        try:
            joined.encode()  # strict: any surrogate code point (lone, as a str holds them) raises
        except UnicodeEncodeError:
            return False
    return length is None or max(map(len, filter(None, values)), default=0) <= length


def texts(values: list[Any], length: int | None = None) -> list[Any]:
    """:func:`text` of each value."""
    if _texts_fit(values, length):
        return values
    if length is None:
        return [v if v is None or (type(v) is str and v.isascii() and "\x00" not in v) else text(v) for v in values]
    return [v if v is None or (type(v) is str and len(v) <= length and v.isascii() and "\x00" not in v)
            else text(v, length) for v in values]


def integers(values: list[Any]) -> list[Any]:
    """:func:`integer` of each value; ids the API sends as short digit strings are parsed inline."""
    if _INT_TYPES.issuperset(map(type, values)) and INT64_MIN <= min(filter(None, values), default=0) \
            and max(filter(None, values), default=0) <= INT64_MAX:
        return values  # None and ints in range (bool is a type of its own: not taken here)
    return [v if v is None or (type(v) is int and INT64_MIN <= v <= INT64_MAX)
            else int(v) if type(v) is str and 0 < len(v) < 19 and v.isascii() and v.isdigit()
            else integer(v) for v in values]


_fromisoformat = datetime.fromisoformat


def timestamps(values: list[Any]) -> list[Any]:
    """:func:`timestamp` of each value; the API's own form (``2016-06-06T18:26:52.000Z``) inline."""
    out: list[Any] = []
    append = out.append
    for v in values:
        if type(v) is str and len(v) == 24 and v[23] == "Z":
            try:
                dt = _fromisoformat(v[:23])
            except ValueError:
                dt = None
            if dt is not None and dt.tzinfo is None:
                append(dt)
                continue
        append(None if v is None else timestamp(v))
    return out


def phones(values: list[Any]) -> list[Any]:
    """:func:`phone` of each value (the North American E.164 form is its own normal form)."""
    return [v if type(v) is str and len(v) == 12 and v[1] == "1" and v[0] == "+" and v[2] in _NANP_LEADS
            and v.isascii() and v[2:].isdigit() else None if v is None else phone(v) for v in values]


_NO_FIELDS: Mapping[str, Any] = {}  # what a party that is not an object has (never written to)


def _fields(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else _NO_FIELDS


def _objects(values: list[Any]) -> list[Mapping[str, Any]]:
    """Each value that is a JSON object, else an empty one (a hostile payload may send anything)."""
    return [v if type(v) is dict else _fields(v) for v in values]


def _party_columns(cols: Columns, prefix: str, parties: list[Any], extension: bool = True) -> None:
    """A party's columns (number as sent, E.164, name, extension id) for each of ``parties``."""
    found = _objects(parties)
    numbers = [p.get("phoneNumber") for p in found]
    cols[f"{prefix}_number"] = texts([n or p.get("extensionNumber") for n, p in zip(numbers, found, strict=True)], 64)
    cols[f"{prefix}_e164"] = phones(numbers)
    cols[f"{prefix}_name"] = texts([p.get("name") for p in found], 255)
    if extension:
        cols[f"{prefix}_extension_id"] = integers([p.get("extensionId") for p in found])


def _call_columns(datas: Sequence[Mapping[str, Any]], cols: Columns) -> Columns:
    """The columns a call-log record and each of its legs share, for each of ``datas``."""
    cols["start_time"] = timestamps([d.get("startTime") for d in datas])
    cols["duration"] = integers([d.get("duration") for d in datas])
    cols["type"] = texts([d.get("type") for d in datas], 32)
    cols["direction"] = texts([d.get("direction") for d in datas], 16)
    cols["action"] = texts([d.get("action") for d in datas], 64)
    cols["result"] = texts([d.get("result") for d in datas], 64)
    cols["reason"] = texts([d.get("reason") for d in datas], 128)
    _party_columns(cols, "from", [d.get("from") for d in datas])
    _party_columns(cols, "to", [d.get("to") for d in datas])
    cols["extension_id"] = integers([e.get("id") for e in _objects([d.get("extension") for d in datas])])
    return cols


def _call_log_columns(datas: Sequence[Mapping[str, Any]]) -> Columns:
    cols: Columns = {"session_id": texts([d.get("sessionId") for d in datas], 64),
                     "telephony_session_id": texts([d.get("telephonySessionId") for d in datas], 128)}
    _call_columns(datas, cols)
    cols["recording_id"] = texts([r.get("id") for r in _objects([d.get("recording") for d in datas])], 64)
    cols["last_modified_time"] = timestamps([d.get("lastModifiedTime") for d in datas])
    return cols


def _leg_columns(legs: Sequence[Mapping[str, Any]], cols: Columns) -> Columns:
    cols["leg_type"] = texts([leg.get("legType") for leg in legs], 64)
    return _call_columns(legs, cols)


def _list(value: Any) -> Sequence[Any]:
    """A JSON array field's items; nothing for anything else a hostile payload sends (a number
    there raised TypeError; a string or an object gave no rows before either)."""
    return value if type(value) is list or isinstance(value, (list, tuple)) else []


def _one(cols: Columns) -> Row:
    return {name: values[0] for name, values in cols.items()}


def call_log_columns(data: Mapping[str, Any]) -> Row:
    return _one(_call_log_columns([data]))


def leg_columns(leg: Mapping[str, Any]) -> Row:
    return _one(_leg_columns([leg], {}))


def _party(prefix: str, party: Any, *, extension: bool = True) -> Row:
    cols: Columns = {}
    _party_columns(cols, prefix, [party], extension)
    return _one(cols)


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
class Rows:
    """One table's rows of a batch, column by column: every list of ``columns`` is ``count`` long."""

    columns: Columns = field(default_factory=dict)
    count: int = 0

    def extend(self, columns: Columns, count: int) -> None:
        if not self.columns:
            self.columns = {name: list(values) for name, values in columns.items()}  # ours to extend
        else:
            if set(columns) != set(self.columns):  # a layout bug: every row of a table has every column
                raise AssertionError(f"columns {sorted(columns)} against {sorted(self.columns)}")
            for name, values in columns.items():
                self.columns[name] += values
        self.count += count

    def dicts(self) -> list[Row]:
        """The rows as one dict each (SQLAlchemy's executemany for the dialects without a fast path)."""
        names = list(self.columns)
        return [dict(zip(names, values, strict=True)) for values in zip(*self.columns.values(), strict=True)]


@dataclass
class TableRows:
    """The rows one batch writes: per table, and for child tables the parents whose children they replace."""

    tables: dict[str, Rows] = field(default_factory=dict)
    # child table name -> list of (account, parent key) whose children this batch replaces
    replaced_parents: dict[str, list[tuple[str, Any]]] = field(default_factory=dict)
    _pending: dict[str, list[Row]] = field(default_factory=dict)

    def add(self, table: str, row: Row) -> None:
        """One row (streams mapped record by record); made columns by :meth:`finish`."""
        self._pending.setdefault(table, []).append(row)

    def add_columns(self, table: str, columns: Columns, count: int) -> None:
        self.tables.setdefault(table, Rows()).extend(columns, count)

    def finish(self) -> TableRows:
        for table, rows in self._pending.items():
            self.add_columns(table, {name: [r[name] for r in rows] for name in rows[0]}, len(rows))
        self._pending = {}
        return self


def _call_log_rows(batch: list[rcetl.ArchivedRecord], out: TableRows) -> None:
    """The call log's rows and its legs' rows, column by column."""
    recs = [ar.record for ar in batch]
    datas = [rec.data for rec in recs]
    cols: Columns = {"account": [rec.account for rec in recs], "id": [rec.key for rec in recs],
                     **_call_log_columns(datas)}
    cols["deleted"] = [is_deleted(rec) for rec in recs]
    cols["raw"] = datas
    cols["archive"] = [ar.archive_json() if ar.blobs else [] for ar in batch]
    out.add_columns("call_log", cols, len(recs))
    out.replaced_parents.setdefault("call_legs", []).extend(zip(cols["account"], cols["id"], strict=True))
    legs = [(rec, i, leg) for rec in recs for i, leg in enumerate(_list(rec.data.get("legs")))
            if type(leg) is dict or isinstance(leg, Mapping)]
    leg_cols: Columns = {"account": [rec.account for rec, _, _ in legs], "call_id": [rec.key for rec, _, _ in legs],
                         "leg_index": [i for _, i, _ in legs]}
    out.add_columns("call_legs", _leg_columns([leg for _, _, leg in legs], leg_cols), len(legs))


@dataclass(frozen=True)
class StreamLayout:
    """How one stream maps onto tables: its own table and optionally a child table it replaces."""

    table: str
    key_column: str
    key_type: type
    columns: Callable[[Mapping[str, Any]], Row]
    child_table: str | None = None
    # Maps a whole batch at once (column by column) instead of record by record.
    batch: Callable[[list[rcetl.ArchivedRecord], TableRows], None] | None = None

    def add_rows(self, batch: list[rcetl.ArchivedRecord], out: TableRows) -> None:
        if self.batch is not None:
            self.batch(batch, out)
            return
        for ar in batch:
            self._add_record(ar, out)

    def _add_record(self, ar: rcetl.ArchivedRecord, out: TableRows) -> None:
        rec = ar.record
        archive = ar.archive_json() if ar.blobs else []
        row: Row = {"account": rec.account, self.key_column: rec.key, **self.columns(rec.data)}
        if self.table == "recordings":
            with_blob(row, archive[0] if archive else None)
        row["deleted"] = is_deleted(rec)
        row["raw"] = rec.data
        row["archive"] = archive
        out.add(self.table, row)
        if self.child_table == "attachments":
            out.replaced_parents.setdefault("attachments", []).append((rec.account, rec.key))
            blobs = {b["blob_id"]: b for b in archive}
            seen: set[int] = set()
            for att in _list(rec.data.get("attachments")):
                att_id = integer(att.get("id")) if isinstance(att, Mapping) else None
                if att_id is None or att_id in seen:
                    continue  # no id (or a repeated one): it stays in the message's raw JSON only
                seen.add(att_id)
                # the message-store source's blob id: the attachment id is
                # scoped by its message (plugins/sources/message_store.py)
                att_row = with_blob({"account": rec.account, "message_id": rec.key, "id": att_id,
                                     **attachment_columns(att)}, blobs.get(f"attachment-{rec.key}-{att_id}"))
                if att_row["size"] is None:  # not downloaded (yet): the size the API declared
                    att_row["size"] = integer(att.get("size"))
                out.add("attachments", att_row)


STREAMS: dict[str, StreamLayout] = {
    "call-log": StreamLayout("call_log", "id", str, call_log_columns, child_table="call_legs", batch=_call_log_rows),
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
    by_stream: dict[str, list[rcetl.ArchivedRecord]] = {}
    for ar in latest.values():
        by_stream.setdefault(ar.record.stream, []).append(ar)
    out = TableRows()
    for stream, records in by_stream.items():
        layout = STREAMS.get(stream)
        if layout is None:
            for ar in records:
                check_key(ar.record)
                out.add("records", generic_row(ar.record, ar.archive_json()))
            continue
        for ar in records:
            key = ar.record.key
            # check_key's verdict, decided inline for the keys it accepts (the common case)
            if type(key) is not layout.key_type or (type(key) is int and not INT64_MIN <= key <= INT64_MAX):
                check_key(ar.record)
        layout.add_rows(records, out)
    return out.finish()
