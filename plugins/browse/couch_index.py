"""Browse queries over the ``couchdb`` sink's database: Mango ``_find`` on the indexes the sink creates.

The sink indexes (design document ``_design/rcetl``, docs/sinks/couchdb.md) ``[from_e164, time]``,
``[to_e164, time]``, ``[extension_id, time]``, ``[stream, type, time]``, ``[stream, direction, time]``,
``[stream, time]`` and ``[stream, account]``. A search picks the most selective one the filters allow
(phone, then a call's extension, then type, then direction, else time alone), names it in
``use_index`` and reads it newest first (every field of the index ``desc``); a phone search reads
the caller index and the callee index side by side and merges them. The other filters ride in the
selector (direction, type, result, dates) or, for what the documents have no typed field for (a
party's name, a message sender's extension, "has a recording"), are narrowed by a ``$regex`` on the
``raw`` JSON text and then decided exactly on the parsed JSON (:func:`query.json_check`).

Paging is by keyset, as for SQL: rows of a Mango JSON index are ordered by the index key and then
the document id (raw bytes), so the cursor is ``(time, _id)`` of the last row shown and the next
page reads the instant ``t`` (cut below ``id`` here: :meth:`CouchArchiveIndex._instant`) and then
``time <= t`` less that instant: index ranges, ``skip`` only inside one instant, and the same cost
for page 1 and page 2,000 (:meth:`CouchArchiveIndex._walk`). Mango's ``bookmark`` would do for one
query, but not for the caller/callee merge, and PouchDB Server does not return one.

Selectors are always written as one top-level ``$and`` list: PouchDB Server rejects a ``$and`` next
to plain fields, and CouchDB reads both forms alike. On PouchDB Server, which filters a whole index
range in memory before it applies ``limit`` when a selector holds more than the index's fields, the
selectors hold only those (``covered``) and the other conditions are checked here (docs/browse.md).
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

import rcetl

from . import query

DDOC = "rcetl"
#: Rows per ``_find`` request after the first (which asks for one page and one more row).
CHUNK = 500
#: The streams the coverage calendar counts.
STREAMS = ("call-log", "message-store", "recording")


class CouchArchiveIndex:
    """:class:`~rcetl.plugins.browse.query.ArchiveIndex` over a ``CouchDBRecordSink``'s database."""

    def __init__(self, sink: Any) -> None:
        from rcetl.plugins.sinks.couchdb.documents import doc_id

        self.client = sink.client
        self._doc_id = doc_id
        #: The ``_find`` requests sent (bodies), newest last: what tests explain. Bounded.
        self.sent: list[dict[str, Any]] = []
        #: Selectors hold only their index's own fields, the other conditions are checked here.
        #: For PouchDB Server, which reads a whole index range to filter it in memory before it
        #: applies ``limit`` whenever a selector holds more; CouchDB (and Cloudant) stop at the
        #: limit, so the server filters there and sends only what matches.
        welcome = self.client.json("GET", "", server=True)
        self.covered = not (isinstance(welcome, dict) and "couchdb" in welcome)

    # --- Mango --------------------------------------------------------------------------------

    def find(self, conds: list[dict[str, Any]], index: str, limit: int, fields: list[str] | None = None,
             order: str = "desc", skip: int = 0) -> list[dict[str, Any]]:
        """One ``_find`` on the sink's index ``index`` (its fields, all ``order``)."""
        # No ``kind: record`` condition: documents of other kinds (a record's binaries stored before
        # it, a large binary's own document) have no ``time`` and no ``raw``, so no search or
        # conversation reads them; and a selector the index covers entirely lets PouchDB Server
        # stop at ``limit`` instead of reading the whole range to filter it in memory.
        body: dict[str, Any] = {"selector": {"$and": conds},
                                "sort": [{f: order} for f in INDEXES[index]], "limit": limit,
                                "use_index": [DDOC, index]}
        if fields is not None:
            body["fields"] = fields
        if skip:
            body["skip"] = skip
        self.sent = [*self.sent[-19:], body]
        return self.client.json("POST", "_find", body=body)["docs"]

    def _walk(self, conds: list[dict[str, Any]], index: str, span: tuple[str, str | None],
              after: tuple[str, str] | None, first: int, fields: list[str] | None = None
              ) -> Iterator[dict[str, Any]]:
        """Documents matching ``conds`` with ``span[0] <= time < span[1]``, newest first (then by id,
        descending), strictly after the keyset position ``after`` = (time, _id); read in chunks.

        Every range is written with inclusive bounds: PouchDB Server applies ``limit`` to the index
        rows before it drops those an exclusive bound excludes, so a ``$lt`` page comes back short
        and looks like the last one. The rows of the upper instant are read first (:meth:`_instant`),
        then the range up to and including it with that many rows more, which are left out here."""
        since, until = span
        chunk = first
        if self.covered:
            # Selectors of the index's fields alone; ``raw`` narrowing is left to the exact JSON check.
            here = [c for c in conds if next(iter(c)) not in INDEXES[index] and next(iter(c)) != "raw"]
            conds = [c for c in conds if next(iter(c)) in INDEXES[index]]
            if here:
                yield from (d for d in self._walk(conds, index, span, after, first, fields)
                            if all(_holds(d, c) for c in here))
                return
        upper, last = until, None  # exclusive upper time; with ``last``, that instant's ids below it first
        if after is not None and (until is None or after[0] < until):
            upper, last = after
        while True:
            if upper is not None and upper < since:
                return
            instant = self._instant(conds, index, upper, fields) if upper is not None else []
            if last is not None:
                yield from (d for d in instant if _bytes(d["_id"]) < _bytes(last))
            window: dict[str, Any] = {"$gte": since}
            if upper is not None:
                window["$lte"] = upper
            limit = chunk + len(instant)
            docs = self.find([*conds, {"time": window}], index, limit, fields)
            more = len(docs) == limit
            docs = [d for d in docs if d.get("time") != upper]
            yield from docs
            if not more or not docs:
                return
            upper, last = docs[-1]["time"], docs[-1]["_id"]
            chunk = max(chunk, CHUNK)

    def _instant(self, conds: list[dict[str, Any]], index: str, at: str,
                 fields: list[str] | None) -> list[dict[str, Any]]:
        """The documents of the instant ``at``, by id descending (raw byte order).

        An index orders the rows of one key by document id in raw byte order, but a selector's
        ``_id`` comparison collates (ICU on CouchDB): ``{"_id": {"$lt": ...}}`` could skip or repeat
        ids that differ in letter case. So the whole instant is read (a handful of records; paged by
        ``skip`` inside it) and cut by the caller, in byte order."""
        docs: list[dict[str, Any]] = []
        while True:
            got = self.find([*conds, {"time": at}], index, CHUNK, fields, skip=len(docs))
            docs += got
            if len(got) < CHUNK:
                break
        return sorted(docs, key=lambda d: _bytes(d["_id"]), reverse=True)

    # --- searches -----------------------------------------------------------------------------

    def _search(self, stream: str, filters: query.Filters) -> query.Page:
        conds: list[dict[str, Any]] = [{"stream": stream}]
        types = filters.call_types() if stream == "call-log" else filters.message_types()
        if filters.direction:
            conds.append({"direction": filters.direction})
        if types:
            conds.append({"type": types[0] if len(types) == 1 else {"$in": list(types)}})
        if stream == "call-log" and filters.result:
            conds.append({"result": filters.result})
        # A call's extension is a typed field (its mailbox, ``extension.id``); a message's sender's is not.
        typed_ext = stream == "call-log" and filters.extension is not None
        if typed_ext:
            conds.append({"extension_id": str(int(filters.extension or 0))})
        check = query.json_check(filters, stream, ("name", "has_recording") if typed_ext else
                           ("name", "extension", "has_recording"))
        conds += _raw_narrowing(filters, stream, typed_ext)
        span = (_couch_time(filters.since) if filters.since else "",
                _couch_time(filters.until) if filters.until else None)
        after = None
        if filters.cursor:
            at, ident = query.decode_cursor(filters.cursor)
            if at is not None:
                after = (_couch_time(at), ident)
        first = filters.limit + 1
        if filters.phone:
            # The caller index and the callee index, merged newest first; a record in both once.
            sides = [self._walk([{f"{side}_e164": filters.phone}, *conds], f"{side}-e164", span, after, first)
                     for side in ("from", "to")]
            docs: Iterator[dict[str, Any]] = _unique(heapq.merge(*sides, key=_position, reverse=True))
        elif typed_ext:
            docs = self._walk(conds, "extension", span, after, first)
        elif types and len(types) == 1:
            docs = self._walk(conds, "type", span, after, first)
        elif filters.direction:
            docs = self._walk(conds, "direction", span, after, first)
        else:
            docs = self._walk(conds, "stream-time", span, after, first)
        hits: list[query.Hit] = []
        last: dict[str, Any] = {}
        for doc in docs:
            data = _raw(doc)
            if check is not None and not check(data):
                continue
            if len(hits) == filters.limit:
                return query.Page(hits, query.encode_cursor(_moment(last.get("time")), last["_id"]))
            hits.append(_hit(doc, data))
            last = doc
        return query.Page(hits)

    def search_calls(self, filters: query.Filters) -> query.Page:
        return self._search("call-log", filters)

    def search_messages(self, filters: query.Filters) -> query.Page:
        return self._search("message-store", filters)

    # --- details ------------------------------------------------------------------------------

    def _get(self, stream: str, account: str, key: str | int) -> dict[str, Any] | None:
        """The record document of ``key`` (an int and a str key are two documents: try both)."""
        forms: list[str | int] = [key]
        text = str(key)
        if isinstance(key, int):
            forms.append(text)
        elif text.lstrip("-").isdigit():
            forms.append(int(text))
        docs = self.client.fetch([self._doc_id(stream, account, k) for k in forms])
        for k in forms:
            doc = docs.get(self._doc_id(stream, account, k))
            if doc is not None and doc.get("kind") == "record":
                return doc
        return None

    def call(self, account: str, call_id: str) -> query.Detail | None:
        doc = self._get("call-log", account, call_id)
        if doc is None:
            return None
        data = _raw(doc)
        binaries: list[query.Binary] = []
        rec_id = (data.get("recording") or {}).get("id") if isinstance(data.get("recording"), Mapping) else None
        if rec_id is not None:
            rec = self._get("recording", account, str(rec_id))
            if rec is not None:
                binaries = query.binaries_from_archive(rec.get("archive"))
        legs = [leg for leg in data.get("legs") or [] if isinstance(leg, dict)]
        return query.Detail(hit=_hit(doc, data), raw=data, legs=legs, binaries=binaries)

    def message(self, account: str, message_id: int) -> query.Detail | None:
        doc = self._get("message-store", account, message_id)
        if doc is None:
            return None
        data = _raw(doc)
        return query.Detail(hit=_hit(doc, data), raw=data,
                      binaries=query.binaries_from_archive(doc.get("archive"), query.attachment_names(data, doc.get("archive"))),
                      conversation_id=query.conversation_of(data))

    def thread(self, account: str, conversation_id: str, limit: int = 200) -> list[query.Hit]:
        """The account's messages (the ``[stream, account]`` index) whose raw JSON names the
        conversation, checked exactly on the parsed JSON. The documents have no typed conversation
        field: the server reads every message of the account (docs/browse.md)."""
        conds: list[dict[str, Any]] = [{"stream": "message-store"}, {"account": account},
                 {"raw": {"$regex": _literal(json.dumps(conversation_id, ensure_ascii=False)[1:-1])}}]
        found: list[tuple[str, query.Hit]] = []
        seen = 0
        while True:  # paged by skip: the regex leaves a conversation's messages, a few pages at most
            docs = self.find(conds, "stream-account", CHUNK, order="asc", skip=seen)
            seen += len(docs)
            for doc in docs:
                data = _raw(doc)
                if query.conversation_of(data) == conversation_id:
                    found.append((doc.get("time") or "", _hit(doc, data)))
            if len(docs) < CHUNK:
                break
        return [hit for _, hit in sorted(found, key=lambda th: th[0])[:limit]]

    # --- coverage -----------------------------------------------------------------------------

    def _keys(self, since: datetime, until: datetime) -> Iterator[tuple[str, dict[str, Any]]]:
        fields = ["_id", "time", "account", "key"]
        for stream in STREAMS:
            span = (_couch_time(since), _couch_time(until))
            for doc in self._walk([{"stream": stream}], "stream-time", span, None, CHUNK, fields):
                yield stream, doc

    def days(self, since: datetime, until: datetime) -> list[query.DayCount]:
        """Records per day and stream, counted from the ``[stream, time]`` index's rows (Mango has no
        aggregation; each row is four short fields)."""
        counts: dict[tuple[str, str], int] = {}
        for stream, doc in self._keys(since, until):
            day = (doc["time"] or "")[:10]
            counts[(day, stream)] = counts.get((day, stream), 0) + 1
        return [query.DayCount(day, stream, n) for (day, stream), n in sorted(counts.items())]

    def day_keys(self, since: datetime, until: datetime) -> Iterator[tuple[str, str, str, str]]:
        for stream, doc in self._keys(since, until):
            yield stream, doc.get("account") or "", str(doc.get("key")), (doc["time"] or "")[:10]


