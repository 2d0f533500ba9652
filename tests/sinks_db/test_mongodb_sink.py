"""The MongoDB sink against a real server: RCETL_TEST_MONGODB_URL, a container, or SecantusDB
(a MongoDB wire-protocol server on WiredTiger) started in-process; see services.py."""

from __future__ import annotations

import copy
import hashlib
import uuid
from pathlib import Path

import pytest

import rcetl

from .conftest import build_sink
from .dataset import ACCOUNT, BIG_CONVERSATION, BIG_ID, MAX_ID, make_dataset

pytestmark = pytest.mark.integration


@pytest.fixture
def make_mongo_sink(mongodb_url, run_ctx):
    database = f"t{uuid.uuid4().hex[:12]}"  # one database per test: xdist-safe, dropped afterwards
    made = []

    def make(**options):
        sink = build_sink("mongodb", {"url": mongodb_url, "database": database, **options}, run_ctx, "mongo")
        sink.open()
        made.append(sink)
        return sink

    yield make
    if made:
        made[0].client.drop_database(database)
    for sink in made:
        sink.close()


def snapshot(sink) -> dict[str, list[dict]]:
    return {name: list(sink.db[name].find().sort("_id")) for name in sorted(sink.db.list_collection_names())}


def test_dataset_archives_with_exact_counts_and_ids_and_a_rewrite_changes_nothing(make_mongo_sink):
    ds = make_dataset()
    sink = make_mongo_sink(batch_size=5)
    sink.write(ds.records)
    ds.assert_held_by(sink)
    ds.assert_rewrites_change_nothing(sink, snapshot)


def test_documents_keep_the_api_json_and_are_indexed_for_queries(make_mongo_sink):
    ds = make_dataset()
    sink = make_mongo_sink()
    sink.write(ds.records)
    call = ds.of("call-log")[0].record.data
    doc = sink.db.rc_call_log.find_one({"_id": {"account": ACCOUNT, "id": call["id"]}})
    assert doc["data"] == call
    assert sink.db.rc_call_log.count_documents({"data.extension.id": 101, "data.direction": "Inbound"}) > 0
    indexed = {k for ix in sink.db.rc_messages.list_indexes() for k in ix["key"]}
    assert {"data.conversationId", "data.creationTime", "data.availability", "data.type"} <= indexed
    indexed = {k for ix in sink.db.rc_call_log.list_indexes() for k in ix["key"]}
    assert {"data.startTime", "data.direction", "data.type", "data.extension.id"} <= indexed


def test_record_updated_at_source_is_updated_in_place(make_mongo_sink):
    ds = make_dataset()
    sink = make_mongo_sink()
    call, fax = ds.write_then_update(sink)
    doc = sink.db.rc_call_log.find_one({"key": call.key})
    assert doc["data"]["result"] == "Voicemail" and len(doc["data"]["legs"]) == 1
    assert [e.key for e in sink.archived("message-store") if e.deleted] == [fax.key]


def test_message_ids_above_2_to_the_53_round_trip_exactly(make_mongo_sink):
    from bson import Int64

    ds = make_dataset(calls=0, messages=2)
    sink = make_mongo_sink()
    sink.write(ds.records)
    assert sorted(e.key for e in sink.archived("message-store")) == [BIG_ID, MAX_ID]
    doc = sink.db.rc_messages.find_one({"_id": {"account": ACCOUNT, "id": Int64(BIG_ID)}})
    assert doc["key"] == BIG_ID and doc["data"]["id"] == BIG_ID
    assert doc["data"]["conversationId"] == BIG_CONVERSATION and not isinstance(doc["data"]["id"], float)
    # Queried as BSON int64, not as a double that would also match BIG_ID - 1.
    assert sink.db.rc_messages.count_documents({"data.id": Int64(BIG_ID - 1)}) == 0
    assert {e.key for e in sink.archived("acme-tickets")} == {42, "42", BIG_ID}


def test_an_int_beyond_64_bits_is_a_permanent_error_naming_the_record(make_mongo_sink):
    ds = make_dataset(calls=0, messages=1)
    bad = copy.deepcopy(ds.records[0])
    bad.record.data["faxPageCount"] = 2**64
    with pytest.raises(rcetl.PermanentError, match=str(bad.key)):
        make_mongo_sink().write([bad])


def test_unreachable_server_is_transient(run_ctx):
    sink = build_sink("mongodb", {"url": "mongodb://u:s3cretpw@127.0.0.1:1/?serverSelectionTimeoutMS=300"},
                      run_ctx, "mongo")
    with pytest.raises(rcetl.TransientError) as err:
        sink.write(make_dataset(calls=1, messages=0).records)
    assert "s3cretpw" not in str(err.value)
    with pytest.raises(rcetl.RcetlError, match="127.0.0.1:1") as err:
        sink.check()
    assert "s3cretpw" not in str(err.value)


