"""The local folder's per-file work: what ``sync()`` and a new folder cost, beyond the guarantees
test_filesystem_durability.py holds it to (those stay: files durable before their name, sidecars and
folders by ``sync()``)."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import stat

import pytest

import rcetl
from rcetl.plugins.sinks import filesystem

from .conftest import BlobMaker, build_sink


@pytest.fixture
def fsync_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every os.fsync the sink makes (sidecars and folders at sync(); they still fsync)."""
    seen: list[int] = []
    real = os.fsync
    monkeypatch.setattr(filesystem.os, "fsync", lambda fd: (seen.append(fd), real(fd))[1])
    return seen


def _sink(ctx: rcetl.RunContext, **options: object) -> filesystem.FilesystemSink:
    sink = build_sink(filesystem.FilesystemSink, "archive", {"path": "archive", **options}, ctx)
    sink.open()
    return sink


def _blobs_in_many_folders(sink: filesystem.FilesystemSink, blobs: BlobMaker, n: int) -> list[rcetl.StoredBlob]:
    return [sink.store(blobs(f"ID3 {i}".encode(), blob_id=f"rec-{i}", date=f"2024-03-{1 + i % 28:02d}T10:00:00Z"))
            for i in range(n)]


@pytest.fixture
def per_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """sync() fsyncs each owed path (what it does below _SYNCFS_FROM of them, or without syncfs)."""
    monkeypatch.setattr(filesystem, "_SYNCFS_FROM", 10**9)


def test_sync_hands_the_pool_one_task_per_lane_not_one_per_file(ctx, blobs: BlobMaker, monkeypatch,
                                                                 per_path) -> None:
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


def test_a_failed_lane_leaves_only_what_is_not_durable_owed(ctx, blobs: BlobMaker, monkeypatch,
                                                           per_path) -> None:
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


