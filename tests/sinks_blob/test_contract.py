"""The blob-sink contract: every object-store sink passes the same tests through its real SDK.

Checksum mismatch is provoked without mocks: the spooled file is altered after its SHA-256 was
taken (what a flipped bit between download and upload looks like), so the checksum the store
computes over the bytes it received differs from the one the engine computed while downloading.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone

import pytest

import rcetl

from .conftest import Backend, BlobMaker, make_sink

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


def test_write_then_read_back_with_sidecar(backend: Backend, ctx, blobs: BlobMaker) -> None:
    sink = make_sink(backend, ctx)
    blob = blobs(AUDIO)
    stored = sink.store(blob)

    assert not stored.skipped
    assert stored.sink == backend.name
    assert stored.sha256 == blob.sha256 and stored.size == len(AUDIO)
    assert stored.location.endswith("2024/03/05/101/recording/rec-1.mp3")
    assert _read(sink, stored.location) == AUDIO

    sidecar = json.loads(_read(sink, stored.location + ".json"))
    assert sidecar["blob"]["sha256"] == blob.sha256
    assert sidecar["blob"]["size"] == len(AUDIO)
    assert sidecar["blob"]["content_type"] == "audio/mpeg"
    assert sidecar["record"]["key"] == "call-rec-1"
    assert sidecar["record"]["data"]["big"] == 2**60 + 1  # ids stay exact ints

    seen = sink.stat(blob.ref, blob.record)
    assert seen is not None and seen.size == len(AUDIO) and seen.sha256 == blob.sha256
    assert seen.location == stored.location
    sink.close()


def test_sidecar_can_be_turned_off(backend: Backend, ctx, blobs: BlobMaker) -> None:
    sink = make_sink(backend, ctx, sidecar=False)
    stored = sink.store(blobs(AUDIO))
    with pytest.raises(rcetl.RcetlError):
        _read(sink, stored.location + ".json")


def test_rewrite_of_same_bytes_uploads_nothing(backend: Backend, ctx, blobs: BlobMaker, monkeypatch) -> None:
    sink = make_sink(backend, ctx)
    first = sink.store(blobs(AUDIO))
    uploads = _spy(monkeypatch, sink, "_upload")
    small = _spy(monkeypatch, sink, "_put_small")

    again = sink.store(blobs(AUDIO))

    assert again.skipped and again.location == first.location and again.sha256 == first.sha256
    assert uploads == [] and small == []


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
    assert json.loads(_read(sink, third.location + ".json"))["blob"]["sha256"] == third.sha256


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
