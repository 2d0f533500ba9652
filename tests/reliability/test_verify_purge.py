"""``rcetl verify`` finds every kind of damage and nothing on a clean archive; ``rcetl purge`` deletes
at the source only what verification proved present in every sink.

A real archive of the sandbox (SQLite + two local folders) is damaged one way at a time: a file
deleted, a file corrupted (same size, one byte flipped), a row deleted, an object copied under
another key. Each must be found (exit 1, the right finding), and after repair verify is clean again
(exit 0). Blob sinks that cannot list their objects (S3, GCS, Dropbox: no ``iter_stored``) get an
``unlisted`` note instead of duplicate detection; the local folder is listed by a walk.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from rcetl.sandbox import Sandbox

from .harness import env_for, rcetl_cli, write_pipeline


def _setup(tmp: Path, sb: Sandbox, purge: str = "") -> Path:
    sinks = f"""
  db: {{plugin: sqlite, url: "sqlite:///{tmp / 'archive.db'}"}}
  files: {{plugin: filesystem, path: {tmp / 'files'}}}
  mirror: {{plugin: filesystem, path: {tmp / 'mirror'}}}
"""
    return write_pipeline(tmp, sb, sinks, extra=purge)


def _verify(pipeline: Path, env: dict) -> tuple[int, dict]:
    done = rcetl_cli(["verify", str(pipeline), "--json"], env)
    assert done.returncode in (0, 1), done.stdout[-2000:] + done.stderr[-2000:]
    return done.returncode, json.loads(done.stdout)


def _problems(report: dict) -> list[tuple[str, str]]:
    return [(f["kind"], f["sink"]) for f in report["findings"]
            if f["kind"] in ("missing", "duplicate", "missing-file", "mismatch", "failed")]


def _blob_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".json"))


@pytest.fixture(scope="module")
def archived(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("verify")
    with Sandbox(seed=31, size="tiny", time_scale=400.0) as sb:
        pipeline = _setup(tmp, sb)
        env = env_for(sb, tmp)
        done = rcetl_cli(["run", str(pipeline)], env)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        yield tmp, pipeline, env


def test_a_clean_archive_verifies_with_exit_0(archived) -> None:
    tmp, pipeline, env = archived
    code, report = _verify(pipeline, env)
    assert code == 0 and report["ok"] and _problems(report) == [], report["findings"][:5]
    assert not [f for f in report["findings"] if f["kind"] in ("stray", "unlisted")]


def _damage_and_repair(archived, damage, repair, expect_kind: str, expect_sink: str) -> None:
    tmp, pipeline, env = archived
    undo = damage(tmp)
    try:
        code, report = _verify(pipeline, env)
        assert code == 1 and not report["ok"], report["findings"][:5]
        kinds = _problems(report)
        assert (expect_kind, expect_sink) in kinds, kinds
    finally:
        repair(tmp, undo)
    code, report = _verify(pipeline, env)
    assert code == 0, _problems(report)


def test_a_deleted_file_is_found(archived) -> None:
    def damage(tmp: Path):  # noqa: ANN202
        victim = _blob_files(tmp / "files")[3]
        saved = tmp / "saved.bin"
        shutil.copy2(victim, saved)
        victim.unlink()
        return victim, saved

    def repair(tmp: Path, undo) -> None:  # noqa: ANN001
        victim, saved = undo
        shutil.copy2(saved, victim)

    _damage_and_repair(archived, damage, repair, "missing-file", "files")


def test_a_corrupted_file_same_size_one_byte_flipped_is_found(archived) -> None:
    def damage(tmp: Path):  # noqa: ANN202
        victim = _blob_files(tmp / "mirror")[5]
        data = bytearray(victim.read_bytes())
        data[len(data) // 2] ^= 0x01
        original = bytes(data)
        data_before = bytearray(original)
        data_before[len(data) // 2] ^= 0x01
        victim.write_bytes(bytes(data))
        return victim, bytes(data_before)

    def repair(tmp: Path, undo) -> None:  # noqa: ANN001
        victim, before = undo
        victim.write_bytes(before)

    _damage_and_repair(archived, damage, repair, "mismatch", "mirror")


def test_a_missing_row_is_found(archived) -> None:
    def damage(tmp: Path):  # noqa: ANN202
        con = sqlite3.connect(tmp / "archive.db")
        row = con.execute("SELECT * FROM rc_call_log LIMIT 1").fetchone()
        cols = [d[0] for d in con.execute("SELECT * FROM rc_call_log LIMIT 1").description]
        con.execute("DELETE FROM rc_call_log WHERE id = ?", (row[cols.index("id")],))
        con.commit()
        con.close()
        return cols, row

    def repair(tmp: Path, undo) -> None:  # noqa: ANN001
        cols, row = undo
        con = sqlite3.connect(tmp / "archive.db")
        con.execute(f"INSERT INTO rc_call_log ({','.join(cols)}) VALUES ({','.join('?' * len(cols))})", row)
        con.commit()
        con.close()

    _damage_and_repair(archived, damage, repair, "missing", "db")


def test_a_second_copy_under_another_key_is_found(archived) -> None:
    def damage(tmp: Path):  # noqa: ANN202
        original = _blob_files(tmp / "files")[1]
        copy = tmp / "files" / "elsewhere" / ("copy-of-" + original.name)
        copy.parent.mkdir()
        shutil.copy2(original, copy)
        return copy

    def repair(tmp: Path, copy: Path) -> None:
        shutil.rmtree(copy.parent)

    _damage_and_repair(archived, damage, repair, "duplicate", "files")


def test_purge_deletes_only_what_every_sink_holds(tmp_path: Path) -> None:
    purge = "purge: {streams: [recording, message-store], min_age_days: 0}"
    with Sandbox(seed=32, size="tiny", time_scale=400.0) as sb:
        pipeline = _setup(tmp_path, sb, purge)
        env = env_for(sb, tmp_path)
        assert rcetl_cli(["run", str(pipeline)], env).returncode == 0
        # One recording file missing from one of the two folders; one message row missing.
        con = sqlite3.connect(tmp_path / "archive.db")
        rec_id, location = con.execute("SELECT id, location FROM rc_recordings WHERE blob_status = 'stored' "
                                       "LIMIT 1").fetchone()
        msg_id = con.execute("SELECT id FROM rc_messages WHERE deleted = 0 LIMIT 1").fetchone()[0]
        con.execute("DELETE FROM rc_messages WHERE id = ?", (msg_id,))
        con.commit()
        con.close()
        mirror_copy = Path(location.replace(str(tmp_path / "files"), str(tmp_path / "mirror")))
        assert mirror_copy.is_file()
        mirror_copy.unlink()
        dry = rcetl_cli(["purge", str(pipeline)], env)
        assert dry.returncode == 0 and "would delete" in dry.stdout, dry.stdout + dry.stderr
        assert sb.counters()["deleted"] == {"recordings": 0, "calls": 0, "messages": 0}
        done = rcetl_cli(["purge", str(pipeline), "--yes"], env)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        deleted = sb.counters()["deleted"]
    lines = done.stdout.splitlines()
    acted = [ln for ln in lines if ln.startswith(("deleted:", "purged:"))]
    assert acted, done.stdout
    assert not any(repr(str(rec_id)) in ln or f" {rec_id}" in ln for ln in acted if "recording" in ln), acted
    assert not any(f"message-store {msg_id}" in ln for ln in acted), acted
    assert deleted["recordings"] == sum(1 for ln in acted if ln.startswith("deleted: recording"))
    assert deleted["messages"] == sum(1 for ln in acted if ln.startswith("purged: message-store"))
    assert deleted["recordings"] > 0 and deleted["messages"] > 0, deleted