def _spy_realpath(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every path the sink resolves level by level (realpath)."""
    resolved: list[str] = []
    real = os.path.realpath
    monkeypatch.setattr(filesystem.os.path, "realpath", lambda p, *a, **kw: (resolved.append(p), real(p, *a, **kw))[1])
    return resolved


def _inside(sink: filesystem.FilesystemSink, paths: list[str]) -> list[str]:
    return [p for p in paths if p.startswith(sink._root + os.sep)]


def test_a_folder_made_for_a_file_is_not_resolved_again_for_it(ctx, blobs: BlobMaker, monkeypatch) -> None:
    """The folders a file's key needs are made by the sink under a folder inside the archive: they
    are inside too, so writing the file does not resolve every level of its path (realpath: a
    system call per level) after making them."""
    sink = _sink(ctx)
    resolved = _spy_realpath(monkeypatch)
    stored = sink.store(blobs(b"ID3 new folder", blob_id="rec-new", date="2024-05-06T10:00:00Z"))
    assert os.path.exists(stored.location)
    assert not _inside(sink, resolved)
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


def _made_meanwhile(monkeypatch: pytest.MonkeyPatch, make) -> None:  # noqa: ANN001 - make(level)
    """The first mkdir of the sink finds its level made meanwhile (``make`` makes it) and fails
    with EEXIST, as when another download thread stores a recording of the same day."""
    real = os.mkdir
    raced: list[str] = []

    def mkdir(path, *a, **kw):  # noqa: ANN001, ANN202
        if not raced:
            raced.append(path)
            make(path)
            raise FileExistsError(errno.EEXIST, "File exists", path)
        return real(path, *a, **kw)

    monkeypatch.setattr(filesystem.os, "mkdir", mkdir)


def test_a_folder_another_thread_made_meanwhile_is_not_resolved_level_by_level(ctx, blobs: BlobMaker,
                                                                                monkeypatch) -> None:
    """Eight download threads store recordings of the same day at once and race to make its folder:
    the loser's folder is a real folder under one inside the archive, so inside too (one lstat). It
    was resolved level by level for every such file (realpath: a system call per level of the path,
    each a hand-off of the interpreter between the threads)."""
    sink = _sink(ctx)
    sink.store(blobs(b"ID3 first", blob_id="rec-1", date="2024-05-05T10:00:00Z"))  # the archive's top levels
    _made_meanwhile(monkeypatch, lambda path: os.mkdir(path, 0o700))
    resolved = _spy_realpath(monkeypatch)
    stored = sink.store(blobs(b"ID3 raced", blob_id="rec-2", date="2024-05-06T10:00:00Z"))
    assert os.path.exists(stored.location)
    assert not _inside(sink, resolved)
    sink.close()


def test_a_link_out_of_the_archive_made_meanwhile_is_still_refused(ctx, blobs: BlobMaker, tmp_path,
                                                                   monkeypatch) -> None:
    """What the race's shortcut must not weaken: a level made meanwhile as a link out of the archive
    is refused before anything is made or chmodded through it (it once was: the next level was made
    outside, and the chmod of the link changed the mode of the folder it points to)."""
    sink = _sink(ctx)
    sink.store(blobs(b"ID3 first", blob_id="rec-1", date="2024-05-05T10:00:00Z"))
    outside = tmp_path / "outside"
    outside.mkdir(mode=0o755)
    _made_meanwhile(monkeypatch, lambda path: os.symlink(outside, path))
    with pytest.raises(rcetl.PermanentError, match="not a folder inside"):
        sink.store(blobs(b"ID3 escape", blob_id="rec-x", date="2024-05-06T10:00:00Z"))
    assert list(outside.iterdir()) == []
    assert stat.S_IMODE(outside.stat().st_mode) == 0o755
    sink.close()


@pytest.fixture
def umask(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201 - a setter
    """Set this process's umask for the test (and what the sink read of it at import)."""
    old = os.umask(0o022)
    os.umask(old)

    def set_to(mask: int) -> None:
        os.umask(mask)
        monkeypatch.setattr(filesystem, "_UMASK", mask)

    yield set_to
    os.umask(old)


def _spy_chmod(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real = os.chmod
    monkeypatch.setattr(filesystem.os, "chmod", lambda p, *a, **kw: (seen.append(str(p)), real(p, *a, **kw))[1])
    return seen


def _folder_modes(sink: filesystem.FilesystemSink, stored: rcetl.StoredBlob) -> set[int]:
    modes = set()
    folder = os.path.dirname(stored.location)
    while folder != sink._root:
        modes.add(stat.S_IMODE(os.stat(folder).st_mode))
        folder = os.path.dirname(folder)
    return modes


def test_a_new_folder_mkdir_gave_its_mode_is_not_chmodded(ctx, blobs: BlobMaker, monkeypatch, umask) -> None:
    """A recording's folders are new for most recordings (a day and an extension each): mkdir
    already gives them 0700 under the usual umask, and a chmod each was two more system calls."""
    umask(0o022)
    sink = _sink(ctx)
    chmodded = _spy_chmod(monkeypatch)
    stored = sink.store(blobs(b"ID3 new folders", blob_id="rec-1", date="2024-05-06T10:00:00Z"))
    assert not _inside(sink, chmodded)
    assert _folder_modes(sink, stored) == {0o700}
    sink.close()


@pytest.mark.parametrize(("mask", "mode"), [(0o077, 0o750), (0o022, 0o2770)])
def test_a_mode_mkdir_cannot_give_is_set_by_chmod(ctx, blobs: BlobMaker, monkeypatch, umask, mask: int,
                                                 mode: int) -> None:
    """What skipping the chmod must not lose: a mode the umask narrows (0750 under 077), or one
    with the set-group-id bit (a shared archive), which Linux's mkdir drops."""
    umask(mask)
    sink = _sink(ctx, dir_mode=mode)
    chmodded = _spy_chmod(monkeypatch)
    stored = sink.store(blobs(b"ID3 new folders", blob_id="rec-1", date="2024-05-06T10:00:00Z"))
    assert _inside(sink, chmodded)
    assert _folder_modes(sink, stored) == {mode}
    sink.close()


def test_a_recording_in_a_new_folder_costs_no_stat_of_what_cannot_be_there(ctx, blobs: BlobMaker,
                                                                            monkeypatch) -> None:
    """Most recordings go to a new folder: the check for the key finds the folder missing and needs
    no stat of the file; the folder is made before the sidecar's path is checked (it is then known),
    not looked up again to learn it is still missing. Three stats of the folder and one of the file
    became two of the folder."""
    sink = _sink(ctx)
    looked: list[str] = []
    real = os.stat
    monkeypatch.setattr(filesystem.os, "stat", lambda p, *a, **kw: (looked.append(os.fspath(p)), real(p, *a, **kw))[1])
    stored = sink.store(blobs(b"ID3 new folders", blob_id="rec-1", date="2024-05-06T10:00:00Z"))
    folder = os.path.dirname(stored.location)
    assert stored.location not in looked
    assert looked.count(folder) <= 2, looked
    sink.close()


def _spy_syncfs(monkeypatch: pytest.MonkeyPatch, fail: int = 0) -> list[str]:
    """The folders syncfs is called on (their file system is synced for real); the first ``fail``
    calls fail with EIO instead."""
    seen: list[str] = []
    # Where libc has no syncfs(2) (before Linux 5.8) the sink never calls it; what these tests check
    # is the sink's choice and bookkeeping, so there a sync(2) of every file system stands in for it.
    real = filesystem._syncfs or (lambda _fd: (os.sync(), 0)[1])

    def spy(fd: int) -> int:
        seen.append(os.readlink(f"/proc/self/fd/{fd}"))
        if len(seen) <= fail:
            ctypes.set_errno(errno.EIO)
            return -1
        return real(fd)

    monkeypatch.setattr(filesystem, "_syncfs", spy)
    return seen


def test_a_large_sync_is_one_syncfs_not_an_fsync_per_path(ctx, blobs: BlobMaker, monkeypatch, fsync_calls) -> None:
    """A batch owing at least _SYNCFS_FROM paths (sidecars and folders) is made durable by one
    syncfs(2) of the archive's file system: no fsync per sidecar or folder."""
    sink = _sink(ctx)
    stored = _blobs_in_many_folders(sink, blobs, filesystem._SYNCFS_FROM)
    calls = _spy_syncfs(monkeypatch)
    fsync_calls.clear()
    sink.sync()
    assert len(calls) == 1 and calls[0].startswith(sink._root)
    assert fsync_calls == []
    sink.sync()  # nothing owed any more
    assert len(calls) == 1
    assert all(os.path.exists(s.location + ".json") for s in stored)
    sink.close()


def test_a_failed_syncfs_is_reported_and_everything_stays_owed(ctx, blobs: BlobMaker, monkeypatch) -> None:
    sink = _sink(ctx)
    _blobs_in_many_folders(sink, blobs, filesystem._SYNCFS_FROM)
    calls = _spy_syncfs(monkeypatch, fail=1)
    with pytest.raises(rcetl.TransientError, match="syncing the archive's file system"):
        sink.sync()
    sink.sync()  # tried again: still the whole batch, so still one syncfs
    assert len(calls) == 2
    sink.sync()
    assert len(calls) == 2
    sink.close()


def test_a_small_sync_keeps_its_fsyncs(ctx, blobs: BlobMaker, monkeypatch, fsync_calls) -> None:
    """Below _SYNCFS_FROM owed paths (an incremental run's few files) sync() fsyncs just those, not
    the whole file system (which would also write what other processes left dirty on it)."""
    sink = _sink(ctx)
    stored = _blobs_in_many_folders(sink, blobs, 3)
    calls: list[int] = []
    monkeypatch.setattr(filesystem, "_syncfs", lambda fd: calls.append(fd) or 0)
    fsync_calls.clear()
    sink.sync()
    assert calls == []
    assert len(fsync_calls) >= 6  # three sidecars, their folders and the folders above them
    assert all(s.location for s in stored)
    sink.close()


def test_a_new_sidecar_is_made_in_place_without_a_temp_file(ctx, blobs: BlobMaker, monkeypatch) -> None:
    """A new key's sidecar is created where it stays (create-only): no temp file, no rename."""
    sink = _sink(ctx)
    renamed: list[tuple[str, str]] = []
    real = os.replace
    monkeypatch.setattr(filesystem.os, "replace", lambda a, b: (renamed.append((a, b)), real(a, b))[1])
    stored = sink.store(blobs(b"ID3 in place", blob_id="rec-in-place"))
    assert renamed == []
    with open(stored.location + ".json", "rb") as fh:
        assert json.load(fh)["blob"]["sha256"] == stored.sha256
    assert stat.S_IMODE(os.stat(stored.location + ".json").st_mode) == 0o600 & ~filesystem._UMASK
    assert os.listdir(os.path.join(sink._root, filesystem.TEMP_DIR)) == []
    sink.close()


def test_a_sidecar_a_killed_run_left_without_its_binary_is_replaced(ctx, blobs: BlobMaker) -> None:
    """A run killed while writing a new sidecar (its binary not yet named) leaves it cut short; the
    next store of that key replaces it whole (atomically, through a temp file)."""
    sink = _sink(ctx)
    blob = blobs(b"ID3 killed mid-sidecar", blob_id="rec-killed")
    key = sink.key_for(blob.ref, blob.record)
    path = os.path.join(sink._root, *key.split("/"))
    os.makedirs(os.path.dirname(path))
    with open(path + ".json", "wb") as fh:
        fh.write(b'{"blob": {"blob_id": "rec-ki')
    stored = sink.store(blob)
    assert not stored.skipped
    with open(stored.location + ".json", "rb") as fh:
        assert json.load(fh)["blob"]["sha256"] == blob.sha256
    assert os.listdir(os.path.join(sink._root, filesystem.TEMP_DIR)) == []
    sink.close()


def test_a_failed_sidecar_write_leaves_no_sidecar(ctx, blobs: BlobMaker, monkeypatch) -> None:
    """The disk fills while a new sidecar is written in place: nothing half-written stays under its
    name (and the binary never got one)."""
    sink = _sink(ctx)
    blob = blobs(b"ID3 disk full", blob_id="rec-full")

    def full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(filesystem.os, "write", full)
    with pytest.raises(rcetl.TransientError, match="disk full"):
        sink.store(blob)
    key = sink.key_for(blob.ref, blob.record)
    path = os.path.join(sink._root, *key.split("/"))
    assert not os.path.exists(path + ".json") and not os.path.exists(path)
    sink.close()


def test_a_sidecar_rewritten_beside_its_binary_is_replaced_atomically(ctx, blobs: BlobMaker, monkeypatch) -> None:
    """A binary found in place whose sidecar is missing (records may name it): the new sidecar is
    written to a temp file and renamed over, never created in place, where a reader or a kill could
    meet it half-written."""
    sink = _sink(ctx)
    blob = blobs(b"ID3 found without sidecar", blob_id="rec-found")
    stored = sink.store(blob)
    sink.sync()
    os.unlink(stored.location + ".json")
    renamed: list[str] = []
    real = os.replace
    monkeypatch.setattr(filesystem.os, "replace", lambda a, b: (renamed.append(b), real(a, b))[1])
    again = sink.store(blob)
    assert again.skipped
    assert renamed == [stored.location + ".json"]
    with open(stored.location + ".json", "rb") as fh:
        assert json.load(fh)["blob"]["sha256"] == blob.sha256
    sink.close()


def _spy(monkeypatch: pytest.MonkeyPatch, name: str) -> list[str]:
    """Every path the sink passes to ``os.<name>``."""
    seen: list[str] = []
    real = getattr(os, name)
    monkeypatch.setattr(filesystem.os, name, lambda p, *a, **kw: (seen.append(os.fspath(p)), real(p, *a, **kw))[1])
    return seen


def test_an_archive_an_earlier_run_left_is_checked_a_level_at_a_time(ctx, blobs: BlobMaker, monkeypatch) -> None:
    """A run over an archive an earlier run filled (its folders all there, none known yet): each
    folder level of a key is looked at once (lstat: a real folder under one inside the archive is
    inside too), not resolved level by level from the root for every folder (realpath: a system
    call per level, for each recording's folder of a re-run)."""
    first = _sink(ctx)
    dates = [f"2024-05-{d:02d}T10:00:00Z" for d in (6, 7)]
    for i, date in enumerate(dates):
        first.store(blobs(f"ID3 {i}".encode(), blob_id=f"rec-{i}", date=date))
    first.close()
    sink = _sink(ctx)
    resolved = _spy_realpath(monkeypatch)
    looked = _spy(monkeypatch, "lstat")
    for i, date in enumerate(dates):
        stored = sink.store(blobs(f"ID3 {i}".encode(), blob_id=f"rec-{i}", date=date))
        assert stored.skipped
    assert not _inside(sink, resolved)
    assert len(looked) == len(set(looked)), looked  # no level looked at twice
    # the second day's levels below the month, not the year and month again
    assert len(looked) <= 5 + 3, looked
    sink.close()


def test_a_new_folder_is_made_by_mkdir_alone_under_a_known_one(ctx, blobs: BlobMaker, monkeypatch) -> None:
    """A recording whose day folder is known: its new folders (extension, kind) cost a mkdir each;
    nothing above them is looked at again, and the process's group is not asked per folder."""
    sink = _sink(ctx)
    asked: list[int] = []
    real_egid = os.getegid
    monkeypatch.setattr(filesystem.os, "getegid", lambda: (asked.append(1), real_egid())[1])
    sink.store(blobs(b"ID3 first", blob_id="rec-1", date="2024-05-06T10:00:00Z", extension="101"))
    statted, lstatted, made = _spy(monkeypatch, "stat"), _spy(monkeypatch, "lstat"), _spy(monkeypatch, "mkdir")
    stored = sink.store(blobs(b"ID3 second", blob_id="rec-2", date="2024-05-06T11:00:00Z", extension="102"))
    day = os.path.dirname(os.path.dirname(os.path.dirname(stored.location)))
    assert made == [os.path.join(day, "102"), os.path.join(day, "102", "recording")]
    assert not [p for p in statted + lstatted if not p.startswith(os.path.join(day, "102"))], statted + lstatted
    assert asked == []
    sink.close()


def test_a_known_folder_removed_meanwhile_is_made_again(ctx, blobs: BlobMaker) -> None:
    """Folders the sink knows are removed behind its back (by hand, mid-run): the next key in a new
    folder under them is stored all the same, the levels above made again from the root."""
    sink = _sink(ctx)
    stored = sink.store(blobs(b"ID3 first", blob_id="rec-1", date="2024-05-06T10:00:00Z"))
    month = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(stored.location))))
    for folder, _, files in os.walk(month, topdown=False):
        for name in files:
            os.unlink(os.path.join(folder, name))
        os.rmdir(folder)
    again = sink.store(blobs(b"ID3 second", blob_id="rec-2", date="2024-05-06T11:00:00Z", extension="102"))
    with open(again.location, "rb") as fh:
        assert fh.read() == b"ID3 second"
    sink.close()


def test_a_file_where_a_folder_level_belongs_is_refused(ctx, blobs: BlobMaker) -> None:
    """A level of a key that is a file, not a folder: refused with the sink's message, nothing made."""
    sink = _sink(ctx)
    os.makedirs(os.path.join(sink._root, "2024"))
    with open(os.path.join(sink._root, "2024", "07"), "wb") as fh:
        fh.write(b"not a folder")
    with pytest.raises(rcetl.PermanentError, match="not a folder inside"):
        sink.store(blobs(b"ID3 blocked", blob_id="rec-x", date="2024-07-08T10:00:00Z"))
    assert os.listdir(os.path.join(sink._root, "2024")) == ["07"]
    with open(os.path.join(sink._root, "2024", "07"), "rb") as fh:
        assert fh.read() == b"not a folder"
    sink.close()
