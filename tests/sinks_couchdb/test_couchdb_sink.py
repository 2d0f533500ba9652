"""What the contract suite does not see: no new revision on a re-run, ``_rev`` conflicts retried,
binaries kept across record updates, Mango indexes usable, exact ids on a JavaScript server, an
abandoned streamed upload replaced, credentials kept out of locations."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import pytest

import rcetl
from rcetl.plugins.sinks.couchdb import CouchDBConfig
from rcetl.plugins.sinks.couchdb.documents import INDEXES, blob_doc_id, doc_id
from rcetl.plugins.sinks.couchdb.sink import CouchDBArchiveSink
from rcetl.testing import load_dataset, make_context

from .conftest import unique_db


@pytest.fixture
def sink(couchdb_url: str, tmp_path: Path):
    s = CouchDBArchiveSink("couch", CouchDBConfig(url=couchdb_url, database=unique_db(), batch_size=7),
                           make_context(tmp_path))
    s.open()
    yield s
    s.client.request("DELETE", "")
    s.close()


def archived_batch(sink: CouchDBArchiveSink, tmp_path: Path) -> list[rcetl.ArchivedRecord]:
    data = load_dataset()
    out = []
    for rec in data.records:
        results = []
        for ref in rec.blobs:
            body = data.blobs[ref.blob_id]
            path = tmp_path / f"{len(out)}-{ref.blob_id}"
            path.write_bytes(body)
            stored = sink.store(rcetl.SpooledBlob(ref=ref, path=str(path), size=len(body),
                                                  sha256=hashlib.sha256(body).hexdigest(), record=rec))
            results.append(rcetl.BlobResult(ref=ref, status="stored", size=stored.size, sha256=stored.sha256,
                                            stored=[stored]))
        out.append(rcetl.ArchivedRecord(rec, results))
    return out


def revisions(sink: CouchDBArchiveSink) -> dict[str, str]:
    rows = sink.client.json("GET", "_all_docs")["rows"]
    return {r["id"]: r["value"]["rev"] for r in rows if not r["id"].startswith("_design/")}


def test_a_rerun_adds_no_revision(sink: CouchDBArchiveSink, tmp_path: Path) -> None:
    batch = archived_batch(sink, tmp_path)
    assert sink.write(batch) == len(batch)
    before = revisions(sink)
    assert sink.write(batch) == 0
    assert sink.write(list(reversed(batch))) == 0
    assert revisions(sink) == before


def test_conflicting_revisions_are_read_again_and_retried(sink: CouchDBArchiveSink, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    batch = archived_batch(sink, tmp_path)[:10]
    sink.write(batch)
    changed = [rcetl.ArchivedRecord(rcetl.Record(a.record.stream, a.record.key, {**a.record.data, "x": 1},
                                                 a.record.account, a.record.blobs), a.blobs) for a in batch]
    # Another writer updates every document between our read of the revisions and our _bulk_docs.
    real_fetch, calls = sink.client.fetch, Counter()

    def fetch_then_someone_writes(ids: list[str]) -> dict:
        current = real_fetch(ids)
        calls["fetch"] += 1
        if calls["fetch"] == 1:
            sink.client.bulk_docs([{**doc, "touched_by": "other"} for doc in current.values()])
        return current

    monkeypatch.setattr(sink.client, "fetch", fetch_then_someone_writes)
    assert sink.write(changed) == len(changed)
    assert calls["fetch"] >= 2, "the conflicts were not read again"
    for a in changed:
        assert sink.stored_json(a.record) == a.record.data


def test_a_record_update_keeps_its_attachments(sink: CouchDBArchiveSink, tmp_path: Path) -> None:
    batch = [a for a in archived_batch(sink, tmp_path) if a.blobs]
    sink.write(batch)
    deleted = [rcetl.ArchivedRecord(rcetl.Record(a.record.stream, a.record.key, a.record.data, a.record.account,
                                                 a.record.blobs, True), a.blobs) for a in batch]
    sink.write(deleted)
    data = load_dataset()
    for a in deleted:
        for blob in a.blobs:
            with sink.open_stored(blob.stored[0].location) as fh:
                assert fh.read() == data.blobs[blob.ref.blob_id]
    assert all(e.deleted for s in {a.stream for a in batch} for e in sink.archived(s))


def test_mango_indexes_exist_and_find_by_typed_fields(sink: CouchDBArchiveSink, tmp_path: Path) -> None:
    batch = archived_batch(sink, tmp_path)
    sink.write(batch)
    names = {i["name"] for i in sink.client.json("GET", "_index")["indexes"]}
    assert set(INDEXES) <= names
    calls = [a.record for a in batch if a.stream == "call-log"]
    inbound = sum(1 for r in calls if r.data.get("direction") == "Inbound")
    found = sink.client.json("POST", "_find", body={"selector": {"stream": "call-log", "direction": "Inbound"},
                                                   "fields": ["_id", "time"], "limit": 1000})["docs"]
    assert inbound and len(found) == inbound
    assert all(d["time"].endswith("Z") and len(d["time"]) == 24 for d in found)
    # A caller's number, written the way people type it, finds their calls through from_e164.
    call = next(r for r in calls if str((r.data.get("from") or {}).get("phoneNumber", "")).startswith("+1"))
    digits = call.data["from"]["phoneNumber"][2:]
    typed = f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"
    want = {doc_id(r.stream, r.account, r.key) for r in calls
            if (r.data.get("from") or {}).get("phoneNumber") == call.data["from"]["phoneNumber"]}
    by_number = sink.client.json("POST", "_find", body={
        "selector": {"from_e164": rcetl.normalize_phone(typed)}, "fields": ["_id"], "limit": 1000})["docs"]
    assert {d["_id"] for d in by_number} == want


def test_ids_above_2_53_are_exact_though_the_server_rounds_numbers(sink: CouchDBArchiveSink,
                                                                  tmp_path: Path) -> None:
    big = next(r for r in load_dataset().records if isinstance(r.key, int) and r.key > 2**53 and float(r.key) != r.key)
    sink.write([rcetl.ArchivedRecord(big)])
    assert sink.stored_json(big)["id"] == big.key
    assert [e.key for e in sink.archived(big.stream)] == [big.key]
    # Why raw is text: a JavaScript server (PouchDB) keeps JSON numbers as doubles.
    probe = json.loads(sink.client.request("PUT", "probe", body={"n": big.key}).content)
    number = json.loads(sink.client.request("GET", "probe").content)["n"]
    assert probe["ok"] and (number == big.key or number == float(big.key))


def test_an_abandoned_streamed_upload_is_replaced(sink: CouchDBArchiveSink, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    data = load_dataset()
    rec = next(r for r in data.records if r.blobs)
    ref = rec.blobs[0]
    body = data.blobs[ref.blob_id]
    # What a run killed mid-upload leaves: the document and part of the attachment, no metadata.
    id_ = blob_doc_id(ref.blob_id)
    rev = sink.client.json("PUT", id_, body={"rcetl": 1, "kind": "binary", "started": 0})["rev"]
    sink.client.request("PUT", f"{id_}/content", data=body[: len(body) // 2], params={"rev": rev},
                        headers={"Content-Type": "application/octet-stream"})
    monkeypatch.setattr(sink, "_await_other_writer", lambda i, b, timeout=0.1:
                        CouchDBArchiveSink._await_other_writer(sink, i, b, timeout=0.1))
    sink.config.inline_max_bytes = 0
    path = tmp_path / "blob"
    path.write_bytes(body)
    stored = sink.store(rcetl.SpooledBlob(ref=ref, path=str(path), size=len(body),
                                          sha256=hashlib.sha256(body).hexdigest(), record=rec))
    assert not stored.skipped
    with sink.open_stored(stored.location) as fh:
        assert fh.read() == body


def test_url_credentials_never_reach_locations_or_messages(couchdb_url: str, tmp_path: Path) -> None:
    url = couchdb_url.replace("://", "://archiver:s3cret-pw@", 1) if "@" not in couchdb_url else couchdb_url
    sink = CouchDBArchiveSink("couch", CouchDBConfig(url=url, database=unique_db()), make_context(tmp_path))
    assert "s3cret-pw" not in sink.client.server and "s3cret-pw" not in sink.where
    assert sink.client.session.auth is not None
    assert "s3cret-pw" not in rcetl.redact(f"failed at {url}")
    assert doc_id("call-log", "1", "a:b") != doc_id("call-log", "1:a", "b")


class _GuardedCouch:
    """A TLS endpoint (trustme CA) in front of the test server that demands Basic auth, as a real
    CouchDB with users does (PouchDB Server in memory has no users: the proxy plays that part)."""

    def __init__(self, upstream: str, folder: Path, user: str, password: str) -> None:
        import base64
        import ssl

        import trustme

        from tests.servers import ForwardingProxy

        ca = trustme.CA()
        self.ca_file = folder / "ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_file))
        expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.requests = 0

        class Proxy(ForwardingProxy):
            def intercept(inner, request, body, headers):  # noqa: ANN001, ANN202, N805
                self.requests += 1
                if request.headers.get("Authorization") != expected:
                    request.send_response(401)
                    payload = b'{"error":"unauthorized","reason":"Name or password is incorrect (proxy)."}'
                    request.send_header("Content-Length", str(len(payload)))
                    request.end_headers()
                    request.wfile.write(payload)
                    return None
                # The check is done here; the server behind has no users and must not see one.
                return body, {k: v for k, v in headers.items() if k.lower() != "authorization"}

        self.proxy = Proxy(upstream)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert("127.0.0.1").configure_cert(context)
        self.proxy.server.socket = context.wrap_socket(self.proxy.server.socket, server_side=True)
        self.url = self.proxy.url.replace("http://", "https://")

    def close(self) -> None:
        self.proxy.close()


def test_tls_with_a_private_ca_and_credentials_from_the_url(couchdb_url: str, tmp_path: Path) -> None:
    guarded = _GuardedCouch(couchdb_url, tmp_path, "archiver", "s3cret-pw")
    try:
        url = guarded.url.replace("://", "://archiver:s3cret-pw@", 1)
        ok = CouchDBArchiveSink("couch", CouchDBConfig(url=url, database=unique_db(), ca_certs=str(guarded.ca_file)),
                                make_context(tmp_path))
        ok.open()
        ok.check()
        record = load_dataset().records[0]
        ok.write([rcetl.ArchivedRecord(record)])
        assert ok.stored_json(record) == record.data
        assert guarded.requests > 0, "the requests did not go through the TLS endpoint"
        ok.client.request("DELETE", "")

        # Without the private CA the certificate is refused, with a hint naming ca_certs.
        untrusted = CouchDBArchiveSink("couch", CouchDBConfig(url=url, database=unique_db()), make_context(tmp_path))
        with pytest.raises(rcetl.ConfigError) as info:
            untrusted.check()
        assert "ca_certs" in (info.value.hint or "")

        # A wrong password is a configuration error with a hint, and the password appears nowhere.
        wrong = guarded.url.replace("://", "://archiver:wrong-password-9@", 1)
        refused = CouchDBArchiveSink("couch", CouchDBConfig(url=wrong, database=unique_db(),
                                                            ca_certs=str(guarded.ca_file)), make_context(tmp_path))
        with pytest.raises(rcetl.ConfigError) as info:
            refused.open()
        text = f"{info.value.message} {info.value.hint}"
        assert "password" in text and "wrong-password-9" not in text
    finally:
        guarded.close()


def test_bytes_the_server_got_wrong_are_refused_and_not_kept(sink: CouchDBArchiveSink, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's MD5 of what it stored must equal ours. Faked here (the one mock: a server that
    corrupts an attachment in memory cannot be made to), by one flipped bit in the digest it reports."""
    data = load_dataset()
    rec = next(r for r in data.records if r.blobs)
    ref = rec.blobs[0]
    body = data.blobs[ref.blob_id]
    path = tmp_path / "blob"
    path.write_bytes(body)
    blob = rcetl.SpooledBlob(ref=ref, path=str(path), size=len(body), sha256=hashlib.sha256(body).hexdigest(),
                             record=rec)
    real_get = sink.client.get_doc

    def corrupted(id_: str) -> dict | None:
        doc = real_get(id_)
        for stub in ((doc or {}).get("_attachments") or {}).values():
            stub["digest"] = stub["digest"][:-3] + ("A==" if not stub["digest"].endswith("A==") else "B==")
        return doc

    monkeypatch.setattr(sink.client, "get_doc", corrupted)
    with pytest.raises(rcetl.IntegrityError):
        sink._store_inline(blob)
    monkeypatch.setattr(sink.client, "get_doc", real_get)
    assert sink.stat(ref, rec) is None, "an attachment the server got wrong was left marked as stored"
    assert not sink.store(blob).skipped  # the next run stores it again


