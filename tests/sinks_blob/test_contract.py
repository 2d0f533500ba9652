"""The blob-sink contract: every object-store sink passes the same tests through its real SDK.

Checksum mismatch is provoked without mocks: the spooled file is altered after its SHA-256 was
taken (what a flipped bit between download and upload looks like), so the checksum the store
computes over the bytes it received differs from the one the engine computed while downloading.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pydantic
import pytest

import rcetl

from .conftest import BACKENDS, Backend, BlobMaker, make_sink

AUDIO = b"ID3" + bytes(range(256)) * 40


def _read(sink: rcetl.ObjectStoreSink, location: str) -> bytes:
    with sink.open_stored(location) as fh:
        return fh.read()


def _spy(monkeypatch: pytest.MonkeyPatch, sink: rcetl.ObjectStoreSink, method: str) -> list[str]:
    """Count calls to a primitive while still calling it (a spy, not a mock)."""
    calls: list[str] = []
    real = getattr(sink, method)

    def counting(key, *args, **kwargs):
        calls.append(key)
        return real(key, *args, **kwargs)

    monkeypatch.setattr(sink, method, counting)
    return calls


def _description(sink: rcetl.ObjectStoreSink, location: str) -> dict:
    """What the store says of the blob at ``location``: its sidecar beside it (``sidecar: true``),
    or its line in a batch manifest (``sidecar: batch``), read straight from the store's objects."""
    if sink.config.sidecar is True:
        return json.loads(_read(sink, location + ".json"))
    key = sink.key_of(location)
    lines = [json.loads(line) for k in sink._list() if sink.is_manifest(k)
             for line in _read(sink, sink.location(k)).splitlines()]
    (doc,) = [d for d in lines if d["blob"]["key"] == key][-1:]
    return doc


def _lists(backend: Backend) -> bool:
    """The store can list its objects, so batch manifests can be found again (not Dropbox yet)."""
    return backend.name != "dropbox"


