"""The local folder's durability and its fast path for the engine's own spool files.

Files are fsynced before they get their final name; the folders that gained names are fsynced
once per batch by ``sync()`` (the engine calls it before any record names the batch). A binary in
the engine's private spool file is published by a hard link instead of a copy, after the same
checks and fsync a copy gets.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import pytest

import rcetl
from rcetl.engine.spool import HashingSpool, SpoolFiles
from rcetl.plugins.sinks import filesystem

from .conftest import BlobMaker, build_sink, run_context


def _sink(ctx: rcetl.RunContext, **options: object) -> filesystem.FilesystemSink:
    sink = build_sink(filesystem.FilesystemSink, "archive", {"path": "archive", **options}, ctx)
    sink.open()
    return sink


def _engine_blob(spool_dir: Path, data: bytes, blob_id: str = "rec-1") -> tuple[HashingSpool, rcetl.SpooledBlob]:
    """A binary the way the engine hands it over: written through its hashing spool."""
    spool = HashingSpool(spool_dir)
    spool.write(data)
    ref = rcetl.BlobRef(blob_id, f"https://media.example/{blob_id}", "recording", "audio/mpeg",
                        variables={"date": "2024-03-05T14:30:00Z", "extension": "101", "id": blob_id})
    record = rcetl.Record("recording", blob_id, {"id": blob_id}, account="acc-1", blobs=[ref])
    return spool, spool.finish(ref, record)


def _spy(monkeypatch: pytest.MonkeyPatch, name: str) -> list[str]:
    """The paths the folder sink's fsync function ``name`` is called with, in order (it still fsyncs)."""
    seen: list[str] = []
    real = getattr(filesystem, name)

    def spy(path: str) -> None:
        seen.append(path)
        real(path)

    monkeypatch.setattr(filesystem, name, spy)
    return seen


@pytest.fixture
def fsynced(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every folder the sink fsyncs, in order."""
    return _spy(monkeypatch, "_fsync_path")


def test_folders_that_gained_names_are_fsynced_by_sync_once(ctx, tmp_path, blobs: BlobMaker, fsynced) -> None:
    sink = _sink(ctx)
    first = sink.store(blobs(b"ID3 one", blob_id="rec-1"))
    sink.store(blobs(b"ID3 two", blob_id="rec-2"))
    assert fsynced == []  # names published, their folders not yet fsynced: that is sync's job
    sink.sync()
    folder = os.path.dirname(first.location)
    assert fsynced.count(folder) == 1  # one fsync for the two files (and their sidecars) in it
    # every new level of the key's folders: each one's parent gained a name
    archive = str(tmp_path / "archive")
    for level in ("2024", "2024/03", "2024/03/05", "2024/03/05/101"):
        assert os.path.join(archive, *level.split("/")) in fsynced
    assert archive in fsynced and len(fsynced) == len(set(fsynced))
    fsynced.clear()
    sink.sync()
    assert fsynced == []  # nothing new since


@pytest.fixture
def synced_files(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every sidecar the sink fsyncs in sync() (by path), in order."""
    return _spy(monkeypatch, "_fsync_file")


def test_sidecars_are_fsynced_by_sync_before_their_folders(ctx, blobs: BlobMaker, monkeypatch) -> None:
    sink = _sink(ctx)
    order: list[str] = []
    real_file, real_path = filesystem._fsync_file, filesystem._fsync_path
    monkeypatch.setattr(filesystem, "_fsync_file", lambda p: (order.append(f"file {p}"), real_file(p)))
    monkeypatch.setattr(filesystem, "_fsync_path", lambda p: (order.append(f"folder {p}"), real_path(p)))
    fsyncs: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (fsyncs.append(fd), real_fsync(fd)))
    one = sink.store(blobs(b"ID3 one", blob_id="rec-1"))
    two = sink.store(blobs(b"ID3 two", blob_id="rec-2"))
    assert len(fsyncs) == 2  # each binary before its name; the sidecars wait for sync()
    assert order == []
    sink.sync()
    sidecars = [f"file {one.location}.json", f"file {two.location}.json"]
    assert sorted(order[:2]) == sorted(sidecars)  # the sidecars' bytes first ...
    assert all(o.startswith("folder ") for o in order[2:]) and f"folder {os.path.dirname(one.location)}" in order
    order.clear()
    sink.sync()
    assert order == []  # nothing owed any more


