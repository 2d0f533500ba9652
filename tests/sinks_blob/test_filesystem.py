"""Local-folder specifics: atomic create-only writes, modes, confinement, disk faults."""

from __future__ import annotations

import errno
import os
import stat
import subprocess

import pytest

import rcetl
from rcetl.plugins.sinks import filesystem
from tests.services import unavailable

from .conftest import BlobMaker, build_sink, run_context


def _sink(ctx, **options) -> filesystem.FilesystemSink:
    sink = build_sink(filesystem.FilesystemSink, "archive", {"path": "archive", **options}, ctx)
    sink.open()
    return sink


def test_relative_path_resolves_against_pipeline_folder_and_modes_are_owner_only(
    tmp_path, blobs: BlobMaker
) -> None:
    sink = _sink(run_context(tmp_path))
    stored = sink.store(blobs(b"abc"))
    path = tmp_path / "archive" / "2024/03/05/101/recording/rec-1.mp3"
    assert stored.location == str(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert (
        stat.S_IMODE((tmp_path / "archive" / "2024/03/05/101/recording/rec-1.mp3.json").stat().st_mode)
        == 0o600
    )
    assert not [p for p in (tmp_path / "archive").rglob("*.part")]


def test_modes_are_configurable(ctx, tmp_path, blobs: BlobMaker) -> None:
    stored = _sink(ctx, file_mode=0o640, dir_mode=0o750).store(blobs(b"abc"))
    assert stat.S_IMODE(os.stat(stored.location).st_mode) == 0o640


def test_a_crash_mid_copy_leaves_no_file_under_the_final_name(ctx, tmp_path, blobs, monkeypatch) -> None:
    sink = _sink(ctx)

    def dies_half_way(src: int, dst: int) -> None:
        os.write(dst, b"half")
        raise KeyboardInterrupt  # stands in for the process being killed mid-write

    monkeypatch.setattr(filesystem, "_copy_fd", dies_half_way)
    blob = blobs(b"the whole recording")
    with pytest.raises(KeyboardInterrupt):
        sink.store(blob)
    assert sink.stat(blob.ref, blob.record) is None
    assert not [p for p in (tmp_path / "archive").rglob("*") if p.is_file() and not p.name.endswith(".json")]
    monkeypatch.undo()
    assert not sink.store(blob).skipped


def test_disk_full_is_transient(ctx, blobs, monkeypatch) -> None:
    # ENOSPC cannot be provoked safely on a shared disk, so the copy raises it as the kernel would.
    def full(src: int, dst: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    sink = _sink(ctx)
    monkeypatch.setattr(filesystem, "_copy_fd", full)
    with pytest.raises(rcetl.TransientError, match="disk full"):
        sink.store(blobs(b"abc"))


def test_symlink_out_of_the_archive_is_refused(ctx, tmp_path, blobs) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    sink = _sink(ctx, key="{kind}/{id}.{ext}")
    os.symlink(outside, tmp_path / "archive" / "recording")
    with pytest.raises(rcetl.PermanentError, match="outside"):
        sink.store(blobs(b"abc"))
    assert list(outside.iterdir()) == []


def test_skip_survives_a_copy_without_xattrs(ctx, tmp_path, blobs) -> None:
    sink = _sink(ctx)
    stored = sink.store(blobs(b"abc"))
    try:
        os.removexattr(stored.location, "user.rcetl.sha256")
    except OSError:
        pass  # this file system keeps no xattrs: the sidecar path is exercised anyway
    assert sink.store(blobs(b"abc")).skipped
    os.unlink(stored.location + ".json")
    assert sink.store(blobs(b"abc")).skipped  # falls back to rehashing the file


def test_check_reports_an_unwritable_folder(tmp_path, request: pytest.FixtureRequest) -> None:
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    as_root = os.geteuid() == 0
    # Root writes through any mode (CI runs as root): a read-only file system stops it too.
    if as_root and subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(ro)],
                                  capture_output=True).returncode:
        unavailable("running as root without mount: no folder here is unwritable for root")
    try:
        with pytest.raises(rcetl.ConfigError, match="cannot write"):
            _sink(run_context(tmp_path), path="ro").check()
    finally:
        if as_root:
            subprocess.run(["umount", "-l", str(ro)], capture_output=True)


def test_registered_through_the_entry_point() -> None:
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="rcetl") if e.name == "sinks"]
    entries = {entry.name: entry for entry in ep.load().rcetl_sinks()}
    assert entries["filesystem"].load() is filesystem.FilesystemSink
