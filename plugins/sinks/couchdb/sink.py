"""CouchDB record sink (and attachment blob sink): idempotent ``_bulk_docs`` upserts by natural key.

Upserts: a batch is first sent as new documents in one ``_bulk_docs`` (a backfill costs one request
per batch); the documents that exist come back ``conflict``, without a new revision. Those are read
(``_all_docs`` with ``keys``), every one whose fields are already equal is left out (a re-run adds
no revision), and the rest are sent again with their ``_rev``; documents that conflict again
(another writer) are read again, up to eight rounds. Attachments and the ``binaries`` map of a
document are carried over on update, so a record rewrite never drops its binaries.

Binaries: the engine stores a record's binaries before the record. Up to ``inline_max_bytes`` a
binary becomes an attachment of its *record's* document, sent inline (base64) with its SHA-256 in
one revision: atomic, and one replication unit holds the record and its files. Larger binaries
(long recordings) are streamed with a standalone attachment PUT to a document of their own
(``blob:<id>``): memory stays bounded (inline means the whole file, base64, in memory), and a record
update never carries the large attachment's revision history with it. A streamed upload is then
checked against the server's MD5 digest and completed by a second revision that records the SHA-256;
a document without it is an interrupted upload that the next store replaces.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO

import rcetl

from .. import OptionalBlobs, some
from . import CouchDBConfig
from .client import Conflict, CouchClient, NotFound, path_of
from .documents import (
    INDEXES,
    RECORD_FIELDS,
    _part,
    blob_doc_id,
    doc_id,
    key_of,
    placeholder_body,
    record_body,
    stream_prefix,
)

_CONFLICT_RETRIES = 8
_READ_CHUNK = 1 << 20


class CouchDBRecordSink(OptionalBlobs):
    config_model = CouchDBConfig
    description = "Records as CouchDB documents (Mango-indexed), binaries as attachments (binaries: false: records only)"
    config: CouchDBConfig
    blobs_option = "binaries"  # false: records only, binaries are routed to other sinks

    def __init__(self, name: str, config: rcetl.PluginConfig, ctx: rcetl.RunContext) -> None:
        super().__init__(name, config, ctx)
        c = self.config
        self.client = CouchClient(c.url, c.database, username=c.username, password=c.password,
                                  ca_certs=str(ctx.resolve(c.ca_certs)) if c.ca_certs else None,
                                  verify_tls=c.verify_tls, timeout=c.timeout)

    @property
    def where(self) -> str:
        return self.client.base

    # --- lifecycle ----------------------------------------------------------------------------

    def open(self) -> None:
        try:
            self.client.request("PUT", "")
        except rcetl.PermanentError as exc:
            if "412" not in exc.message and "file_exists" not in exc.message:
                raise
        for name, fields in INDEXES.items():
            self.client.request("POST", "_index", body={"index": {"fields": fields}, "name": name,
                                                        "ddoc": "rcetl", "type": "json"})

    def check(self) -> None:
        self.client.json("GET", "", server=True)
        try:
            self.client.json("GET", "")
        except NotFound:
            raise rcetl.ConfigError(f"sink {self.name!r}: no database {self.config.database!r} at "
                                    f"{self.client.server}", hint="run once to create it, or check `database:`"
                                    ) from None

    def close(self) -> None:
        self.client.close()

    # --- records ------------------------------------------------------------------------------

    def write(self, records: Sequence[rcetl.ArchivedRecord]) -> int:
        latest: dict[str, dict[str, Any]] = {}
        for ar in records:  # every body is built before any request: an interrupted batch sends nothing
            rec = ar.record
            if isinstance(rec.key, bool) or not isinstance(rec.key, (int, str)):
                raise rcetl.PermanentError(f"record {rec.stream}/{rec.key!r}: a key must be an int or a str")
            latest[doc_id(rec.stream, rec.account, rec.key)] = record_body(ar)  # the last version wins
        items = list(latest.items())
        size = self.config.batch_size
        return sum(self._upsert(dict(items[i : i + size])) for i in range(0, len(items), size))

    def _upsert(self, bodies: dict[str, dict[str, Any]]) -> int:
        changed = 0
        # First round: every document as new, no revision read. New documents (a backfill, most of
        # an incremental run) are written in one request; an existing one comes back `conflict`
        # without a new revision, and only those are read and compared in the next rounds.
        current: dict[str, dict[str, Any]] | None = None
        for _ in range(_CONFLICT_RETRIES):
            docs = []
            for id_, body in bodies.items():
                cur = current.get(id_) if current is not None else None
                if cur is not None and all(cur.get(f) == body[f] for f in RECORD_FIELDS):
                    continue  # unchanged: no new revision
                # Keep what the sink does not own (attachments, the binaries map, a user's fields).
                docs.append({**cur, **body} if cur is not None else {"_id": id_, **body})
            if not docs:
                return changed
            results = self.client.bulk_docs(docs)
            conflicts = [r["id"] for r in results if r.get("error") == "conflict"]
            failed = [r for r in results if r.get("error") and r.get("error") != "conflict"]
            if failed:
                raise rcetl.PermanentError(
                    f"CouchDB at {self.where} rejected {some([r['id'] for r in failed], 'document')}: "
                    f"{failed[0].get('error')}: {rcetl.redact(str(failed[0].get('reason')))[:200]}")
            changed += sum(1 for r in results if r.get("ok"))
            if not conflicts:
                return changed
            bodies = {id_: bodies[id_] for id_ in conflicts}
            current = self.client.fetch(list(bodies))
        raise rcetl.TransientError(f"CouchDB at {self.where}: {some(list(bodies), 'document')} kept changing while "
                                   "being written (another writer?)", hint="the batch is retried")

    def _entries(self, stream: str, account: str | None) -> Iterator[tuple[str, dict[str, Any]]]:
        for row in self.client.all_docs(stream_prefix(stream, account), include_docs=True):
            doc = row.get("doc")
            if doc and doc.get("kind") == "record":
                yield row["id"], doc

    def archived(self, stream: str, account: str | None = None) -> Iterator[rcetl.ArchivedEntry]:
        for id_, doc in self._entries(stream, account):
            yield rcetl.ArchivedEntry(stream=stream, key=key_of(id_), account=doc.get("account") or "",
                                      archive=doc.get("archive") or [], deleted=bool(doc.get("deleted")))

    def stored_json(self, record: rcetl.Record) -> dict[str, Any] | None:
        """The API's JSON as stored for ``record`` (None: not stored)."""
        doc = self.client.get_doc(doc_id(record.stream, record.account, record.key))
        return rcetl.json_loads(doc["raw"]) if doc and doc.get("kind") == "record" else None