#: The sink's Mango indexes by name (plugins/sinks/couchdb/documents.py INDEXES).
INDEXES: dict[str, tuple[str, ...]] = {
    "stream-time": ("stream", "time"),
    "stream-account": ("stream", "account"),
    "direction": ("stream", "direction", "time"),
    "type": ("stream", "type", "time"),
    "extension": ("extension_id", "time"),
    "from-e164": ("from_e164", "time"),
    "to-e164": ("to_e164", "time"),
}


def _raw_narrowing(filters: query.Filters, stream: str, typed_ext: bool) -> list[dict[str, Any]]:
    """``$regex`` conditions on the ``raw`` text that every record matching the JSON-only filters
    passes (a superset: the exact test is on the parsed JSON), so the server sends fewer documents."""
    out = []
    if filters.name and (run := query.raw_run(filters.name)):
        out.append({"raw": {"$regex": _caseless(run)}})
    if stream == "call-log" and filters.has_recording:
        out.append({"raw": {"$regex": '"recording"'}})
    if stream != "call-log" and filters.extension and not typed_ext:
        out.append({"raw": {"$regex": '"extensionId"'}})
    return out


_SPECIAL = set(".^$*+?()[]{}|\\")


def _caseless(text: str) -> str:
    """A regex matching ASCII ``text`` with A-Z in either case (:func:`query.fold`), in the syntax
    Erlang (CouchDB) and JavaScript (PouchDB) share: ``[aA]`` per letter instead of an inline
    ``(?i)`` flag, which JavaScript lacks."""
    return "".join(f"[{ch.lower()}{ch.upper()}]" if ch.isascii() and ch.isalpha() else
                   "\\" + ch if ch in _SPECIAL else ch for ch in text)