@pytest.fixture(params=sorted(n for n in BACKENDS if n != "dropbox"))
def listing(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Each store that can list its objects (Dropbox refuses ``sidecar: batch``: see above)."""
    factory = BACKENDS[request.param]
    yield from factory(tmp_path) if request.param == "filesystem" else factory(request)


def _manifests(sink: rcetl.ObjectStoreSink) -> list[str]:
    return sorted(k for k in sink._list() if sink.is_manifest(k))


@pytest.mark.parametrize("sidecar", [True, "batch"])
def test_write_then_read_back_with_sidecar(backend: Backend, ctx, blobs: BlobMaker, sidecar) -> None:
    if sidecar == "batch" and not _lists(backend):
        with pytest.raises(pydantic.ValidationError, match="sidecar: batch is not supported"):
            make_sink(backend, ctx, sidecar=sidecar)
        return
    sink = make_sink(backend, ctx, sidecar=sidecar)
    blob = blobs(AUDIO)
    stored = sink.store(blob)
    sink.sync()  # what the engine calls before any record names the blob

    assert not stored.skipped
    assert stored.sink == backend.name
    assert stored.sha256 == blob.sha256 and stored.size == len(AUDIO)
    assert stored.location.endswith("2024/03/05/101/recording/rec-1.mp3")
    assert _read(sink, stored.location) == AUDIO

    sidecar = _description(sink, stored.location)
    assert sidecar["blob"]["sha256"] == blob.sha256 and sidecar["blob"]["blob_id"] == "rec-1"
    assert sidecar["blob"]["size"] == len(AUDIO)
    assert sidecar["blob"]["content_type"] == "audio/mpeg"
    assert sidecar["record"]["key"] == "call-rec-1"
    assert sidecar["record"]["data"]["big"] == 2**60 + 1  # ids stay exact ints

    seen = sink.stat(blob.ref, blob.record)
    assert seen is not None and seen.size == len(AUDIO) and seen.sha256 == blob.sha256
    assert seen.location == stored.location
    if _lists(backend):
        assert dict(sink.iter_stored()) == {stored.location: "rec-1"}
    if sidecar == "batch":  # one manifest for the batch, no object beside the blob
        assert len(_manifests(sink)) == 1
        with pytest.raises(rcetl.RcetlError):
            _read(sink, stored.location + ".json")
    sink.close()


def test_batch_manifest_is_written_at_sync_once_per_batch(listing: Backend, ctx, blobs: BlobMaker) -> None:
    sink = make_sink(listing, ctx, sidecar="batch", key="{id}.{ext}")
    first = [sink.store(blobs(AUDIO + bytes([i]), blob_id=f"rec-{i}")) for i in range(3)]
    assert _manifests(sink) == []  # nothing but the blobs until the batch is synced
    sink.sync()
    sink.sync()  # nothing stored since: no empty manifest
    (manifest,) = _manifests(sink)
    assert manifest.startswith(sink.manifest_root() + "/") and manifest.endswith(".jsonl")
    assert [_description(sink, s.location)["blob"]["sha256"] for s in first] == [s.sha256 for s in first]
    later = sink.store(blobs(AUDIO + b"later", blob_id="rec-later"))
    sink.sync()
    assert len(_manifests(sink)) == 2 and _description(sink, later.location)["blob"]["blob_id"] == "rec-later"
    assert dict(sink.iter_stored()) == {**{s.location: f"rec-{i}" for i, s in enumerate(first)},
                                        later.location: "rec-later"}


def test_a_blob_stored_by_a_run_killed_before_its_manifest_is_described_by_the_next(
        listing: Backend, ctx, blobs: BlobMaker) -> None:
    killed = make_sink(listing, ctx, sidecar="batch")
    stored = killed.store(blobs(AUDIO))  # the run dies here: no sync(), so no manifest
    assert _manifests(killed) == [] and dict(killed.iter_stored()) == {}
    again = make_sink(listing, ctx, sidecar="batch")
    found = again.store(blobs(AUDIO))
    assert found.skipped and found.location == stored.location
    again.sync()
    assert dict(again.iter_stored()) == {stored.location: "rec-1"}


def test_a_manifest_that_failed_to_write_is_written_by_the_next_sync(
        listing: Backend, ctx, blobs: BlobMaker, monkeypatch) -> None:
    sink = make_sink(listing, ctx, sidecar="batch")
    stored = sink.store(blobs(AUDIO))
    real = sink._put_small

    def store_down(key, *args):
        raise ConnectionError("the store went away")

    monkeypatch.setattr(sink, "_put_small", store_down)
    with pytest.raises(rcetl.TransientError, match="manifest"):
        sink.sync()
    monkeypatch.setattr(sink, "_put_small", real)
    sink.sync()
    assert dict(sink.iter_stored()) == {stored.location: "rec-1"}


def test_a_manifest_cut_short_still_names_its_whole_lines(listing: Backend, ctx, blobs: BlobMaker) -> None:
    sink = make_sink(listing, ctx, sidecar="batch", key="{id}.{ext}")
    a, b = (sink.store(blobs(AUDIO + bytes([i]), blob_id=f"rec-{i}")) for i in range(2))
    lines = list(sink._manifest_lines)
    sink._manifest_lines[:] = [lines[0], lines[1][: len(lines[1]) // 2]]  # a write cut mid-line
    sink.sync()
    assert dict(sink.iter_stored()) == {a.location: "rec-0"}


def test_sidecar_can_be_turned_off(backend: Backend, ctx, blobs: BlobMaker) -> None:
    sink = make_sink(backend, ctx, sidecar=False)
    stored = sink.store(blobs(AUDIO))
    with pytest.raises(rcetl.RcetlError):
        _read(sink, stored.location + ".json")


def test_rewrite_of_same_bytes_uploads_nothing(backend: Backend, ctx, blobs: BlobMaker, monkeypatch) -> None:
    sink = make_sink(backend, ctx)
    first = sink.store(blobs(AUDIO))
    small = _spy(monkeypatch, sink, "_put_small")
    real_upload = sink._upload
    uploads: list[tuple[str, str]] = []

    def upload(key, *args):
        try:
            info = real_upload(key, *args)
        except sink.KeyExists:
            uploads.append((key, "refused"))
            raise
        uploads.append((key, "written"))
        return info

    monkeypatch.setattr(sink, "_upload", upload)
    again = sink.store(blobs(AUDIO))

    assert again.skipped and again.location == first.location and again.sha256 == first.sha256
    assert small == []
    if backend.name == "s3" and sink.sidecar_batched:
        # Below the multipart threshold S3 finds a taken key by its create-only PUT: refused (412),
        # nothing written (the look-up that follows judges it; test_s3_requests.py counts them).
        assert uploads == [(sink.key_of(first.location), "refused")]
    else:
        assert uploads == []


def test_iso_date_string_renders_like_a_datetime(backend: Backend, ctx, blobs: BlobMaker) -> None:
    sink = make_sink(backend, ctx)
    as_datetime = blobs(AUDIO, date=datetime(2024, 3, 5, 14, 30, tzinfo=timezone.utc))
    as_string = blobs(AUDIO, date="2024-03-05T14:30:00.000Z")  # after a JSON round trip
    assert sink.store(as_datetime).location == sink.store(as_string).location


def test_conflict_error_keeps_the_original(backend: Backend, ctx, blobs: BlobMaker) -> None:
    sink = make_sink(backend, ctx)
    stored = sink.store(blobs(AUDIO))
    with pytest.raises(rcetl.ConflictError, match="different bytes"):
        sink.store(blobs(AUDIO + b"-edited"))
    assert _read(sink, stored.location) == AUDIO


def test_lost_race_to_a_concurrent_writer_is_a_conflict_not_an_overwrite(
    backend: Backend, ctx, blobs: BlobMaker, monkeypatch
) -> None:
    sink = make_sink(backend, ctx, sidecar=False)
    blob = blobs(b"ours")
    key = sink.key_for(blob.ref, blob.record)
    real_head, real_upload = sink._head, sink._upload
    looks: list[str] = []

    def rival_writes_after_our_look(k):
        looks.append(k)
        if len(looks) == 1:  # between our look-up and our upload another writer stores other bytes
            sink._put_small(key, b"theirs", "audio/mpeg")
            return None
        return real_head(k)

    def rival_writes_first(k, *args):  # a sink that uploads with no look-up first (S3 below multipart)
        if not looks:
            looks.append(k)
            sink._put_small(key, b"theirs", "audio/mpeg")
        return real_upload(k, *args)

    monkeypatch.setattr(sink, "_head", rival_writes_after_our_look)
    monkeypatch.setattr(sink, "_upload", rival_writes_first)
    with pytest.raises(rcetl.ConflictError):
        sink.store(blob)
    monkeypatch.undo()
    assert _read(sink, sink.location(key)) == b"theirs"


def test_conflict_version_writes_next_version_once(backend: Backend, ctx, blobs: BlobMaker) -> None:
    sink = make_sink(backend, ctx, on_conflict="version")
    first = sink.store(blobs(AUDIO))
    second = sink.store(blobs(AUDIO + b"-v2"))
    assert second.location.endswith("rec-1.v2.mp3") and not second.skipped
    assert sink.store(blobs(AUDIO + b"-v2")).skipped  # the same different bytes find their version
    third = sink.store(blobs(AUDIO + b"-v3"))
    assert third.location.endswith("rec-1.v3.mp3")
    assert _read(sink, first.location) == AUDIO
    assert _read(sink, second.location) == AUDIO + b"-v2"
    sink.sync()
    assert _description(sink, third.location)["blob"]["sha256"] == third.sha256


def test_large_file_goes_up_in_parts(backend: Backend, ctx, blobs: BlobMaker, monkeypatch) -> None:
    sink = make_sink(backend, ctx, **backend.large_options)
    data = hashlib.sha256(b"seed").digest() * (backend.large_size // 32) + b"tail"
    parts = backend.count_parts(sink, monkeypatch) if backend.count_parts else None
    stored = sink.store(blobs(data, content_type="audio/wav"))
    assert stored.location.endswith(".wav")
    if parts is not None:
        assert parts() >= 2
    with sink.open_stored(stored.location) as fh:
        digest = hashlib.sha256()
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
    assert sink.store(blobs(data, content_type="audio/wav")).skipped


@pytest.mark.parametrize("size", ["small", "large"])
def test_checksum_mismatch_is_detected_and_nothing_is_left(
    backend: Backend, ctx, blobs: BlobMaker, size
) -> None:
    sink = make_sink(backend, ctx, **(backend.large_options if size == "large" else {}))
    data = AUDIO if size == "small" else b"\x01" * backend.large_size
    blob = blobs(data)
    with open(blob.path, "r+b") as fh:  # a byte flips after the download was hashed
        fh.seek(len(data) // 2)
        fh.write(b"\x00")

    with pytest.raises(rcetl.IntegrityError, match="mismatch"):
        sink.store(blob)
    assert sink.stat(blob.ref, blob.record) is None

    fixed = blobs(data)  # the retry on the next run stores cleanly
    assert not sink.store(fixed).skipped


HOSTILE = {
    "traversal": "../../etc/passwd",
    "absolute": "/etc/shadow",
    "backslashes": "..\\..\\windows\\system32\\cmd.exe",
    "control": "fax\x00\x07\x1b[31m\r\n.pdf",
    "bidi": "invoice\u202efdp.exe",
    "unicode": "Zürich – 北京 résumé ☎.pdf",
    "long": "x" * 1000 + ".pdf",
    "long_unicode": "é" * 600 + ".pdf",
    "dots": "...",
    "device": "CON.pdf",
}


@pytest.mark.parametrize("label", sorted(HOSTILE))
def test_hostile_names_stay_inside_and_round_trip(backend: Backend, ctx, blobs: BlobMaker, label) -> None:
    sink = make_sink(backend, ctx, key="{account}/{kind}/{id}-{name}")
    blob = blobs(
        b"%PDF-1.4 fax",
        blob_id="att-9",
        kind="fax",
        content_type="application/pdf",
        name=HOSTILE[label],
        account="acc/../1",
    )
    stored = sink.store(blob)
    key = sink.key_of(stored.location)
    segments = key.split("/")
    assert len(segments) == 3 and segments[:2] == ["acc_.._1", "fax"]
    assert all(s not in ("", ".", "..") for s in segments)
    assert not any(ord(c) < 32 or c in "\\\u202e" for c in key)
    assert all(len(s.encode()) <= 150 for s in segments)
    assert _read(sink, stored.location) == b"%PDF-1.4 fax"
    if label == "unicode":
        assert segments[2] == "att-9-Zürich – 北京 résumé ☎.pdf"
    if label.startswith("long"):
        assert segments[2].endswith(".pdf")


def test_stored_bytes_that_fail_the_content_check_are_replaced_by_a_valid_download(
    backend: Backend, ctx, blobs: BlobMaker
) -> None:
    """An older rcetl stored a login page as this recording: the next valid download replaces it
    (the only overwrite); a valid file stays protected (test_conflict_error_keeps_the_original)."""
    sink = make_sink(backend, ctx)
    page = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>maintenance</body></html>"
    bad = sink.store(blobs(page))
    good = sink.store(blobs(AUDIO))
    assert good.location == bad.location and not good.skipped
    assert _read(sink, good.location) == AUDIO
    assert sink.stat_location(good.location).sha256 == good.sha256
    with pytest.raises(rcetl.ConflictError):  # and a valid file is never replaced by another
        sink.store(blobs(AUDIO + b"-edited"))