class _Reader:
    """Counts and hashes (SHA-256 and MD5, CouchDB's digest) the bytes requests streams out."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw, self.size = raw, 0
        self.sha, self.md5 = hashlib.sha256(), hashlib.md5()

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n if n and n > 0 else _READ_CHUNK)
        self.sha.update(data)
        self.md5.update(data)
        self.size += len(data)
        return data


class _Download:
    """A stored attachment opened for reading; closing it releases the connection."""

    def __init__(self, resp: Any) -> None:
        self._resp = resp
        self._raw = resp.raw
        self._raw.decode_content = True

    def read(self, n: int = -1) -> bytes:
        return self._raw.read(None if n is None or n < 0 else n)

    def close(self) -> None:
        self._resp.close()

    def __enter__(self) -> _Download:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _md5_digest(md5: Any) -> str:
    return "md5-" + base64.b64encode(md5.digest()).decode()


class CouchDBArchiveSink(CouchDBRecordSink, rcetl.BlobSink):
    """Records and binaries in one CouchDB database (``binaries: true``, the default)."""

    def location(self, doc: str, attachment: str) -> str:
        """The attachment's own URL (without credentials): where ``rcetl verify`` reads it back."""
        return f"{self.client.base}/{path_of(doc, attachment)}"

    def _stored(self, doc: dict[str, Any], blob_id: str, skipped: bool) -> rcetl.StoredBlob | None:
        meta = (doc.get("binaries") or {}).get(blob_id)
        if not meta or meta.get("attachment") not in (doc.get("_attachments") or {}):
            return None
        return rcetl.StoredBlob(sink=self.name, location=self.location(doc["_id"], meta["attachment"]),
                                size=meta["size"], sha256=meta["sha256"], content_type=meta.get("content_type"),
                                skipped=skipped)

    def _existing(self, doc: dict[str, Any], blob: rcetl.SpooledBlob) -> rcetl.StoredBlob | None:
        stored = self._stored(doc, blob.ref.blob_id, skipped=True)
        if stored is not None and stored.sha256 != blob.sha256:
            raise rcetl.ConflictError(
                f"{blob.ref.blob_id} is already in CouchDB ({stored.location}) with SHA-256 {stored.sha256}, "
                f"not {blob.sha256}",
                hint="a blob id names one content; delete the stored attachment if the source really changed it")
        return stored

    def store(self, blob: rcetl.SpooledBlob) -> rcetl.StoredBlob:
        if blob.record is not None and blob.size <= self.config.inline_max_bytes:
            return self._store_inline(blob)
        return self._store_streamed(blob)

    def _meta(self, blob: rcetl.SpooledBlob, attachment: str) -> dict[str, Any]:
        return {"sha256": blob.sha256, "size": blob.size, "attachment": attachment, "kind": blob.ref.kind,
                "content_type": blob.content_type or blob.ref.content_type or "application/octet-stream"}

    def _store_inline(self, blob: rcetl.SpooledBlob) -> rcetl.StoredBlob:
        rec = blob.record
        assert rec is not None
        with blob.open() as fh:
            data = fh.read()
        if (hashlib.sha256(data).hexdigest(), len(data)) != (blob.sha256, blob.size):
            raise rcetl.IntegrityError(f"{blob.ref.blob_id}: the spool file does not hold the {blob.size} bytes "
                                       f"with SHA-256 {blob.sha256} it was downloaded as; nothing stored")
        id_, attachment = doc_id(rec.stream, rec.account, rec.key), _part(blob.ref.blob_id)
        meta = self._meta(blob, attachment)
        encoded = base64.b64encode(data).decode()
        for _ in range(_CONFLICT_RETRIES):
            cur = self.client.get_doc(id_)
            if cur is not None and (found := self._existing(cur, blob)) is not None:
                return found
            doc = cur if cur is not None else {"_id": id_, **placeholder_body(rec)}
            doc["_attachments"] = {**(doc.get("_attachments") or {}),
                                   attachment: {"content_type": meta["content_type"], "data": encoded}}
            doc["binaries"] = {**(doc.get("binaries") or {}), blob.ref.blob_id: meta}
            try:
                self.client.request("PUT", path_of(id_), body=doc)
            except Conflict:
                continue  # a concurrent writer (this binary, or another of the record): read again
            try:
                doc = self._check_digest(id_, attachment, hashlib.md5(data), blob)
            except rcetl.IntegrityError:
                self._drop_binary(id_, blob.ref.blob_id, attachment)  # never leave wrong bytes marked good
                raise
            stored = self._stored(doc, blob.ref.blob_id, skipped=False)
            assert stored is not None
            return stored
        raise rcetl.TransientError(f"{blob.ref.blob_id}: document {id_} kept changing while being written")

    def _drop_binary(self, id_: str, blob_id: str, attachment: str) -> None:
        for _ in range(_CONFLICT_RETRIES):
            doc = self.client.get_doc(id_)
            if doc is None:
                return
            doc.get("_attachments", {}).pop(attachment, None)
            doc.get("binaries", {}).pop(blob_id, None)
            try:
                self.client.request("PUT", path_of(id_), body=doc)
                return
            except Conflict:
                continue

    def _check_digest(self, id_: str, attachment: str, md5: Any, blob: rcetl.SpooledBlob) -> dict[str, Any]:
        """The server's MD5 and length of what it stored equal ours (CouchDB computes them on
        receipt); returns the document as it is now."""
        doc = self.client.get_doc(id_) or {}
        stub = (doc.get("_attachments") or {}).get(attachment) or {}
        if stub.get("digest") != _md5_digest(md5) or stub.get("length") != blob.size:
            raise rcetl.IntegrityError(f"{blob.ref.blob_id}: CouchDB holds {stub.get('length')} bytes with "
                                       f"{stub.get('digest')} at {id_}, not the {blob.size} bytes sent")
        return doc

    def _store_streamed(self, blob: rcetl.SpooledBlob) -> rcetl.StoredBlob:
        id_, attachment = blob_doc_id(blob.ref.blob_id), "content"
        meta = self._meta(blob, attachment)
        for _ in range(_CONFLICT_RETRIES):
            cur = self.client.get_doc(id_)
            if cur is not None and (found := self._existing(cur, blob)) is not None:
                return found
            if cur is not None:
                # Uploaded but not completed: another writer's upload in flight, or a killed run's.
                # Wait for it to complete; past the wait it is abandoned and this upload replaces it.
                cur = self._await_other_writer(id_, blob)
                if cur is not None and (found := self._existing(cur, blob)) is not None:
                    return found
            if cur is None:
                # The document first (a bare attachment PUT cannot revive a deleted document): its
                # ``started`` tells other writers an upload is in flight.
                try:
                    rev = self.client.json("PUT", path_of(id_), body={**placeholder_body(None),
                                                                      "started": time.time()})["rev"]
                except Conflict:
                    continue
            else:
                rev = cur["_rev"]
            params = {"rev": rev}
            with blob.open() as fh:
                reader = _Reader(fh)
                try:
                    rev = self.client.json("PUT", path_of(id_, attachment), data=reader, params=params, headers={
                        "Content-Type": meta["content_type"], "Content-Length": str(blob.size)})["rev"]
                except Conflict:
                    continue
            if (reader.sha.hexdigest(), reader.size) != (blob.sha256, blob.size):
                self.client.request("DELETE", path_of(id_), params={"rev": rev})
                raise rcetl.IntegrityError(f"{blob.ref.blob_id}: read {reader.size} bytes with SHA-256 "
                                           f"{reader.sha.hexdigest()} from the spool, which had {blob.size} "
                                           f"bytes with {blob.sha256}; nothing kept")
            doc = self._check_digest(id_, attachment, reader.md5, blob)
            body = {**doc, **placeholder_body(None), "binaries": {blob.ref.blob_id: meta}}
            if blob.record is not None:
                body["record"] = doc_id(blob.record.stream, blob.record.account, blob.record.key)
            try:
                self.client.request("PUT", path_of(id_), body=body)
            except Conflict:
                continue
            stored = self._stored(body, blob.ref.blob_id, skipped=False)
            assert stored is not None
            return stored
        raise rcetl.TransientError(f"{blob.ref.blob_id}: document {id_} kept changing while being written")

    def _await_other_writer(self, id_: str, blob: rcetl.SpooledBlob, timeout: float = 20.0) -> dict | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(0.05)
            cur = self.client.get_doc(id_)
            if cur is None or self._stored(cur, blob.ref.blob_id, skipped=True) is not None:
                return cur
        return self.client.get_doc(id_)

    def stat(self, blob_ref: rcetl.BlobRef, record: rcetl.Record | None = None) -> rcetl.StoredBlob | None:
        ids = [doc_id(record.stream, record.account, record.key)] if record is not None else []
        for id_ in [*ids, blob_doc_id(blob_ref.blob_id)]:
            doc = self.client.get_doc(id_)
            if doc is not None and (stored := self._stored(doc, blob_ref.blob_id, skipped=True)) is not None:
                return stored
        return None

    def _split(self, location: str) -> tuple[str, str]:
        from urllib.parse import unquote

        prefix = self.client.base + "/"
        if not location.startswith(prefix) or "/" not in location[len(prefix):]:
            raise rcetl.PermanentError(f"{location!r} is not an attachment of this sink's database ({prefix})")
        doc, attachment = location[len(prefix):].rsplit("/", 1)
        return unquote(doc), unquote(attachment)

    def open_stored(self, location: str) -> BinaryIO:
        doc, attachment = self._split(location)
        try:
            resp = self.client.request("GET", path_of(doc, attachment), stream=True,
                                       headers={"Accept": "*/*"})
        except NotFound:
            raise FileNotFoundError(location) from None
        return _Download(resp)  # type: ignore[return-value]

    def stat_location(self, location: str) -> rcetl.StoredBlob | None:
        doc_name, attachment = self._split(location)
        doc = self.client.get_doc(doc_name)
        if doc is None:
            return None
        for blob_id, meta in (doc.get("binaries") or {}).items():
            if meta.get("attachment") == attachment:
                return self._stored(doc, blob_id, skipped=True)
        return None