def test_a_time_outside_the_calendar_in_utc_is_no_time(sink: CouchDBArchiveSink) -> None:
    """0001-01-01T00:30+01:00 is a valid ISO time whose UTC instant falls before year 1: the typed
    ``time`` is null (``raw`` keeps the text), not an OverflowError that fails the whole batch."""
    data = {"id": "early", "startTime": "0001-01-01T00:30:00+01:00", "direction": "Inbound"}
    assert sink.write([rcetl.ArchivedRecord(rcetl.Record("call-log", "early", data, account="1"))]) == 1
    doc = sink.client.get_doc(doc_id("call-log", "1", "early"))
    assert doc is not None and (doc["time"], doc["direction"]) == (None, "Inbound")
    assert rcetl.json_loads(doc["raw"]) == data


def test_a_message_documents_its_mailbox_extension_from_its_uri() -> None:
    # RingCentral's message JSON names the mailbox's extension only in its uri (the message schema
    # has no extensionId); a call names it in extension.id.
    from rcetl.plugins.sinks.couchdb.documents import typed_fields

    message = {"id": 9007199254769054, "type": "SMS", "direction": "Inbound",
               "uri": "https://platform.ringcentral.com/restapi/v1.0/account/37439510/extension/"
                      "1234567890/message-store/9007199254769054",
               "from": {"phoneNumber": "+16505550123"}, "to": [{"phoneNumber": "+16505550188"}]}
    assert typed_fields("message-store", message)["extension_id"] == "1234567890"
    assert typed_fields("message-store", {**message, "uri": "https://x/restapi/v1.0/account/~/message-store/1"}
                        )["extension_id"] is None
    call = {"id": "abc", "extension": {"id": 62, "uri": "https://x/restapi/v1.0/account/1/extension/62"},
            "uri": "https://x/restapi/v1.0/account/1/extension/99/call-log/abc"}
    assert typed_fields("call-log", call)["extension_id"] == "62"