def test_a_failed_sidecar_fsync_is_reported_and_tried_again(ctx, blobs: BlobMaker, monkeypatch,
                                                           synced_files, fsynced) -> None:
    sink = _sink(ctx)
    stored = sink.store(blobs(b"ID3 one"))
    real = filesystem._fsync_file

    def failing(path: str) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(filesystem, "_fsync_file", failing)
    with pytest.raises(rcetl.TransientError):
        sink.sync()
    assert fsynced == []  # no folder made durable before the sidecar's bytes are
    monkeypatch.setattr(filesystem, "_fsync_file", real)
    synced_files.clear()
    sink.sync()  # the next sync owes the sidecar still
    assert os.path.dirname(stored.location) in fsynced


def test_a_sidecar_deleted_before_sync_is_not_owed(ctx, blobs: BlobMaker, synced_files) -> None:
    sink = _sink(ctx)
    stored = sink.store(blobs(b"ID3 one"))
    os.unlink(stored.location + ".json")
    sink.sync()  # no error: nothing of it left to make durable


@pytest.mark.parametrize("damage", ["missing", "empty", "cut", "another binary's"])
def test_a_sidecar_a_crash_cut_short_is_rewritten_when_its_binary_is_found(ctx, blobs: BlobMaker, damage) -> None:
    """A run killed before sync() can leave a binary whose sidecar never reached the disk whole
    (its bytes are fsynced only by sync()); the next run finds the binary and rewrites the sidecar."""
    sink = _sink(ctx)
    blob = blobs(b"ID3 one", blob_id="rec-1")
    stored = sink.store(blob)
    sink.sync()
    sidecar = Path(stored.location + ".json")
    whole = sidecar.read_bytes()
    if damage == "missing":
        sidecar.unlink()
    elif damage == "empty":
        sidecar.write_bytes(b"")
    elif damage == "cut":
        sidecar.write_bytes(whole[: len(whole) // 2])
    else:
        sidecar.write_bytes(whole.replace(blob.sha256.encode(), b"0" * 64))
    again = sink.store(blobs(b"ID3 one", blob_id="rec-1"))
    assert again.skipped and again.location == stored.location
    assert json.loads(sidecar.read_bytes()) == json.loads(whole)
    sink.close()


def test_a_whole_sidecar_is_left_alone_when_its_binary_is_found(ctx, blobs: BlobMaker, synced_files) -> None:
    sink = _sink(ctx)
    stored = sink.store(blobs(b"ID3 one", blob_id="rec-1"))
    sink.sync()
    sidecar = Path(stored.location + ".json")
    before = sidecar.stat()
    synced_files.clear()
    assert sink.store(blobs(b"ID3 one", blob_id="rec-1")).skipped
    assert sidecar.stat().st_ino == before.st_ino  # not rewritten
    sink.sync()
    assert synced_files == []


def test_a_failed_folder_fsync_is_reported_and_tried_again(ctx, blobs: BlobMaker, monkeypatch) -> None:
    sink = _sink(ctx)
    stored = sink.store(blobs(b"ID3 one"))
    calls: list[str] = []

    def failing(path: str) -> None:
        calls.append(path)
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(filesystem, "_fsync_path", failing)
    with pytest.raises(rcetl.TransientError, match="I/O fault"):
        sink.sync()
    monkeypatch.undo()
    retried: list[str] = []
    monkeypatch.setattr(filesystem, "_fsync_path", retried.append)
    sink.sync()
    assert os.path.dirname(stored.location) in retried  # still owed after the failure


def test_no_fsync_means_no_folder_fsync(ctx, blobs: BlobMaker, fsynced) -> None:
    sink = _sink(ctx, fsync=False)
    sink.store(blobs(b"ID3 one"))
    sink.sync()
    assert fsynced == []


def test_close_syncs_what_is_still_owed(ctx, blobs: BlobMaker, fsynced) -> None:
    sink = _sink(ctx)
    stored = sink.store(blobs(b"ID3 one"))
    sink.close()
    assert os.path.dirname(stored.location) in fsynced


# --- the engine's spool files are linked, not copied ----------------------------------------------


def test_an_engine_spool_file_is_published_by_a_hard_link(ctx, tmp_path, monkeypatch) -> None:
    def no_copy(src: int, dst: int) -> None:
        raise AssertionError("an engine spool file on the same file system is linked, not copied")

    monkeypatch.setattr(filesystem, "_copy_fd", no_copy)
    sink = _sink(ctx, file_mode=0o640)
    spool, blob = _engine_blob(tmp_path, b"ID3 the recording")
    stored = sink.store(blob)
    assert not stored.skipped and stored.sha256 == blob.sha256
    archived = os.stat(stored.location)
    assert archived.st_ino == os.stat(blob.path).st_ino
    assert stat.S_IMODE(archived.st_mode) == 0o640
    try:
        assert os.getxattr(stored.location, "user.rcetl.sha256").decode() == blob.sha256
    except OSError:
        pass  # no user xattrs on this file system
    SpoolFiles(tmp_path).release(spool)  # the engine is done with it: the spool name goes
    assert not os.path.exists(blob.path)
    assert Path(stored.location).read_bytes() == b"ID3 the recording"
    assert sink.store(_engine_blob(tmp_path, b"ID3 the recording")[1]).skipped


def test_a_spool_file_whose_bytes_changed_is_never_linked(ctx, tmp_path) -> None:
    sink = _sink(ctx)
    _spool, blob = _engine_blob(tmp_path, b"ID3 the recording")
    Path(blob.path).write_bytes(b"ID3 something else")  # the bytes on disk are not what was hashed
    with pytest.raises(rcetl.IntegrityError):
        sink.store(blob)
    key = tmp_path / "archive" / sink.key_for(blob.ref, blob.record)
    assert not key.exists() and not Path(f"{key}.json").exists()


def test_a_second_folder_gets_its_own_copy(ctx, tmp_path) -> None:
    one = _sink(ctx)
    other = build_sink(filesystem.FilesystemSink, "other", {"path": "other"}, ctx)
    other.open()
    _spool, blob = _engine_blob(tmp_path, b"ID3 the recording")
    a, b = one.store(blob), other.store(blob)
    assert os.stat(a.location).st_ino == os.stat(blob.path).st_ino
    assert os.stat(b.location).st_ino != os.stat(blob.path).st_ino
    assert Path(b.location).read_bytes() == b"ID3 the recording"


def test_across_file_systems_the_spool_file_is_copied(ctx, tmp_path, monkeypatch) -> None:
    real_link = os.link
    tried: list[str] = []

    def cross_device(src: str, dst: str, *args: object, **kwargs: object) -> None:
        if os.fspath(src).startswith(str(tmp_path / "blob-")):  # the engine's spool files
            tried.append(os.fspath(src))
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_link(src, dst, *args, **kwargs)  # the temp copy's own publication

    monkeypatch.setattr(filesystem.os, "link", cross_device)
    sink = _sink(ctx)
    _spool, blob = _engine_blob(tmp_path, b"ID3 the recording")
    stored = sink.store(blob)
    assert tried == [blob.path]
    assert os.stat(stored.location).st_ino != os.stat(blob.path).st_ino
    assert Path(stored.location).read_bytes() == b"ID3 the recording"
    _spool2, blob2 = _engine_blob(tmp_path, b"ID3 another one", blob_id="rec-2")
    sink.store(blob2)
    assert tried == [blob.path]  # not tried again on this file system


def test_a_failed_link_leaves_nothing_under_the_final_name(ctx, tmp_path, monkeypatch) -> None:
    def dies(src: str, dst: str, *args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # stands in for the process being killed at the link

    sink = _sink(ctx)
    _spool, blob = _engine_blob(tmp_path, b"ID3 the recording")
    monkeypatch.setattr(filesystem.os, "link", dies)
    with pytest.raises(KeyboardInterrupt):
        sink.store(blob)
    monkeypatch.undo()
    assert sink.stat(blob.ref, blob.record) is None
    assert not sink.store(blob).skipped


@pytest.fixture
def ctx(tmp_path: Path) -> rcetl.RunContext:
    return run_context(tmp_path)


def test_temp_names_of_a_forked_child_carry_its_own_pid(ctx) -> None:
    """Temp names hold the process id (a killed run's leftovers are found by it) without a getpid
    call per file: a forked child (a Celery prefork worker) must still name its own."""
    sink = _sink(ctx)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its temp name and leave at once
        try:
            os.write(write, os.path.basename(sink._temp_path()).encode())
        finally:
            os._exit(0)
    os.close(write)
    child_name = os.read(read, 4096).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert child_name.split("-", 1)[0] == str(pid)
    assert os.path.basename(sink._temp_path()).split("-", 1)[0] == str(os.getpid())
    assert child_name != os.path.basename(sink._temp_path())
