"""End to end, per sink: the sandbox's default data set (the demo's: seed 42, size small) archived by a
real pipeline run into every database and every object store, checked against the ground truth by
reading the stores back; a ``--full-refresh`` re-run changes nothing (no row, no document, no upload);
a record changed at the source is updated in place; a corrupted upload is caught and retried; and
``rcetl verify --json`` is clean on every archive.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import rcetl
from rcetl.sandbox import Sandbox

from ..reliability.archive_check import assert_no_partial_files, check_archive, expected
from ..services import service_url
from .stores import (
    CorruptingS3Proxy,
    Opened,
    SandboxAdmin,
    default_sandbox,
    diff_rows,
    drop_tables,
    dropbox_server,
    dump_mongo,
    dump_sql,
    failed_items,
    files_uploaded,
    run,
    unique,
    verify_clean,
    write_pipeline,
)

# Each test archives the whole small data set two to four times: seconds each, more on a loaded machine.
pytestmark = pytest.mark.slow

STREAMS = ("call-log", "recording", "message-store")


# --- what the ground truth says ------------------------------------------------------------------


def truth_keys(gt: dict[str, Any]) -> dict[str, set[tuple[str, Any]]]:
    """(account, key) per stream, keys typed as the sources type them (message ids are ints)."""
    return {stream: set(keys) for stream, keys in expected(gt).items()}


def odd_big_message(gt: dict[str, Any], availability: str = "Alive") -> dict[str, Any]:
    """A message whose id is above 2^53 and odd: a double cannot hold it, so a float anywhere on the
    way would change it. One in a conversation (an SMS; RingCentral gives faxes and voicemail none),
    so that its conversation id, also above 2^53, is checked too."""
    acct = gt["accounts"][0]
    with_atts = {a["message_id"] for a in acct["attachments"] if a["available"]}
    for msg in acct["messages"]:
        mid = msg["id"]
        if mid > 2**53 and float(mid) != mid and msg["availability"] == availability and mid in with_atts \
                and "conversationId" in msg:
            return msg
    raise AssertionError("the default data set has no odd message id above 2^53 (the sandbox changed?)")


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def assert_exact_counts_and_ids(gt: dict[str, Any], db: rcetl.RecordSink) -> None:
    """The sink's own read API holds every ground-truth key once, with its type, and nothing else."""
    want = truth_keys(gt)
    for stream in STREAMS:
        held = [(e.account, e.key) for e in db.archived(stream)]
        assert len(held) == len(want[stream]), f"{stream}: {len(held)} held, the sandbox has {len(want[stream])}"
        assert set(held) == want[stream], f"{stream}: held ids differ from the ground truth"
        key_type = int if stream == "message-store" else str
        assert all(type(k) is key_type for _, k in held), f"{stream}: a key changed type"


# --- databases -----------------------------------------------------------------------------------


def sql_url(backend: str, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'archive.sqlite'}"
    return service_url({"mysql": "MYSQL", "postgres": "POSTGRES"}[backend])


def sql_rows(db: Any, sql: str, **params: Any) -> list[Any]:
    import sqlalchemy as sa

    with db.engine.connect() as conn:
        return conn.execute(sa.text(sql), params).all()


def as_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, (str, bytes)) else value


