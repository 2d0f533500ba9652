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


# --- evidence, not notes: content checks, shared binaries, deep re-downloads, proofs ---------------
#
# A small archive of RingCentral-shaped data (three recorded calls, two faxes whose attachments are
# both id 1) loaded into the sandbox with ``data=``: at most ten binaries, so ``--deep 10`` samples all.
# Plants are "consistent": the file, its xattr and sidecar checksum, and the database's archive JSON
# and columns all agree on the planted bytes, as if rcetl had stored them, so that only evidence
# (the bytes themselves, or the source's bytes) can tell.

PURGE_ALL = "purge: {streams: [recording, message-store], min_age_days: 0}"


def _small_data() -> dict:
    from datetime import datetime, timedelta, timezone

    from ..media_samples import content, mp3_bytes, pdf_bytes, wav_bytes

    def iso(moment: datetime) -> str:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")

    now = datetime.now(timezone.utc)
    audio = [("audio/mpeg", mp3_bytes("recording one")), ("audio/x-wav", wav_bytes(1, 5)),
             ("audio/mpeg", mp3_bytes("recording three"))]
    calls = [{"id": f"C{i}", "startTime": iso(now - timedelta(days=2, hours=i)), "duration": 30,
              "direction": "Inbound", "type": "Voice", "action": "Phone Call", "result": "Accepted",
              "from": {"phoneNumber": "+16505550100"}, "to": {"phoneNumber": "+16505550199"},
              "recording": {"id": f"90000{i}", "type": "Automatic", "content": content(data, ctype)}}
             for i, (ctype, data) in enumerate(audio, start=1)]
    faxes = [{"id": 8234962969801171900 + i, "type": "Fax", "direction": "Inbound",
              "creationTime": iso(now - timedelta(days=2, hours=i)), "faxPageCount": 1,
              "from": {"phoneNumber": f"+1650555020{i}"}, "to": [{"phoneNumber": "+16505550199"}],
              "attachments": [{"id": 1, "type": "RenderedDocument", "contentType": "application/pdf",
                               "content": content(pdf_bytes(f"fax {i}"), "application/pdf")}]}
             for i in range(2)]
    return {"accounts": [{"call_log": calls, "messages": faxes}]}


@pytest.fixture
def small(tmp_path: Path):
    with Sandbox(seed=33, size="tiny", time_scale=400.0, limits=False, data=_small_data()) as sb:
        pipeline = _setup(tmp_path, sb, PURGE_ALL)
        env = env_for(sb, tmp_path)
        done = rcetl_cli(["run", str(pipeline)], env)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        yield tmp_path, pipeline, env, sb


def _row_archive(tmp: Path, table: str, key: object) -> list[dict]:
    con = sqlite3.connect(tmp / "archive.db")
    (archive,) = con.execute(f"SELECT archive FROM {table} WHERE id = ?", (key,)).fetchone()
    con.close()
    return json.loads(archive)


def _plant(tmp: Path, table: str, key: object, data: bytes) -> list[Path]:
    """Put ``data`` where record ``key``'s binary is stored, in both folders, with every checksum
    record (xattr, sidecar, archive JSON, typed columns) rewritten to match: a consistent lie."""
    import hashlib
    import os

    sha = hashlib.sha256(data).hexdigest()
    archive = _row_archive(tmp, table, key)
    (blob,) = [b for b in archive if b["status"] == "stored"]
    paths = [Path(loc) for loc in blob["locations"].values()]
    for path in paths:
        path.write_bytes(data)
        try:
            os.setxattr(path, "user.rcetl.sha256", sha.encode())
        except OSError:
            pass  # no user xattrs here: the sidecar is the record
        sidecar = Path(str(path) + ".json")
        doc = json.loads(sidecar.read_text())
        doc["blob"].update(sha256=sha, size=len(data))
        sidecar.write_text(json.dumps(doc))
    blob.update(sha256=sha, size=len(data))
    con = sqlite3.connect(tmp / "archive.db")
    con.execute(f"UPDATE {table} SET archive = ? WHERE id = ?", (json.dumps(archive), key))
    if table == "rc_recordings":
        con.execute("UPDATE rc_recordings SET sha256 = ?, size = ? WHERE id = ?", (sha, len(data), key))
    else:
        con.execute("UPDATE rc_attachments SET sha256 = ?, size = ? WHERE message_id = ?", (sha, len(data), key))
    con.commit()
    con.close()
    return paths