def _literal(text: str) -> str:
    return "".join("\\" + ch if ch in _SPECIAL else ch for ch in text)


def _couch_time(moment: datetime) -> str:
    """A time as the sink writes ``time``: UTC ISO text with milliseconds (string order is time order)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _moment(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _holds(doc: Mapping[str, Any], cond: Mapping[str, Any]) -> bool:
    """A selector condition of a typed field (a value, or ``{"$in": [...]}``) on a document."""
    ((field, wanted),) = cond.items()
    if isinstance(wanted, dict) and "$in" in wanted:
        return doc.get(field) in wanted["$in"]
    return bool(doc.get(field) == wanted)


def _bytes(doc_id: str) -> bytes:
    """A document id as the index orders ids of one key: its UTF-8 bytes."""
    return doc_id.encode("utf-8", "surrogatepass")


def _position(doc: dict[str, Any]) -> tuple[str, bytes]:
    return doc.get("time") or "", _bytes(doc["_id"])


def _unique(docs: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Merged caller/callee rows: a record of both sides comes twice in a row; keep one."""
    previous = None
    for doc in docs:
        if doc["_id"] != previous:
            yield doc
        previous = doc["_id"]


def _raw(doc: Mapping[str, Any]) -> dict[str, Any]:
    raw = doc.get("raw")
    data = rcetl.json_loads(raw) if isinstance(raw, str) else raw
    return data if isinstance(data, dict) else {}


def _hit(doc: Mapping[str, Any], data: Mapping[str, Any]) -> query.Hit:
    return query.hit_from_json(doc.get("stream") or "", doc.get("account") or "", doc.get("key"),
                         _moment(doc.get("time")), data, bool(doc.get("deleted")))
