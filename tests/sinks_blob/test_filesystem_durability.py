"""The local folder's durability and its fast path for the engine's own spool files.

Files are durable before they get their final name; the folders that gained names are fsynced
once per batch by ``sync()`` (the engine calls it before any record names the batch). A binary in
the engine's private spool file is not copied: after the checks a copy gets, the file is kept where
it is and ``sync()`` renames it to its final name once the batch's bytes are durable (one syncfs for
a batch, an fsync each for a few), so no name ever points at bytes that are not on disk.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import threading
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


def test_a_sync_returns_only_once_what_a_concurrent_sync_took_is_durable(ctx, blobs: BlobMaker,
                                                                           monkeypatch) -> None:
    """Every session of a run calls sync() from its own thread. One that finds nothing owed because
    another sync() took it a moment ago must still wait for that one's fsyncs: its records may name
    those files (stored in this batch, named or fsynced by the other thread's sync)."""
    sink = _sink(ctx)
    sink.store(blobs(b"ID3 the recording"))
    busy, go = threading.Event(), threading.Event()
    real = filesystem._fsync_path

    def slow(path: str) -> None:
        busy.set()
        go.wait(10)
        real(path)

    monkeypatch.setattr(filesystem, "_fsync_path", slow)
    monkeypatch.setattr(filesystem, "_fsync_file", slow)
    first = threading.Thread(target=sink.sync)
    first.start()
    assert busy.wait(10)
    returned = threading.Event()
    second = threading.Thread(target=lambda: (sink.sync(), returned.set()))
    second.start()
    assert not returned.wait(0.3), "a sync() returned while the names it owed were still being fsynced"
    go.set()
    first.join(10)
    second.join(10)
    assert returned.is_set()


# --- the engine's spool files are kept and named at sync(), not copied ----------------------------


def _publish(sink: filesystem.FilesystemSink, spool: HashingSpool) -> None:
    """What the engine does after a batch's binaries are stored: release each spool (it closes a
    file a sink keeps, leaving it there), then call the sink's sync()."""
    SpoolFiles(Path(spool.path).parent).release(spool)
    sink.sync()


def test_an_engine_spool_file_is_kept_and_named_at_sync_not_copied(ctx, tmp_path, monkeypatch) -> None:
    def no_copy(src: int, dst: int) -> None:
        raise AssertionError("an engine spool file on the same file system is renamed, not copied")

    monkeypatch.setattr(filesystem, "_copy_fd", no_copy)
    sink = _sink(ctx, file_mode=0o640)
    spool, blob = _engine_blob(tmp_path, b"ID3 the recording")
    inode = os.stat(blob.path).st_ino
    stored = sink.store(blob)
    assert not stored.skipped and stored.sha256 == blob.sha256 and blob.kept
    assert not os.path.exists(stored.location), "named before its batch's sync()"
    _publish(sink, spool)
    archived = os.stat(stored.location)
    assert archived.st_ino == inode and not os.path.exists(blob.path)  # the spool file itself, renamed
    assert stat.S_IMODE(archived.st_mode) == 0o640
    try:
        assert os.getxattr(stored.location, "user.rcetl.sha256").decode() == blob.sha256
    except OSError:
        pass  # no user xattrs on this file system
    assert Path(stored.location).read_bytes() == b"ID3 the recording"
    assert sink.store(_engine_blob(tmp_path, b"ID3 the recording")[1]).skipped


def test_a_spool_file_whose_bytes_changed_is_never_linked(ctx, tmp_path) -> None:
    sink = _sink(ctx)
    spool, blob = _engine_blob(tmp_path, b"ID3 the recording")
    Path(blob.path).write_bytes(b"ID3 something else")  # the bytes on disk are not what was hashed
    with pytest.raises(rcetl.IntegrityError):
        sink.store(blob)
    _publish(sink, spool)
    key = tmp_path / "archive" / sink.key_for(blob.ref, blob.record)
    assert not blob.kept and not key.exists() and not Path(f"{key}.json").exists()


def test_a_second_folder_gets_its_own_copy(ctx, tmp_path) -> None:
    one = _sink(ctx)
    other = build_sink(filesystem.FilesystemSink, "other", {"path": "other"}, ctx)
    other.open()
    spool, blob = _engine_blob(tmp_path, b"ID3 the recording")
    inode = os.stat(blob.path).st_ino
    a, b = one.store(blob), other.store(blob)
    assert os.stat(b.location).st_ino != inode  # a copy, there at once
    assert Path(b.location).read_bytes() == b"ID3 the recording"
    _publish(one, spool)
    assert os.stat(a.location).st_ino == inode
    assert Path(a.location).read_bytes() == b"ID3 the recording"


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
    sink._root_dev = -1  # the spool is on another file system than the archive: never kept
    _spool, blob = _engine_blob(tmp_path, b"ID3 the recording")
    stored = sink.store(blob)
    assert tried == [blob.path] and not blob.kept
    assert os.stat(stored.location).st_ino != os.stat(blob.path).st_ino
    assert Path(stored.location).read_bytes() == b"ID3 the recording"
    _spool2, blob2 = _engine_blob(tmp_path, b"ID3 another one", blob_id="rec-2")
    sink.store(blob2)
    assert tried == [blob.path]  # not tried again on this file system


def test_a_run_killed_before_sync_leaves_nothing_under_the_final_name(ctx, tmp_path) -> None:
    killed = _sink(ctx)
    _spool, blob = _engine_blob(tmp_path, b"ID3 the recording")
    stored = killed.store(blob)  # the process dies before its batch's sync(): the file stays a spool file
    rerun = _sink(ctx)
    assert rerun.stat(blob.ref, blob.record) is None and not os.path.exists(stored.location)
    spool, again = _engine_blob(tmp_path, b"ID3 the recording")
    assert not rerun.store(again).skipped
    _publish(rerun, spool)
    assert Path(stored.location).read_bytes() == b"ID3 the recording"


def test_a_rename_that_fails_leaves_nothing_under_the_final_name_and_is_tried_again(ctx, tmp_path,
                                                                                  monkeypatch) -> None:
    sink = _sink(ctx)
    spool, blob = _engine_blob(tmp_path, b"ID3 the recording")
    stored = sink.store(blob)
    real = filesystem._rename_noreplace

    def dies(src: str, dst: str) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(filesystem, "_rename_noreplace", dies)
    with pytest.raises(rcetl.RcetlError):
        _publish(sink, spool)
    assert not os.path.exists(stored.location) and os.path.exists(blob.path)
    monkeypatch.setattr(filesystem, "_rename_noreplace", real)
    sink.sync()  # the engine's retry
    assert Path(stored.location).read_bytes() == b"ID3 the recording" and not os.path.exists(blob.path)


def test_a_kept_file_another_sink_still_reads_is_not_named_by_a_concurrent_sync(ctx, tmp_path) -> None:
    """sync() runs in every session's thread: one batch's sync must not rename a file of another
    batch still in flight (a bucket sink may be uploading it from its spool path). Only files the
    engine released are named."""
    sink = _sink(ctx)
    spool, blob = _engine_blob(tmp_path, b"ID3 the recording")
    stored = sink.store(blob)
    sink.sync()  # another session's batch
    assert os.path.exists(blob.path) and not os.path.exists(stored.location)
    _publish(sink, spool)  # its own batch: released, then synced
    assert Path(stored.location).read_bytes() == b"ID3 the recording"


def test_a_name_another_writer_took_meanwhile_is_never_overwritten(ctx, tmp_path) -> None:
    sink = _sink(ctx)
    spool, blob = _engine_blob(tmp_path, b"ID3 the recording")
    stored = sink.store(blob)
    Path(stored.location).write_bytes(b"ID3 another writer's bytes")  # a second run on the same folder
    with pytest.raises(rcetl.ConflictError):
        _publish(sink, spool)
    assert Path(stored.location).read_bytes() == b"ID3 another writer's bytes"
    same_spool, same = _engine_blob(tmp_path, b"ID3 the recording", blob_id="rec-2")
    other = sink.store(same)
    Path(other.location).write_bytes(b"ID3 the recording")  # the same bytes: nothing is lost
    sink._kept.pop(stored.location)  # the conflicting one is the run's to redo (it stops the run)
    _publish(sink, same_spool)
    assert Path(other.location).read_bytes() == b"ID3 the recording" and not os.path.exists(same.path)


def test_a_key_stored_twice_in_one_batch_is_judged_against_the_kept_file(ctx, tmp_path) -> None:
    sink = _sink(ctx, on_conflict="version")
    first_spool, first = _engine_blob(tmp_path, b"ID3 the recording")
    a = sink.store(first)
    again_spool, again = _engine_blob(tmp_path, b"ID3 the recording")
    assert sink.store(again).skipped  # the same bytes under the same key: not stored twice
    other_spool, other = _engine_blob(tmp_path, b"ID3 other bytes, same key")
    b = sink.store(other)
    assert b.location != a.location  # another version, the kept one untouched
    for spool in (first_spool, again_spool, other_spool):
        SpoolFiles(tmp_path).release(spool)
    sink.sync()
    assert Path(a.location).read_bytes() == b"ID3 the recording"
    assert Path(b.location).read_bytes() == b"ID3 other bytes, same key"


def test_a_kept_file_deleted_before_sync_is_never_named(ctx, tmp_path) -> None:
    sink = _sink(ctx)
    spool, blob = _engine_blob(tmp_path, b"ID3 the recording")
    stored = sink.store(blob)
    sink._delete(sink.key_for(blob.ref, blob.record))  # a failed check discards what was stored
    _publish(sink, spool)
    assert not os.path.exists(stored.location) and not os.path.exists(blob.path)


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
