"""MongoDB record sink (and GridFS blob sink): idempotent bulk upserts keyed on the natural key.

A document is ``{_id: {account, id}, account, key, stream, deleted, occurred_at, archive, data}``
where ``data`` is the API's JSON exactly. Integer keys are stored as BSON Int64 whatever their size,
so a message id is one type in every document and never passes through a double.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from datetime import timezone
from typing import Any, BinaryIO

import pymongo
from bson import Int64
from bson.errors import BSONError
from gridfs.errors import FileExists
from pymongo import ReplaceOne
from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    DuplicateKeyError,
    OperationFailure,
    PyMongoError,
)

import rcetl

from .. import OptionalBlobs, some
from . import MongoSinkConfig

# Known streams get readable collection names; any other stream gets "<prefix>stream_<name>".
COLLECTIONS = {"call-log": "call_log", "recording": "recordings", "message-store": "messages"}

# Fields people query, per collection (ascending; `account` is on all). A tuple is a compound
# index: a phone number within a date range (`occurred_at` is the call's start or the message's
# creation time), served without a collection scan.
INDEXES: dict[str, list[str | tuple[str, ...]]] = {
    "call_log": ["data.startTime", "data.direction", "data.type", "data.extension.id", "data.result",
                 ("from_e164", "occurred_at"), ("to_e164", "occurred_at"), ("numbers_e164", "occurred_at")],
    "recordings": ["data.call.startTime", "data.call.id", "data.call.extension.id",
                   ("from_e164", "occurred_at"), ("to_e164", "occurred_at")],
    "messages": ["data.creationTime", "data.conversationId", "data.type", "data.direction", "data.availability",
                 ("from_e164", "occurred_at"), ("to_e164", "occurred_at"), ("numbers_e164", "occurred_at")],
}

# Server error codes worth a retry: interrupted, shutting down, not primary, stepped down, write conflict.
_TRANSIENT_CODES = {6, 7, 89, 91, 112, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436}


def collection_name(prefix: str, stream: str) -> str:
    if stream in COLLECTIONS:
        return prefix + COLLECTIONS[stream]
    return f"{prefix}stream_{re.sub(r'[^A-Za-z0-9_]', '_', stream)}"


def _e164(party: Any) -> str | None:
    number = party.get("phoneNumber") if isinstance(party, dict) else None
    return rcetl.normalize_phone(number) if isinstance(number, str) else None


def phone_fields(stream: str, data: dict[str, Any]) -> dict[str, Any]:
    """The searchable numbers of a record, in E.164 (the SQL sink's ``from_e164``/``to_e164``).

    ``numbers_e164`` holds every number the record names (each leg of a call, every recipient of
    a message), so one indexed query finds a call a number was transferred into, or a group SMS."""
    if stream == "recording":
        call = found if isinstance(found := data.get("call"), dict) else {}
        return {"from_e164": _e164(call.get("from")), "to_e164": _e164(call.get("to"))}
    to = data.get("to")
    recipients = to if isinstance(to, list) else [to]
    parties = [data.get("from"), *recipients]
    legs = data.get("legs")
    for leg in legs if isinstance(legs, list) else []:
        if isinstance(leg, dict):
            parties += [leg.get("from"), leg.get("to")]
    numbers = [n for n in map(_e164, parties) if n]
    return {"from_e164": _e164(data.get("from")), "to_e164": _e164(recipients[0] if recipients else None),
            "numbers_e164": sorted(set(numbers))}


def bson_key(key: rcetl.Key) -> Any:
    return Int64(key) if isinstance(key, int) and not isinstance(key, bool) else key


def _keys_text(keys: Sequence[tuple[str, rcetl.Key]]) -> str:
    return some([f"{s}/{k!r}" for s, k in keys], "record")


class MongoRecordSink(OptionalBlobs):
    config_model = MongoSinkConfig
    description = "Records into MongoDB collections (one per stream); binaries into GridFS with gridfs: true"
    config: MongoSinkConfig
    blobs_option = "gridfs"  # true: the pipeline routes binaries here too
    _client: pymongo.MongoClient | None = None  # connected on first use

    # --- connection ----------------------------------------------------------------------------

    @property
    def client(self) -> pymongo.MongoClient:
        if self._client is None:
            # Fail within seconds when the server is away (pymongo waits 30 s), unless the URL says otherwise.
            options: dict[str, Any] = {} if "serverselectiontimeoutms" in self.config.url.lower() else {"serverSelectionTimeoutMS": 10_000}
            self._client = pymongo.MongoClient(self.config.url, tz_aware=True, appname="rcetl", **options)
        return self._client

    @property
    def db(self):
        return self.client[self.config.database]

    @property
    def where(self) -> str:
        hosts = ",".join(f"{h}:{p}" for h, p in pymongo.uri_parser.parse_uri(self.config.url)["nodelist"]) \
            if "+srv" not in self.config.url else self.config.url.split("@")[-1].split("/")[0]
        return f"mongodb://{hosts}/{self.config.database}"

    def open(self) -> None:
        try:
            for short, fields in INDEXES.items():
                coll = self.db[self.config.collection_prefix + short]
                coll.create_index("account")
                for field in fields:
                    coll.create_index(list(field) if isinstance(field, tuple) else field)
        except PyMongoError as exc:
            raise self._translate(exc, []) from exc

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def check(self) -> None:
        try:
            self.client.admin.command("ping")
        except PyMongoError as exc:
            auth = isinstance(exc, OperationFailure) and exc.code in (13, 18)
            user = pymongo.uri_parser.parse_uri(self.config.url).get("username") if "+srv" not in self.config.url else None
            hint = (f"check the user {user!r} and its password in the sink's url" if auth
                    else "is the MongoDB server running and reachable from this machine?")
            raise rcetl.RcetlError(f"sink {self.name!r} cannot reach {self.where}: {rcetl.redact(str(exc))[:300]}",
                                   hint=hint) from None

    def _translate(self, exc: Exception, keys: Sequence[tuple[str, rcetl.Key]]) -> rcetl.RcetlError:
        message = rcetl.redact(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)[:300]
        transient = isinstance(exc, ConnectionFailure) or (
            isinstance(exc, OperationFailure) and not isinstance(exc, BulkWriteError)
            and exc.code in _TRANSIENT_CODES
        )
        what = _keys_text(keys) if keys else "the archive"
        if transient:
            return rcetl.TransientError(f"lost MongoDB at {self.where} while writing {what}: {message}",
                                        hint="the batch will be retried; check that the server is up if this persists")
        return rcetl.PermanentError(f"MongoDB at {self.where} rejected {what}: {message}")

    # --- records -------------------------------------------------------------------------------

    def document(self, ar: rcetl.ArchivedRecord) -> dict[str, Any]:
        rec = ar.record
        key = bson_key(rec.key)
        occurred = rec.occurred_at
        if occurred is not None and occurred.tzinfo is None:
            occurred = occurred.replace(tzinfo=timezone.utc)
        doc = {
            "_id": {"account": rec.account, "id": key},
            "account": rec.account,
            "key": key,
            "stream": rec.stream,
            "deleted": bool(rec.deleted or rec.data.get("availability") in ("Deleted", "Purged")
                            or rec.data.get("deleted") is True),
            "occurred_at": occurred,
            "archive": ar.archive_json(),
            "data": rec.data,
        }
        if rec.stream in COLLECTIONS:
            doc.update(phone_fields(rec.stream, rec.data))
        return doc

    def write(self, records: Sequence[rcetl.ArchivedRecord]) -> None:
        by_collection: dict[str, dict[Any, rcetl.ArchivedRecord]] = {}
        for ar in records:
            rec = ar.record
            if isinstance(rec.key, bool) or not isinstance(rec.key, (int, str)):
                raise rcetl.PermanentError(f"record {rec.stream}/{rec.key!r}: a key must be an int or a str")
            # The last version of a record in a batch wins, as with the SQL sink; 42 and "42" differ.
            name = collection_name(self.config.collection_prefix, rec.stream)
            by_collection.setdefault(name, {})[(rec.account, type(rec.key), rec.key)] = ar
        size = self.config.batch_size
        for name, latest in by_collection.items():
            batch = list(latest.values())
            for start in range(0, len(batch), size):
                self._bulk_upsert(name, batch[start : start + size])

    def _bulk_upsert(self, collection: str, chunk: list[rcetl.ArchivedRecord]) -> None:
        keys = [(ar.record.stream, ar.record.key) for ar in chunk]
        try:
            ops = [ReplaceOne({"_id": doc["_id"]}, doc, upsert=True) for doc in map(self.document, chunk)]
            self.db[collection].bulk_write(ops, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if errors and all(e.get("code") in _TRANSIENT_CODES for e in errors):
                raise self._translate(ConnectionFailure(errors[0].get("errmsg", "")), keys) from exc
            bad = [keys[e["index"]] for e in errors if "index" in e] or keys
            raise rcetl.PermanentError(f"MongoDB at {self.where} rejected {_keys_text(bad)}: "
                                       f"{rcetl.redact(errors[0].get('errmsg', '') if errors else str(exc))[:300]}"
                                       ) from exc
        except (BSONError, OverflowError, ValueError) as exc:  # unencodable value, int beyond 64 bits
            raise rcetl.PermanentError(f"cannot store {_keys_text(keys)} in MongoDB: {exc}") from exc
        except PyMongoError as exc:
            raise self._translate(exc, keys) from exc

    def _find(self, stream: str, account: str | None, projection: dict) -> Any:
        query: dict[str, Any] = {"stream": stream}
        if account is not None:
            query["account"] = account
        return self.db[collection_name(self.config.collection_prefix, stream)].find(query, projection)

    def archived(self, stream: str, account: str | None = None) -> Iterator[rcetl.ArchivedEntry]:
        try:
            for doc in self._find(stream, account, {"key": 1, "account": 1, "archive": 1, "deleted": 1}).sort("_id"):
                key = doc["key"]
                yield rcetl.ArchivedEntry(stream=stream, key=int(key) if isinstance(key, int) else key,
                                          account=doc["account"], archive=doc.get("archive") or [],
                                          deleted=bool(doc.get("deleted")))
        except PyMongoError as exc:
            raise self._translate(exc, [(stream, "*")]) from exc

    def count(self, stream: str, account: str | None = None) -> int:
        query: dict[str, Any] = {"stream": stream}
        if account is not None:
            query["account"] = account
        try:
            return self.db[collection_name(self.config.collection_prefix, stream)].count_documents(query)
        except PyMongoError as exc:
            raise self._translate(exc, [(stream, "*")]) from exc


class _HashingReader:
    """Hash and count the bytes GridFS reads, to prove it stored what the engine spooled."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw, self.size, self._sha = raw, 0, hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self._sha.update(data)
        self.size += len(data)
        return data

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()


class MongoArchiveSink(MongoRecordSink, rcetl.BlobSink):
    """Records and binaries in one MongoDB database (``gridfs: true``)."""

    @property
    def bucket_name(self) -> str:
        return f"{self.config.collection_prefix}blobs"

    @property
    def bucket(self):
        import gridfs

        return gridfs.GridFSBucket(self.db, bucket_name=self.bucket_name)

    def location(self, blob_id: str) -> str:
        return f"gridfs://{self.config.database}/{self.bucket_name}/{blob_id}"

    def _stored(self, doc: dict, skipped: bool) -> rcetl.StoredBlob:
        meta = doc.get("metadata") or {}
        return rcetl.StoredBlob(sink=self.name, location=self.location(doc["_id"]), size=doc["length"],
                                sha256=meta.get("sha256", ""), content_type=meta.get("content_type"), skipped=skipped)

    def _files(self):
        return self.db[f"{self.bucket_name}.files"]

    def store(self, blob: rcetl.SpooledBlob) -> rcetl.StoredBlob:
        blob_id = blob.ref.blob_id
        try:
            existing = self._files().find_one({"_id": blob_id})
            if existing is not None and not self._replaces_invalid(existing, blob):
                return self._existing(existing, blob)
            # Chunks without a files document are what an interrupted upload leaves: clear them.
            self.db[f"{self.bucket_name}.chunks"].delete_many({"files_id": blob_id})
            metadata = {"sha256": blob.sha256, "content_type": blob.content_type or blob.ref.content_type,
                        "kind": blob.ref.kind}
            if blob.record is not None:
                metadata.update(stream=blob.record.stream, key=bson_key(blob.record.key), account=blob.record.account)
            with blob.open() as f:
                reader = _HashingReader(f)
                try:
                    self.bucket.upload_from_stream_with_id(blob_id, blob_id, reader, metadata=metadata)
                except (DuplicateKeyError, BulkWriteError, FileExists):
                    # Another worker stored the same blob meanwhile: fine if it holds the same bytes.
                    existing = self._await_other_writer(blob_id)
                    if existing is None:
                        raise rcetl.TransientError(f"concurrent upload of {blob_id} to GridFS; retry") from None
                    return self._existing(existing, blob)
            if (reader.sha256, reader.size) != (blob.sha256, blob.size):
                self.bucket.delete(blob_id)
                raise rcetl.IntegrityError(
                    f"{blob_id}: GridFS read {reader.size} bytes with SHA-256 {reader.sha256}, "
                    f"the spool had {blob.size} bytes with {blob.sha256}")
            return rcetl.StoredBlob(sink=self.name, location=self.location(blob_id), size=reader.size,
                                    sha256=reader.sha256, content_type=metadata["content_type"])
        except PyMongoError as exc:
            raise self._translate(exc, [("blob", blob_id)]) from exc

    def _await_other_writer(self, blob_id: str, timeout: float = 10.0) -> dict | None:
        """The other writer's files document, once its chunks are in (GridFS writes it last)."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            existing = self._files().find_one({"_id": blob_id})
            if existing is not None or time.monotonic() > deadline:
                return existing
            time.sleep(0.05)

    def _replaces_invalid(self, doc: dict, blob: rcetl.SpooledBlob) -> bool:
        """Delete what GridFS holds under this id when it fails the content check and the new bytes
        pass it (the object stores' rule, ``rcetl.content.replaces_invalid``). True once deleted."""
        if (doc.get("metadata") or {}).get("sha256") == blob.sha256:
            return False
        from rcetl.content import replaces_invalid

        with blob.open() as new, self.bucket.open_download_stream(doc["_id"]) as stored:
            if not replaces_invalid(blob.ref, stored, new):
                return False
        self.ctx.logger.warning("%s: GridFS held bytes under %s that fail the content check; replacing them",
                                self.name, doc["_id"])
        self.bucket.delete(doc["_id"])
        return True

    def _existing(self, doc: dict, blob: rcetl.SpooledBlob) -> rcetl.StoredBlob:
        stored = self._stored(doc, skipped=True)
        if stored.sha256 != blob.sha256:
            raise rcetl.ConflictError(
                f"{blob.ref.blob_id} is already in GridFS with SHA-256 {stored.sha256}, not {blob.sha256}",
                hint="a blob id names one content; delete the stored file if the source really changed it")
        return stored

    def stat(self, blob_ref: rcetl.BlobRef, record: rcetl.Record | None = None) -> rcetl.StoredBlob | None:
        doc = self._files().find_one({"_id": blob_ref.blob_id})
        return self._stored(doc, skipped=True) if doc else None

    def open_stored(self, location: str) -> BinaryIO:
        prefix = self.location("")
        if not location.startswith(prefix):
            raise rcetl.PermanentError(f"{location!r} is not in this sink's GridFS bucket ({prefix})")
        return self.bucket.open_download_stream(location[len(prefix):])
