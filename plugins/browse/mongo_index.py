"""Browse queries over the ``mongodb`` sink's collections (one per stream, the API JSON under ``data``).

Phone searches use the sink's ``(from_e164, occurred_at)`` and ``(to_e164, occurred_at)`` indexes;
every list is sorted by ``occurred_at`` then key, paged by a keyset cursor like the SQL index.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

from .query import (
    DayCount,
    Detail,
    Filters,
    Hit,
    Page,
    attachment_names,
    binaries_from_archive,
    conversation_of,
    decode_cursor,
    encode_cursor,
    hit_from_json,
)


class MongoArchiveIndex:
    """:class:`~rcetl.plugins.browse.query.ArchiveIndex` over a ``MongoRecordSink``'s database."""

    def __init__(self, sink: Any) -> None:
        from rcetl.plugins.sinks.mongodb.sink import bson_key, collection_name

        self._bson_key = bson_key
        prefix = sink.config.collection_prefix
        self.calls = sink.db[collection_name(prefix, "call-log")]
        self.recordings = sink.db[collection_name(prefix, "recording")]
        self.messages = sink.db[collection_name(prefix, "message-store")]

    def _page(self, coll: Any, query: dict[str, Any], filters: Filters, make: Any) -> Page:
        if filters.cursor:
            at, ident = decode_cursor(filters.cursor)
            if at is not None:
                key: Any = int(ident) if ident.lstrip("-").isdigit() and coll is self.messages else ident
                at = at if at.tzinfo else at.replace(tzinfo=timezone.utc)
                query = {"$and": [query, {"$or": [{"occurred_at": {"$lt": at}},
                                                  {"occurred_at": at, "key": {"$lt": key}}]}]}
        docs = list(coll.find(query, {"data.legs": 0}).sort([("occurred_at", -1), ("key", -1)])
                    .limit(filters.limit + 1))
        hits = [make(d) for d in docs[: filters.limit]]
        more = len(docs) > filters.limit
        return Page(hits, encode_cursor(hits[-1].time, hits[-1].id) if more and hits else None)

    def _common(self, filters: Filters) -> list[dict[str, Any]]:
        q: list[dict[str, Any]] = []
        if filters.phone:
            q.append({"$or": [{"from_e164": filters.phone}, {"to_e164": filters.phone}]})
        if filters.name:
            pattern = re.compile(re.escape(filters.name), re.IGNORECASE)
            q.append({"$or": [{"data.from.name": pattern}, {"data.to.name": pattern}]})
        if filters.direction:
            q.append({"data.direction": filters.direction})
        if filters.since or filters.until:
            span: dict[str, Any] = {}
            if filters.since:
                span["$gte"] = filters.since
            if filters.until:
                span["$lt"] = filters.until
            q.append({"occurred_at": span})
        return q

    def search_calls(self, filters: Filters) -> Page:
        q = self._common(filters)
        if filters.extension:
            q.append({"data.extension.id": {"$in": [int(filters.extension), filters.extension]}})
        if filters.call_types():
            q.append({"data.type": {"$in": list(filters.call_types())}})
        if filters.result:
            q.append({"data.result": filters.result})
        if filters.has_recording:
            q.append({"data.recording.id": {"$exists": True}})
        return self._page(self.calls, {"$and": q} if q else {}, filters, _call_hit)

    def search_messages(self, filters: Filters) -> Page:
        q = self._common(filters)
        if filters.extension:
            q.append({"data.from.extensionId": {"$in": [int(filters.extension), filters.extension]}})
        if filters.message_types():
            q.append({"data.type": {"$in": list(filters.message_types())}})
        return self._page(self.messages, {"$and": q} if q else {}, filters, _message_hit)

    def call(self, account: str, call_id: str) -> Detail | None:
        doc = self.calls.find_one({"_id": {"account": account, "id": self._bson_key(call_id)}})
        if doc is None:
            return None
        data = doc.get("data") or {}
        rec_id = (data.get("recording") or {}).get("id")
        binaries = []
        if rec_id is not None:
            rec = self.recordings.find_one({"_id": {"account": account, "id": self._bson_key(rec_id)}})
            if rec is not None:
                binaries = binaries_from_archive(rec.get("archive"))
        legs = [leg for leg in data.get("legs") or [] if isinstance(leg, dict)]
        return Detail(hit=_call_hit(doc), raw=data, legs=legs, binaries=binaries)

    def message(self, account: str, message_id: int) -> Detail | None:
        doc = self.messages.find_one({"_id": {"account": account, "id": self._bson_key(message_id)}})
        if doc is None:
            return None
        data = doc.get("data") or {}
        return Detail(hit=_message_hit(doc), raw=data,
                      binaries=binaries_from_archive(doc.get("archive"), attachment_names(data, doc.get("archive"))),
                      conversation_id=conversation_of(data))

    def thread(self, account: str, conversation_id: str, limit: int = 200) -> list[Hit]:
        ids: list[Any] = [conversation_id]
        if conversation_id.isdigit():
            ids.append(int(conversation_id))
        docs = self.messages.find({"account": account, "$or": [{"data.conversation.id": {"$in": ids}},
                                                               {"data.conversationId": {"$in": ids}}]})
        return [_message_hit(d) for d in docs.sort("occurred_at", 1).limit(limit)]

    def days(self, since: datetime, until: datetime) -> list[DayCount]:
        out = []
        for stream, coll in (("call-log", self.calls), ("message-store", self.messages), ("recording", self.recordings)):
            pipeline = [{"$match": {"occurred_at": {"$gte": since, "$lt": until}}},
                        {"$group": {"_id": {"$dateToString": {"format": "%Y-%m-%d", "date": "$occurred_at"}},
                                    "n": {"$sum": 1}}}]
            out += [DayCount(r["_id"], stream, int(r["n"])) for r in coll.aggregate(pipeline)]
        return out

    def day_keys(self, since: datetime, until: datetime) -> Iterator[tuple[str, str, str, str]]:
        for stream, coll in (("call-log", self.calls), ("message-store", self.messages), ("recording", self.recordings)):
            for doc in coll.find({"occurred_at": {"$gte": since, "$lt": until}},
                                 {"account": 1, "key": 1, "occurred_at": 1, "_id": 0}):
                yield stream, doc.get("account", ""), str(doc.get("key")), doc["occurred_at"].strftime("%Y-%m-%d")


def _call_hit(doc: dict[str, Any]) -> Hit:
    return hit_from_json("call-log", doc.get("account", ""), doc.get("key"), doc.get("occurred_at"),
                         doc.get("data") or {}, bool(doc.get("deleted")))


def _message_hit(doc: dict[str, Any]) -> Hit:
    return hit_from_json("message-store", doc.get("account", ""), doc.get("key"), doc.get("occurred_at"),
                         doc.get("data") or {}, bool(doc.get("deleted")))