def spooled(tmp_path: Path, blob_id: str, payload: bytes) -> rcetl.SpooledBlob:
    path = tmp_path / blob_id
    path.write_bytes(payload)
    ref = rcetl.BlobRef(blob_id=blob_id, url="https://media.example/x", kind="recording", content_type="audio/mpeg")
    return rcetl.SpooledBlob(ref=ref, path=str(path), size=len(payload), sha256=hashlib.sha256(payload).hexdigest(),
                             content_type="audio/mpeg")


def test_gridfs_makes_it_a_complete_archive(make_mongo_sink, tmp_path):
    sink = make_mongo_sink(gridfs=True)
    assert isinstance(sink, rcetl.BlobSink) and isinstance(sink, rcetl.RecordSink)
    payload = bytes(range(256)) * 4096  # 1 MiB: several GridFS chunks
    blob = spooled(tmp_path, "recording-9000000", payload)
    first = sink.store(blob)
    assert (first.size, first.sha256, first.skipped) == (len(payload), blob.sha256, False)
    again = sink.store(blob)
    assert again.skipped and again.location == first.location
    assert sink.db["rc_blobs.files"].count_documents({}) == 1
    with sink.open_stored(first.location) as f:
        assert hashlib.sha256(f.read()).hexdigest() == blob.sha256
    assert sink.stat(blob.ref).sha256 == blob.sha256

    other = spooled(tmp_path / "x" if (tmp_path / "x").mkdir() is None else tmp_path, "recording-9000000", b"other")
    with pytest.raises(rcetl.ConflictError):
        sink.store(other)


def test_gridfs_replaces_only_stored_bytes_that_fail_the_content_check(make_mongo_sink, tmp_path):
    """An older rcetl stored a login page as this recording: the next valid download replaces it;
    a valid recording is never replaced by other bytes (the object stores' rule)."""
    sink = make_mongo_sink(gridfs=True)
    page = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>maintenance</body></html>"
    audio = b"ID3" + bytes(range(256)) * 40
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    bad = sink.store(spooled(tmp_path, "recording-42", page))
    good = sink.store(spooled(tmp_path / "a", "recording-42", audio))
    assert good.location == bad.location and not good.skipped
    with sink.open_stored(good.location) as f:
        assert f.read() == audio
    with pytest.raises(rcetl.ConflictError):
        sink.store(spooled(tmp_path / "b", "recording-42", audio + b"-edited"))


def test_gridfs_clears_chunks_left_by_an_interrupted_upload(make_mongo_sink, tmp_path):
    sink = make_mongo_sink(gridfs=True)
    sink.db["rc_blobs.chunks"].insert_one({"files_id": "attachment-1", "n": 0, "data": b"half"})
    stored = sink.store(spooled(tmp_path, "attachment-1", b"whole file"))
    assert stored.size == 10
    with sink.open_stored(stored.location) as f:
        assert f.read() == b"whole file"


def test_without_gridfs_it_is_a_record_sink_only(make_mongo_sink):
    sink = make_mongo_sink()
    assert not isinstance(sink, rcetl.BlobSink)


def _numbers_in(data: dict) -> set[str]:
    """Every phoneNumber the raw JSON names, wherever it sits (the test's own walk, not the sink's)."""
    found: set[str] = set()

    def walk(value):
        if isinstance(value, dict):
            for k, v in value.items():
                if k == "phoneNumber" and isinstance(v, str):
                    found.add(v)
                else:
                    walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk({k: v for k, v in data.items() if k in ("from", "to", "legs")})
    return found


def test_a_number_written_any_way_finds_its_calls_and_messages_through_an_index(make_mongo_sink):
    ds = make_dataset()
    sink = make_mongo_sink()
    sink.write(ds.records)
    target = "+16505550002"
    for written in ("+1 (650) 555-0002", "650-555-0002", target):
        number = rcetl.normalize_phone(written)
        for stream, coll in (("call-log", sink.db.rc_call_log), ("message-store", sink.db.rc_messages)):
            want = {ar.key for ar in ds.of(stream) if target in _numbers_in(ar.record.data)}
            assert want, f"the data set names {target} in some {stream} records"
            got = {d["key"] for d in coll.find({"numbers_e164": number}, {"key": 1})}
            assert got == want
    by_caller = {d["key"] for d in sink.db.rc_call_log.find({"from_e164": target})}
    assert by_caller == {ar.key for ar in ds.of("call-log") if ar.record.data["from"].get("phoneNumber") == target}
    rec = ds.of("recording")[0].record.data
    doc = sink.db.rc_recordings.find_one({"key": rec["id"]})
    assert doc["from_e164"] == rcetl.normalize_phone(rec["call"]["from"]["phoneNumber"])
    for coll in (sink.db.rc_call_log, sink.db.rc_messages):
        keys = [tuple(ix["key"]) for ix in coll.list_indexes()]
        assert ("from_e164", "occurred_at") in keys and ("numbers_e164", "occurred_at") in keys
