"""The spool: binaries hash on their way to disk, and a killed run's partial downloads are removed."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import rcetl
from rcetl.engine.spool import HashingSpool, prepare_spool_dir


def test_a_killed_runs_spool_folder_is_removed_and_a_live_ones_kept(tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid that no longer runs: what a SIGKILLed run leaves
    dead = tmp_path / f"{gone.pid}-deadbeef"
    dead.mkdir()
    (dead / "blob-1.part").write_bytes(b"half a recording")
    live = tmp_path / f"{os.getpid()}-running0"
    live.mkdir()
    (live / "blob-2.part").write_bytes(b"in flight")

    prepare_spool_dir(tmp_path)

    assert not dead.exists()
    assert (live / "blob-2.part").read_bytes() == b"in flight"
    assert oct(tmp_path.stat().st_mode & 0o777) == oct(0o700)


def test_spool_hashes_what_it_writes_and_learns_the_served_type(tmp_path: Path) -> None:
    spool = HashingSpool(tmp_path)
    spool.write(b"RIFF")
    spool.write(b"....WAVE")
    spool.content_type = "audio/wav"
    ref = rcetl.BlobRef("recording-1", "https://x", "recording", content_type="audio/mpeg",
                        variables={"ext": "mp3", "id": "1"})
    blob = spool.finish(ref, None)
    assert blob.size == 12 and blob.sha256 == hashlib.sha256(b"RIFF....WAVE").hexdigest()
    # the key will be named after what was served, not the listing's guess
    assert blob.ref.content_type == "audio/wav" and "ext" not in blob.ref.variables
    assert oct(os.stat(blob.path).st_mode & 0o777) == oct(0o600)


def test_new_spool_files_are_named_by_a_counter_not_drawn_by_mkstemp(tmp_path: Path, monkeypatch) -> None:
    """Most binaries need a new spool file (a sink hard-linked the last one): it is created under a
    counter's name, owner-only and exclusively, without mkstemp's random draw; a name another
    process took is skipped."""
    import tempfile

    from rcetl.engine.spool import SpoolFiles

    def no_mkstemp(*args, **kwargs):  # noqa: ANN002, ANN003
        raise AssertionError("mkstemp called")

    monkeypatch.setattr(tempfile, "mkstemp", no_mkstemp)
    files = SpoolFiles(tmp_path)
    first = files.open()
    taken = f"{files._prefix}{1:x}.part"  # the next name, taken by someone else meanwhile
    Path(taken).write_bytes(b"not ours")
    second = files.open()
    assert first.path != second.path and second.path != taken
    assert Path(taken).read_bytes() == b"not ours"
    for spool in (first, second):
        spool.write(b"ID3")
        spool.close()
        assert os.path.dirname(spool.path) == str(tmp_path)
        assert oct(os.stat(spool.path).st_mode & 0o777) == oct(0o600)
        assert Path(spool.path).read_bytes() == b"ID3"