def _purge_lines(done) -> dict[str, list[str]]:  # noqa: ANN001
    out: dict[str, list[str]] = {"refused": [], "would delete": [], "acted": []}
    for line in done.stdout.splitlines():
        if line.startswith("refused:"):
            out["refused"].append(line)
        elif line.startswith("would delete:"):
            out["would delete"].append(line)
        elif line.startswith(("deleted:", "purged:")):
            out["acted"].append(line)
    return out


def test_verify_deep_10_catches_a_swapped_file_whose_checksum_record_matches(small) -> None:
    tmp, pipeline, env, _ = small
    other = Path(next(iter(_row_archive(tmp, "rc_recordings", "900003")[0]["locations"].values()))).read_bytes()
    _plant(tmp, "rc_recordings", "900001", other)  # recording one now holds recording three's bytes

    code, report = _verify(pipeline, env)
    # Every note agrees with every file, and the bytes are valid audio: only the source can tell.
    assert code == 0, _problems(report)

    done = rcetl_cli(["verify", str(pipeline), "--json", "--deep", "10", "--seed", "1"], env)
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert sum(report["deep"].values()) == 5, report["deep"]  # every stored binary of this archive
    swapped = [f for f in report["findings"] if f["kind"] == "deep-mismatch"]
    assert {(f["key"], f["sink"]) for f in swapped} == {("900001", ""), ("900001", "files"), ("900001", "mirror")}
    assert all(f["stream"] == "recording" for f in swapped)