def pick_call_to_delete(gt: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """A live call that is the oldest of its extension, strictly: DELETE .../call-log?dateTo=<its start
    + 1 ms> then deletes exactly that call. Returns (the call, dateTo)."""
    by_ext: dict[int, list[dict[str, Any]]] = {}
    for call in gt["accounts"][0]["call_log"]:
        if not call.get("deleted") and (call.get("extension") or {}).get("id") is not None:
            by_ext.setdefault(call["extension"]["id"], []).append(call)
    for calls in by_ext.values():
        calls.sort(key=lambda c: instant(c["startTime"]))
        if len(calls) > 1 and instant(calls[0]["startTime"]) < instant(calls[1]["startTime"]):
            date_to = instant(calls[0]["startTime"]) + timedelta(milliseconds=1)
            return calls[0], date_to.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    raise AssertionError("no extension has a single oldest call")


def with_files(tmp_path: Path, db: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The database under test as "db", and a local folder for the binaries as "files"."""
    return {"db": db, "files": {"plugin": "filesystem", "path": str(tmp_path / "files"), "fsync": False}}


def archive_and_check(tmp_path: Path, sb: Sandbox, sinks: dict[str, Any], opened: Opened
                      ) -> tuple[dict[str, Any], Path, Any, Any]:
    """First run of a pipeline into ``sinks`` ("db" and "files"): ok, and exactly the ground truth."""
    gt = sb.ground_truth()
    path = write_pipeline(tmp_path, sb, sinks)
    first = run(path)
    assert first.status == "ok", first.errors
    db, files = opened.open(path, "db"), opened.open(path, "files")
    check_archive(gt, db, files)
    assert_exact_counts_and_ids(gt, db)
    return gt, path, db, files


@contextlib.contextmanager
def archived(tmp_path: Path, sinks: dict[str, Any], drop: Callable[[Any], None]
             ) -> Iterator[tuple[Sandbox, dict[str, Any], Path, Any, Any]]:
    """A default sandbox archived into ``sinks`` and checked (:func:`archive_and_check`): yields
    (sandbox, ground truth, pipeline file, "db" sink, "files" sink); afterwards ``drop(db)`` and
    every opened sink closed."""
    opened = Opened()
    db = None
    with default_sandbox() as sb:
        try:
            gt, path, db, files = archive_and_check(tmp_path, sb, sinks, opened)
            yield sb, gt, path, db, files
        finally:
            if db is not None:
                drop(db)
            opened.close()


def check_changed(gt2: dict[str, Any], db: Any, files: Any, path: Path, rcetl_home: Path) -> None:
    """After the changes at the source: the archive is the new ground truth and verifies clean."""
    check_archive(gt2, db, files)
    assert_exact_counts_and_ids(gt2, db)
    verify_clean(path, rcetl_home)


def change_at_source(sb: Sandbox, gt: dict[str, Any], message: dict[str, Any]
                     ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Through the REST API: ``message`` deleted (Alive -> Deleted), and one call deleted (marked, with
    a new lastModifiedTime). Returns (the call before, the call after, the new ground truth)."""
    admin = SandboxAdmin(sb)
    admin.delete_message(int(message["extensionId"]), message["id"])
    call, date_to = pick_call_to_delete(gt)
    admin.delete_calls_before(call["extension"]["id"], date_to)
    gt2 = sb.ground_truth()
    call2 = next(c for c in gt2["accounts"][0]["call_log"] if c["id"] == call["id"])
    assert call2["deleted"] is True and call2["lastModifiedTime"] != call["lastModifiedTime"]
    deleted = [sum(1 for c in g["accounts"][0]["call_log"] if c.get("deleted")) for g in (gt, gt2)]
    assert deleted[1] == deleted[0] + 1, "exactly one call was deleted"
    return call, call2, gt2


@pytest.mark.integration
@pytest.mark.parametrize("backend", ["sqlite", "mysql", "postgres"])
def test_sql_database_holds_the_ground_truth_rewrites_nothing_and_updates_in_place(
        backend: str, tmp_path: Path, rcetl_home: Path) -> None:
    url = sql_url(backend, tmp_path)
    prefix = f"e2e{uuid.uuid4().hex[:10]}_"
    sinks = with_files(tmp_path, {"plugin": backend, "url": url, "table_prefix": prefix})
    with archived(tmp_path, sinks, drop_tables) as (sb, gt, path, db, files):
        acct = gt["accounts"][0]
        counts = {row[0]: row[1] for row in sql_rows(db, " UNION ALL ".join(
            f"SELECT '{t}', COUNT(*) FROM {prefix}{t}" for t in ("call_log", "recordings", "messages")))}
        assert counts == {"call_log": len(acct["call_log"]), "recordings": len(acct["recordings"]),
                          "messages": len(acct["messages"])}

        # A message id above 2^53 (odd: no double holds it) is exact in the key, the column, the JSON.
        big = odd_big_message(gt)
        assert any(e.key == big["id"] for e in db.archived("message-store"))
        (row,) = sql_rows(db, f"SELECT id, conversation_id, raw FROM {prefix}messages WHERE id = :id", id=big["id"])
        assert (type(row[0]), row[0]) == (int, big["id"])
        assert row[1] == big["conversationId"]
        assert as_json(row[2])["id"] == big["id"] and as_json(row[2]) == big | {"uri": as_json(row[2])["uri"]}
        atts = sql_rows(db, f"SELECT id FROM {prefix}attachments WHERE message_id = :id ORDER BY id", id=big["id"])
        assert [r[0] for r in atts] == sorted(a["id"] for a in big["attachments"])

        # --full-refresh re-reads everything: not one row changes (PostgreSQL: not even its xmin).
        before = dump_sql(db.engine, prefix)
        again = run(path, full_refresh=True)
        assert again.status == "ok", again.errors
        assert again.streams["call-log"].records == len(acct["call_log"])
        assert again.streams["message-store"].records == len(acct["messages"])
        assert files_uploaded(again, "files") == 0
        assert again.changed_records in (0, None)  # None: MySQL cannot tell
        if backend != "mysql":
            assert again.changed_records == 0
        assert dump_sql(db.engine, prefix) == before

        # Changes at the source: a message deleted (Alive -> Deleted), a call deleted (marked,
        # new lastModifiedTime). The next runs update the two rows in place, nothing else.
        call, call2, gt2 = change_at_source(sb, gt, big)

        incremental = run(path)  # message-sync ISync reports the deleted message
        assert incremental.status == "ok", incremental.errors
        (row,) = sql_rows(db, f"SELECT availability, deleted, raw FROM {prefix}messages WHERE id = :id",
                          id=big["id"])
        assert (row[0], bool(row[1]), as_json(row[2])["availability"]) == ("Deleted", True, "Deleted")
        refreshed = run(path, full_refresh=True)  # the call is older than the incremental overlap
        assert refreshed.status == "ok", refreshed.errors
        (row,) = sql_rows(db, f"SELECT deleted, raw FROM {prefix}call_log WHERE id = :id", id=call["id"])
        assert bool(row[0]) is True
        assert as_json(row[1])["lastModifiedTime"] == call2["lastModifiedTime"]
        assert as_json(row[1])["deleted"] is True

        after = dump_sql(db.engine, prefix)
        assert diff_rows(before, after) == {"call_log": 1, "messages": 1}, "only the two changed rows differ"
        check_changed(gt2, db, files, path, rcetl_home)


@pytest.mark.integration
def test_mongodb_holds_the_ground_truth_rewrites_nothing_and_updates_in_place(
        mongodb_url: str, tmp_path: Path, rcetl_home: Path) -> None:
    database = f"e2e_{uuid.uuid4().hex[:12]}"
    sinks = with_files(tmp_path, {"plugin": "mongodb", "url": mongodb_url, "database": database})
    with archived(tmp_path, sinks, lambda db: db.client.drop_database(database)) as (sb, gt, path, db, files):
        acct = gt["accounts"][0]
        assert {n: db.db[f"rc_{n}"].count_documents({}) for n in ("call_log", "recordings", "messages")} == \
            {"call_log": len(acct["call_log"]), "recordings": len(acct["recordings"]),
             "messages": len(acct["messages"])}

        big = odd_big_message(gt)
        doc = db.db.rc_messages.find_one({"key": big["id"]})
        assert doc is not None and type(doc["key"]).__name__ == "Int64" and doc["key"] == big["id"]
        assert doc["data"]["id"] == big["id"] and doc["_id"]["id"] == big["id"]
        assert type(doc["data"]["id"]).__name__ == "Int64"
        assert db.db.rc_messages.count_documents({"key": big["id"], "data.id": big["id"]}) == 1
        # BSON Int64 on disk, never a double: a double would not even match the exact id
        assert db.db.rc_messages.count_documents({"key": float(big["id"])}) == 0

        before = dump_mongo(db.db)
        again = run(path, full_refresh=True)
        assert again.status == "ok", again.errors
        assert again.streams["call-log"].records == len(acct["call_log"])
        assert files_uploaded(again, "files") == 0
        assert dump_mongo(db.db) == before

        call, call2, gt2 = change_at_source(sb, gt, big)
        assert run(path).status == "ok"
        doc = db.db.rc_messages.find_one({"key": big["id"]})
        assert (doc["deleted"], doc["data"]["availability"]) == (True, "Deleted")
        assert run(path, full_refresh=True).status == "ok"
        doc = db.db.rc_call_log.find_one({"key": call["id"]})
        assert doc["deleted"] is True and doc["data"]["lastModifiedTime"] == call2["lastModifiedTime"]

        after = dump_mongo(db.db)
        assert {n: len(docs) for n, docs in after.items()} == {n: len(docs) for n, docs in before.items()}
        changed = {n: sum(1 for a, b in zip(before[n], after[n], strict=True) if a != b) for n in before}
        assert {n: c for n, c in changed.items() if c} == {"rc_call_log": 1, "rc_messages": 1}
        check_changed(gt2, db, files, path, rcetl_home)


# --- object stores -------------------------------------------------------------------------------


class Store:
    """One object store under test: its sink options and a listing of what it holds."""

    name: str
    options: dict[str, Any]

    def listing(self) -> dict[str, Any]:
        """key -> a fingerprint that changes whenever the object is written again."""
        raise NotImplementedError

    def uploads(self) -> int | None:
        """Write requests the store has seen (None: it keeps no request log)."""
        return None


class FilesystemStore(Store):
    name = "filesystem"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.options = {"path": str(root), "fsync": False}

    def listing(self) -> dict[str, Any]:
        out = {}
        for p in self.root.rglob("*"):
            if p.is_file():
                st = p.stat()
                out[p.relative_to(self.root).as_posix()] = (st.st_ino, st.st_mtime_ns, st.st_size)
        return out


class S3Store(Store):
    name = "s3"

    def __init__(self, endpoint: str, proxy: CorruptingS3Proxy) -> None:
        import boto3

        self.bucket = unique("e2e").lower()
        self.proxy = proxy
        creds = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        self.client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **creds)
        self.options = {"bucket": self.bucket, "endpoint_url": proxy.url, "region": "us-east-1",
                        "addressing_style": "path", "create_bucket": True,
                        "access_key_id": "testing", "secret_access_key": "testing"}

    def listing(self) -> dict[str, Any]:
        out = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for obj in page.get("Contents") or []:
                out[obj["Key"]] = (obj["ETag"], obj["LastModified"], obj["Size"])
        return out

    def uploads(self) -> int:
        return sum(1 for method, path in self.proxy.requests
                   if method in ("PUT", "POST") and path.startswith(f"/{self.bucket}/"))


class GcsStore(Store):
    name = "gcs"

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.bucket = unique("e2e").lower()
        self.options = {"bucket": self.bucket, "project": "e2e", "emulator_host": endpoint, "create_bucket": True}

    def listing(self) -> dict[str, Any]:
        out, token = {}, None
        while True:
            query = {"maxResults": "1000", **({"pageToken": token} if token else {})}
            url = f"{self.endpoint}/storage/v1/b/{self.bucket}/o?{urllib.parse.urlencode(query)}"
            with urllib.request.urlopen(url, timeout=30) as resp:
                page = json.loads(resp.read())
            for item in page.get("items") or []:
                out[item["name"]] = (item["generation"], item.get("md5Hash"), item["size"])
            token = page.get("nextPageToken")
            if not token:
                return out


class DropboxStore(Store):
    name = "dropbox"

    def __init__(self, fake: Any, host: str, ca: str) -> None:
        self.fake = fake
        self.root = "/" + unique("e2e")
        self.options = {"root": self.root, "access_token": "test-token", "ca_certs": ca,
                        "api_host": host, "content_host": host}

    def listing(self) -> dict[str, Any]:
        prefix = self.root.lower() + "/"
        with self.fake.lock:
            return {display[len(prefix):]: (rev, hashlib.sha256(data).hexdigest())
                    for lower, (display, data, rev) in self.fake.files.items() if lower.startswith(prefix)}

    def uploads(self) -> int:
        with self.fake.lock:
            return sum(n for route, n in self.fake.calls.items() if route.startswith("files/upload"))


@pytest.fixture
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    kind = request.param
    if kind == "filesystem":
        yield FilesystemStore(tmp_path / "files")
    elif kind == "s3":
        proxy = CorruptingS3Proxy(request.getfixturevalue("s3_url"), lambda key: False)
        try:
            yield S3Store(request.getfixturevalue("s3_url"), proxy)
        finally:
            proxy.close()
    elif kind == "gcs":
        yield GcsStore(request.getfixturevalue("gcs_url"))
    else:
        yield DropboxStore(*request.getfixturevalue("dropbox_fake"))


def object_store_pipeline(tmp_path: Path, sb: Sandbox, store: Store) -> Path:
    return write_pipeline(tmp_path, sb, {
        "db": {"plugin": "sqlite", "url": f"sqlite:///{tmp_path / 'archive.sqlite'}"},
        "files": {"plugin": store.name, **store.options},
    })


def available_binaries(gt: dict[str, Any]) -> dict[str, str]:
    """blob id -> SHA-256 of every binary the sandbox serves."""
    acct = gt["accounts"][0]
    out = {f"recording-{r['id']}": r["sha256"] for r in acct["recordings"] if r["available"]}
    out.update({f"attachment-{a['message_id']}-{a['id']}": a["sha256"] for a in acct["attachments"] if a["available"]})
    return out


EXT = {"audio/mpeg": "mp3", "audio/wav": "wav", "audio/x-wav": "wav", "application/pdf": "pdf",
       "text/plain": "txt", "image/png": "png", "image/jpeg": "jpg", "image/tiff": "tiff"}


def expected_keys(gt: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """For a few binaries: blob id -> (the key the default template gives, written out by hand from the
    API's JSON; the template variables). One MP3 recording, one WAV, and the attachments of a message
    whose id is above 2^53."""
    acct = gt["accounts"][0]
    calls = {c["id"]: c for c in acct["call_log"]}
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    for ctype in ("audio/mpeg", "audio/wav"):
        rec = next(r for r in acct["recordings"] if r["available"] and r["content_type"] == ctype
                   and calls[r["call_id"]].get("recording", {}).get("id") == r["id"])
        call = calls[rec["call_id"]]
        start, ext_id = instant(call["startTime"]), call["extension"]["id"]
        out[f"recording-{rec['id']}"] = (
            f"{start:%Y/%m/%d}/{ext_id}/recording/{rec['id']}.{EXT[ctype]}",
            {"id": rec["id"], "date": start, "extension": ext_id, "kind": "recording", "ext": EXT[ctype]})
    msg = odd_big_message(gt)
    created = instant(msg["creationTime"])
    for att in msg["attachments"]:
        ext = EXT[att["contentType"]]
        # RingCentral scopes an attachment id by its message: the key's {id} is "<message id>-<attachment id>"
        ident = f"{msg['id']}-{att['id']}"
        out[f"attachment-{ident}"] = (
            f"{created:%Y/%m/%d}/{msg['extensionId']}/attachment/{ident}.{ext}",
            {"id": ident, "date": created, "extension": msg["extensionId"], "kind": "attachment", "ext": ext})
    return out


def archived_locations(db: rcetl.RecordSink, sink: str) -> dict[str, str]:
    out = {}
    for stream in ("recording", "message-store"):
        for entry in db.archived(stream):
            for blob in entry.archive:
                if blob["status"] == "stored":
                    out[blob["blob_id"]] = blob["locations"][sink]
    return out


def descriptions(files: rcetl.ObjectStoreSink, held: Iterable[str]) -> dict[str, dict[str, Any]]:
    """key -> what the store says of the binary there (its sidecar, or its manifest line), read
    from the objects themselves. A binary described twice must be described alike."""
    out: dict[str, dict[str, Any]] = {}
    for k in sorted(held):
        if files.is_manifest(k):
            with files.open_stored(files.location(k)) as fh:
                docs = [json.loads(line) for line in fh.read().splitlines()]
        elif k.endswith(".json"):
            with files.open_stored(files.location(k)) as fh:
                docs = [json.loads(fh.read())]
        else:
            continue
        for doc in docs:
            assert out.setdefault(doc["blob"]["key"], doc) == doc, doc["blob"]["key"]
    return out


@pytest.mark.integration
@pytest.mark.parametrize("store", ["filesystem", "s3", "gcs", "dropbox"], indirect=True)
def test_object_store_holds_every_binary_once_and_a_rerun_uploads_nothing(
        store: Store, tmp_path: Path, rcetl_home: Path) -> None:
    opened = Opened()
    with default_sandbox() as sb:
        try:
            gt = sb.ground_truth()
            path = object_store_pipeline(tmp_path, sb, store)
            first = run(path)
            assert first.status == "ok", first.errors
            db, files = opened.open(path, "db"), opened.open(path, "files")
            check_archive(gt, db, files)  # every record; every binary read back and hashed
            truth = available_binaries(gt)
            assert files_uploaded(first, "files") == len(truth)

            # Every binary once, each described (a sidecar beside it, or a line of a batch manifest:
            # the default in a bucket), and nothing else in the store.
            held = store.listing()
            described = descriptions(files, held)
            blobs = {k for k in held if not k.endswith(".json") and not files.is_manifest(k)}
            assert len(blobs) == len(truth), f"{len(blobs)} objects for {len(truth)} binaries"
            assert set(described) == blobs
            if files.sidecar_batched:
                assert store.name in ("s3", "gcs") and not any(k.endswith(".json") for k in held)
            else:
                assert {k for k in held if k.endswith(".json")} == {f"{k}.json" for k in blobs}
            locations = archived_locations(db, "files")
            assert set(locations) == set(truth)
            assert sorted(files.key_of(loc) for loc in locations.values()) == sorted(blobs)
            if store.name == "filesystem":
                assert_no_partial_files(tmp_path / "files")

            # Keys follow the default template; the description of each names its record.
            records = {("recording", str(e.key)): e for e in db.archived("recording")}
            for blob_id, (key, variables) in expected_keys(gt).items():
                assert rcetl.render_key(files.config.key, variables) == key
                assert files.key_of(locations[blob_id]) == key, blob_id
                assert key in blobs
                sidecar = described[key]
                assert sidecar["blob"]["blob_id"] == blob_id and sidecar["blob"]["key"] == key
                assert sidecar["blob"]["sha256"] == truth[blob_id]
                with files.open_stored(locations[blob_id]) as fh:
                    assert hashlib.sha256(fh.read()).hexdigest() == truth[blob_id]
                kind, _, ident = blob_id.partition("-")
                if kind == "recording":
                    assert (sidecar["record"]["stream"], str(sidecar["record"]["key"])) == ("recording", ident)
                    assert ("recording", ident) in records
                else:
                    big = odd_big_message(gt)
                    assert (sidecar["record"]["stream"], sidecar["record"]["key"]) == ("message-store", big["id"])
                    assert sidecar["record"]["data"]["id"] == big["id"]

            # --full-refresh: everything is read again and nothing is uploaded.
            uploads = store.uploads()
            again = run(path, full_refresh=True)
            assert again.status == "ok", again.errors
            assert files_uploaded(again, "files") == 0
            stored_files = sum(again.streams[s].files for s in ("recording", "message-store"))
            skipped = sum(again.streams[s].skipped_files for s in ("recording", "message-store"))
            assert stored_files == skipped == len(truth)
            assert store.listing() == held, "an object was written again"
            if uploads is not None:
                assert store.uploads() == uploads, "the re-run sent upload requests"

            report = verify_clean(path, rcetl_home)  # rehashes local folders; check_archive read the rest
            # neither the sidecars nor the manifests are taken for objects no record points at
            assert not [f for f in report["findings"] if f["kind"] in ("stray", "superseded")], report["findings"]
            assert report["streams"]["recording"]["binaries"] >= sum(1 for b in truth if b.startswith("recording-"))
        finally:
            opened.close()


# --- a corrupted upload --------------------------------------------------------------------------


def one_recording(gt: dict[str, Any]) -> tuple[str, str]:
    """(recording id, the key's file name) of an available MP3 recording."""
    rec = next(r for r in gt["accounts"][0]["recordings"] if r["available"] and r["content_type"] == "audio/mpeg")
    return rec["id"], f"/recording/{rec['id']}.mp3"


def assert_corruption_reported(path: Path, summary: rcetl.RunSummary, rec_id: str, store: Store,
                               db: rcetl.RecordSink, name_suffix: str) -> None:
    assert summary.status != "ok" and summary.failed_items == 1, (summary.status, summary.failed_items)
    (item,) = failed_items(path)
    assert (item.stream, item.key) == ("recording", rec_id)
    # the IntegrityError's message, naming the blob and what the store reported
    assert f"recording-{rec_id}" in item.error and f"mismatch for blob recording-{rec_id}" in item.error, item.error
    assert summary.streams["recording"].failed == 1
    # not accepted: neither the object nor its sidecar stays, and no record points at it
    assert not [k for k in store.listing() if name_suffix in k], "the corrupted object was kept"
    assert rec_id not in {e.key for e in db.archived("recording")}


def retry_completes(path: Path, gt: dict[str, Any], db: Any, opened: Opened, rcetl_home: Path) -> None:
    """The fault gone, `rcetl run --retry-now` (the item's backoff is 60 s) stores the recording that
    failed: nothing is left failed, the archive is the ground truth and verifies clean."""
    second = run(path, retry_now=True)
    assert second.status == "ok" and second.failed_items == 0, second.errors
    assert second.streams["recording"].retried == 1
    assert failed_items(path) == []
    check_archive(gt, db, opened.open(path, "files"))
    verify_clean(path, rcetl_home)


@pytest.mark.integration
def test_s3_corrupted_upload_is_caught_then_the_next_run_completes(
        s3_url: str, tmp_path: Path, rcetl_home: Path) -> None:
    opened = Opened()
    with default_sandbox() as sb:
        gt = sb.ground_truth()
        rec_id, suffix = one_recording(gt)
        proxy = CorruptingS3Proxy(s3_url, lambda key: key.endswith(suffix))
        try:
            store = S3Store(s3_url, proxy)
            path = object_store_pipeline(tmp_path, sb, store)
            first = run(path)
            assert proxy.corrupted, "the proxy corrupted nothing"
            db = opened.open(path, "db")
            assert_corruption_reported(path, first, rec_id, store, db, suffix)

            proxy.active = False
            retry_completes(path, gt, db, opened, rcetl_home)
        finally:
            opened.close()
            proxy.close()


@pytest.mark.integration
def test_dropbox_corrupted_upload_is_caught_then_the_next_run_completes(tmp_path: Path, rcetl_home: Path) -> None:
    opened = Opened()
    with dropbox_server(tmp_path / "dropbox") as (fake, host, ca), default_sandbox() as sb:
        gt = sb.ground_truth()
        rec_id, suffix = one_recording(gt)
        real_commit = fake.commit

        def commit(arg: dict[str, Any], data: bytes) -> dict[str, Any]:
            # the fake's own fault (corrupt_uploads: store one byte altered), for this one file only;
            # route() runs under fake.lock, so the flag is never seen by another upload
            fake.corrupt_uploads = arg["path"].endswith(suffix)
            try:
                return real_commit(arg, data)
            finally:
                fake.corrupt_uploads = False

        fake.commit = commit
        try:
            store = DropboxStore(fake, host, ca)
            path = object_store_pipeline(tmp_path, sb, store)
            first = run(path)
            db = opened.open(path, "db")
            assert_corruption_reported(path, first, rec_id, store, db, suffix)

            del fake.commit  # the fault is gone
            retry_completes(path, gt, db, opened, rcetl_home)
        finally:
            with contextlib.suppress(AttributeError):
                del fake.commit
            opened.close()
