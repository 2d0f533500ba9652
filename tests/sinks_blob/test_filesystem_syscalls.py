"""The local folder's per-file work: what ``sync()`` and a new folder cost, beyond the guarantees
test_filesystem_durability.py holds it to (those stay: files fsynced before their name, sidecars and
folders by ``sync()``)."""

from __future__ import annotations

import errno
import os

import pytest

import rcetl
from rcetl.plugins.sinks import filesystem

from .conftest import BlobMaker, build_sink


def _sink(ctx: rcetl.RunContext, **options: object) -> filesystem.FilesystemSink:
    sink = build_sink(filesystem.FilesystemSink, "archive", {"path": "archive", **options}, ctx)
    sink.open()
    return sink


def _blobs_in_many_folders(sink: filesystem.FilesystemSink, blobs: BlobMaker, n: int) -> list[rcetl.StoredBlob]:
    return [sink.store(blobs(f"ID3 {i}".encode(), blob_id=f"rec-{i}", date=f"2024-03-{1 + i % 28:02d}T10:00:00Z"))
            for i in range(n)]


def test_sync_hands_the_pool_one_task_per_lane_not_one_per_file(ctx, blobs: BlobMaker, monkeypatch) -> None:
    """Forty sidecars and their folders are fsynced in at most _SYNC_THREADS lanes a pass (this
    thread runs one): a task per file cost a future and a thread wake-up per file."""
    sink = _sink(ctx)
    stored = _blobs_in_many_folders(sink, blobs, 40)
    pool = sink._syncers()
    submitted: list[object] = []
    real_submit = pool.submit
    monkeypatch.setattr(pool, "submit", lambda fn, *a, **kw: (submitted.append(fn), real_submit(fn, *a, **kw))[1])
    synced: list[str] = []
    real_file, real_path = filesystem._fsync_file, filesystem._fsync_path
    monkeypatch.setattr(filesystem, "_fsync_file", lambda p: (synced.append(p), real_file(p))[1])
    monkeypatch.setattr(filesystem, "_fsync_path", lambda p: (synced.append(p), real_path(p))[1])
    sink.sync()
    # two passes (sidecars, then folders), each at most _SYNC_THREADS - 1 tasks beside this thread
    assert len(submitted) <= 2 * (filesystem._SYNC_THREADS - 1)
    for s in stored:  # every sidecar and every folder still fsynced, each once
        assert synced.count(s.location + ".json") == 1
        assert synced.count(os.path.dirname(s.location)) == 1
    sink.close()


def test_a_failed_lane_leaves_only_what_is_not_durable_owed(ctx, blobs: BlobMaker, monkeypatch) -> None:
    """One sidecar's fsync fails: the other lanes finish theirs, sync() raises, and the next sync()
    fsyncs only what the failed lane had not done."""
    sink = _sink(ctx)
    stored = _blobs_in_many_folders(sink, blobs, 24)
    bad = stored[5].location + ".json"
    real_file = filesystem._fsync_file
    first: list[str] = []

    def failing(path: str) -> None:
        first.append(path)
        if path == bad:
            raise OSError(errno.EIO, "Input/output error")
        real_file(path)

    monkeypatch.setattr(filesystem, "_fsync_file", failing)
    with pytest.raises(rcetl.TransientError):
        sink.sync()
    assert len(first) > 1  # the other lanes ran to their end
    again: list[str] = []
    monkeypatch.setattr(filesystem, "_fsync_file", lambda p: (again.append(p), real_file(p))[1])
    sink.sync()
    assert bad in again
    assert not set(again) & (set(first) - {bad})  # nothing made durable is fsynced twice
    assert set(again) | set(first) == {s.location + ".json" for s in stored}
    sink.close()


def test_a_folder_made_for_a_file_is_not_resolved_again_for_it(ctx, blobs: BlobMaker, monkeypatch) -> None:
    """The folders a file's key needs are made by the sink under a folder inside the archive: they
    are inside too, so writing the file does not resolve every level of its path (realpath: a
    system call per level) after making them."""
    sink = _sink(ctx)
    resolved: list[str] = []
    real = os.path.realpath
    monkeypatch.setattr(filesystem.os.path, "realpath", lambda p, *a, **kw: (resolved.append(p), real(p, *a, **kw))[1])
    stored = sink.store(blobs(b"ID3 new folder", blob_id="rec-new", date="2024-05-06T10:00:00Z"))
    assert os.path.exists(stored.location)
    assert not [p for p in resolved if p.startswith(sink._root + os.sep)]
    sink.close()


def test_a_link_out_of_the_archive_is_still_refused(ctx, blobs: BlobMaker, tmp_path) -> None:
    """What the remembered folders must not weaken: a folder level that is a link out of the
    archive is refused, whether the sink meets it first in a key or while making folders."""
    sink = _sink(ctx)
    outside = tmp_path / "outside"
    outside.mkdir()
    os.makedirs(os.path.join(sink._root, "2024"))
    os.symlink(outside, os.path.join(sink._root, "2024", "07"))
    with pytest.raises(rcetl.PermanentError, match="outside"):
        sink.store(blobs(b"ID3 escape", blob_id="rec-x", date="2024-07-08T10:00:00Z"))
    assert list(outside.iterdir()) == []
    sink.close()