def test_verify_deep_dry_run_shows_what_it_would_download(small) -> None:
    tmp, pipeline, env, sb = small
    before = sb.counters()
    done = rcetl_cli(["verify", str(pipeline), "--deep", "10", "--dry-run"], env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "--deep 10: downloads up to 10 archived binaries" in done.stdout
    assert "Heavy" in done.stdout and "Medium" in done.stdout
    assert sb.counters()["requests"] == before["requests"], "a dry run sent requests"


def test_stored_html_and_json_bodies_fail_verify_purge_refuses_them_and_the_next_run_replaces_them(small) -> None:
    tmp, pipeline, env, sb = small
    truth_recording = Path(next(iter(_row_archive(tmp, "rc_recordings", "900002")[0]["locations"].values()))
                           ).read_bytes()
    fax = 8234962969801171901
    truth_fax = Path(next(iter(_row_archive(tmp, "rc_messages", fax)[0]["locations"].values()))).read_bytes()
    html = _plant(tmp, "rc_recordings", "900002", b"<!DOCTYPE html><html><body>Please sign in</body></html>")
    _plant(tmp, "rc_messages", fax, b'{"errorCode":"CMN-102","message":"Resource for parameter [messageId] is not found"}')

    code, report = _verify(pipeline, env)
    assert code == 1
    content = {(f["stream"], f["key"], f["sink"]) for f in report["findings"] if f["kind"] == "content"}
    assert content == {("recording", "900002", "files"), ("recording", "900002", "mirror"),
                       ("message-store", fax, "files"), ("message-store", fax, "mirror")}, report["findings"][:6]
    detail = next(f["detail"] for f in report["findings"] if f["kind"] == "content" and f["key"] == "900002")
    assert "text/html" in detail and "DOCTYPE" in detail, detail

    dry = rcetl_cli(["purge", str(pipeline)], env)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    lines = _purge_lines(dry)
    refused = {ln.split(":", 2)[1].strip() for ln in lines["refused"]}
    assert refused == {"recording '900002'", f"message-store {fax}"}, lines
    assert all("content check" in ln for ln in lines["refused"]), lines["refused"]
    assert len(lines["would delete"]) == 3

    # The next run takes the items verify queued, downloads them again and replaces the bad bytes.
    again = rcetl_cli(["run", str(pipeline), "--retry-now"], env)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert all(p.read_bytes() == truth_recording for p in html)
    for loc in _row_archive(tmp, "rc_messages", fax)[0]["locations"].values():
        assert Path(loc).read_bytes() == truth_fax
    code, report = _verify(pipeline, env)
    assert code == 0, _problems(report)
    done = rcetl_cli(["purge", str(pipeline), "--yes"], env)
    assert done.returncode == 0 and len(_purge_lines(done)["acted"]) == 5, done.stdout
    assert sb.counters()["deleted"]["recordings"] == 3


def test_purge_refuses_items_that_share_a_stored_binary(small) -> None:
    tmp, pipeline, env, sb = small
    first, second = 8234962969801171900, 8234962969801171901
    # The archive an unscoped attachment id left behind: the second fax points at the first's file.
    archive = _row_archive(tmp, "rc_messages", first)
    con = sqlite3.connect(tmp / "archive.db")
    con.execute("UPDATE rc_messages SET archive = ? WHERE id = ?", (json.dumps(archive), second))
    con.commit()
    con.close()

    code, report = _verify(pipeline, env)
    assert code == 1
    shared = {(f["key"], f["sink"]) for f in report["findings"] if f["kind"] == "shared"}
    assert shared == {(first, "files"), (first, "mirror"), (second, "files"), (second, "mirror")}, shared
    done = rcetl_cli(["purge", str(pipeline), "--yes"], env)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = _purge_lines(done)
    refused = [ln for ln in lines["refused"] if "shares a stored binary" in ln]
    assert {ln.split(":", 2)[1].strip() for ln in refused} == {f"message-store {first}", f"message-store {second}"}
    assert sb.counters()["deleted"]["messages"] == 0
    assert sb.counters()["deleted"]["recordings"] == 3


def test_purge_refuses_items_no_verify_proved_recently(small) -> None:
    tmp, pipeline, env, sb = small
    # --no-rehash: this purge reads no stored bytes, so only earlier proofs count; there are none.
    done = rcetl_cli(["purge", str(pipeline), "--no-rehash", "--yes"], env)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = _purge_lines(done)
    assert len(lines["refused"]) == 5 and not lines["acted"], done.stdout
    assert all("not proven" in ln and "rcetl verify" in ln for ln in lines["refused"])

    code, _ = _verify(pipeline, env)  # reads every stored byte back (local folders): proofs
    assert code == 0
    con = sqlite3.connect(tmp / "state.db")
    con.execute("UPDATE rcetl_proofs SET at = at - 8 * 86400")  # verified 8 days ago; the limit is 7
    con.commit()
    con.close()
    done = rcetl_cli(["purge", str(pipeline), "--no-rehash", "--yes"], env)
    lines = _purge_lines(done)
    assert len(lines["refused"]) == 5 and not lines["acted"], done.stdout
    assert all("not proven recently" in ln and "proof_max_age_days" in ln for ln in lines["refused"])
    assert sb.counters()["deleted"] == {"recordings": 0, "calls": 0, "messages": 0}

    assert _verify(pipeline, env)[0] == 0  # proven again today
    done = rcetl_cli(["purge", str(pipeline), "--no-rehash", "--yes"], env)
    assert len(_purge_lines(done)["acted"]) == 5, done.stdout
    assert sb.counters()["deleted"]["recordings"] == 3 and sb.counters()["deleted"]["messages"] == 2


def test_verify_reports_records_deleted_at_the_source_since_they_were_archived(small) -> None:
    from datetime import datetime, timedelta

    from ..e2e.stores import SandboxAdmin

    tmp, pipeline, env, sb = small
    gt = sb.ground_truth()["accounts"][0]
    oldest = min(gt["call_log"], key=lambda c: c["startTime"])
    start = datetime.fromisoformat(oldest["startTime"].replace("Z", "+00:00")) + timedelta(milliseconds=1)
    admin = SandboxAdmin(sb)
    owner = (oldest.get("extension") or {}).get("id") or gt["extensions"][0]["id"]  # calls given without one
    admin.delete_calls_before(owner, start.isoformat(timespec="milliseconds").replace("+00:00", "Z"))
    fax = gt["messages"][0]
    admin.delete_message(fax.get("extensionId") or owner, fax["id"])

    code, report = _verify(pipeline, env)
    gone = {(f["stream"], f["key"]) for f in report["findings"] if f["kind"] == "deleted-at-source"}
    assert gone == {("call-log", oldest["id"]), ("message-store", fax["id"])}, report["findings"][:6]
    assert report["streams"]["call-log"]["deleted_at_source"] == 1
    assert code == 0, _problems(report)  # reported, not a problem of the archive
