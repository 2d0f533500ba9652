"""Attachment identity, end to end: RingCentral scopes an attachment id by its message.

RingCentral's own examples show several messages that each carry an attachment with id ``1``
(message-store attachment ids are small integers counted per message, mixed with long ids). The
data here is written in those shapes and loaded into the sandbox with ``data=``: five messages whose
attachments share ids, every attachment with bytes of its own. Every sink (SQLite and MongoDB for
records; a local folder, S3, GCS and Dropbox for binaries) must hold each message's own
bytes, the database rows must point at them, and ``rcetl verify`` must fail on an archive written
the old way (one blob per attachment id, shared by every message that has that id) until the next
run has re-archived it.

Mocked only where no real service runs here: S3 is moto, GCS fake-gcs-server, Dropbox the HTTPS fake
of tests/sinks_blob (as in test_sinks_with_sandbox.py).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import rcetl
from rcetl.sandbox import Sandbox

from ..media_samples import content, jpeg_bytes, pdf_bytes, wav_bytes
from .stores import cli, run, unique, verify_clean, write_pipeline

pytestmark = pytest.mark.slow

EXTENSION = 101


def _party(number: str, name: str | None = None) -> dict[str, Any]:
    return {"phoneNumber": number, **({"name": name} if name else {})}


def _att(att_id: int, att_type: str, content_type: str, data: bytes, **more: Any) -> dict[str, Any]:
    return {"id": att_id, "type": att_type, "contentType": content_type, "content": content(data, content_type),
            **more}


def rc_messages() -> list[dict[str, Any]]:
    """Five messages in RingCentral's shapes whose attachment ids repeat across messages (1 and 2 in
    several messages, as in RingCentral's examples), each attachment with distinct bytes."""
    base = 8234962969801171900  # message ids above 2^53, as RingCentral's are
    common = {"extensionId": EXTENSION, "readStatus": "Unread", "availability": "Alive"}
    return [
        {"id": base + 1, "type": "SMS", "direction": "Inbound", "creationTime": "2026-11-20T09:00:00.000Z",
         "from": _party("+16505550101"), "to": [_party("+16505550199")], "subject": "first",
         "messageStatus": "Received", **common,
         "attachments": [_att(1, "Text", "text/plain", b"first message text")]},
        {"id": base + 2, "type": "SMS", "direction": "Inbound", "creationTime": "2026-11-20T09:00:00.000Z",
         "from": _party("+16505550102"), "to": [_party("+16505550199")], "subject": "second, an MMS",
         "messageStatus": "Received", **common,
         "attachments": [_att(1, "Text", "text/plain", b"second message, another text"),
                         _att(2, "MmsAttachment", "image/jpeg", jpeg_bytes("second message picture"),
                              fileName="photo.jpg")]},
        {"id": base + 3, "type": "Fax", "direction": "Inbound", "creationTime": "2026-11-20T09:00:00.000Z",
         "from": _party("+16505550103"), "to": [_party("+16505550199")], "messageStatus": "Received",
         "faxPageCount": 1, **common,
         "attachments": [_att(1, "RenderedDocument", "application/pdf", pdf_bytes("fax three page one"))]},
        {"id": base + 4, "type": "Fax", "direction": "Inbound", "creationTime": "2026-11-20T09:00:00.000Z",
         "from": _party("+16505550104"), "to": [_party("+16505550199")], "messageStatus": "Received",
         "faxPageCount": 2, **common,
         "attachments": [_att(1, "RenderedDocument", "application/pdf", pdf_bytes("fax four, one")),
                         _att(2, "RenderedDocument", "application/pdf", pdf_bytes("fax four, two"))]},
        {"id": base + 5, "type": "VoiceMail", "direction": "Inbound", "creationTime": "2026-11-20T09:00:00.000Z",
         "from": _party("+16505550105", "Caller Five"), "to": [_party("+16505550199")],
         "messageStatus": "Received", **common,
         "attachments": [_att(1, "AudioRecording", "audio/x-wav", wav_bytes(1, 3), vmDuration=1),
                         _att(4010936005, "AudioTranscription", "text/plain", b"hello, this is five")]},
    ]


def own_bytes(messages: list[dict[str, Any]]) -> dict[int, dict[int, tuple[int, str]]]:
    """message id -> attachment id -> (size, SHA-256) of the bytes RingCentral serves for it."""
    out: dict[int, dict[int, tuple[int, str]]] = {}
    for msg in messages:
        for att in msg["attachments"]:
            data = base64.b64decode(att["content"]["base64"])
            out.setdefault(msg["id"], {})[att["id"]] = (len(data), hashlib.sha256(data).hexdigest())
    return out


def rc_sandbox() -> Sandbox:
    doc = {"accounts": [{"extensions": [{"id": EXTENSION, "extensionNumber": "101", "name": "Alice Anders",
                                         "type": "User"}],
                         "messages": rc_messages()}]}
    return Sandbox(seed=7, size="tiny", limits=False, time_scale=1000.0, data=doc)


def test_the_data_repeats_attachment_ids_with_distinct_bytes() -> None:
    """The premise: ids repeat across messages, bytes never do."""
    truth = own_bytes(rc_messages())
    ids = Counter(att_id for atts in truth.values() for att_id in atts)
    assert ids[1] == 5 and ids[2] == 2
    shas = [sha for atts in truth.values() for _, sha in atts.values()]
    assert len(set(shas)) == len(shas)


def _hash(fh: Any) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    for chunk in iter(lambda: fh.read(1 << 20), b""):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def assert_own_bytes_everywhere(path: Path, record_sinks: list[str], blob_sinks: list[str]) -> None:
    """Every record sink's archive of every message lists exactly that message's own binaries
    (size, SHA-256), and every blob sink holds those bytes at the location the archive names."""
    truth = own_bytes(rc_messages())
    with rcetl.open_archive(path) as archive:
        blobs = {name: archive.blob_sinks[name] for name in blob_sinks}
        for name in record_sinks:
            entries = {e.key: e for e in archive.record_sinks[name].archived("message-store")}
            assert set(entries) == set(truth), f"{name}: messages {sorted(entries)} != {sorted(truth)}"
            for mid, atts in truth.items():
                want = Counter(atts.values())
                archived = [b for b in entries[mid].archive if b["kind"] == "attachment"]
                assert all(b["status"] == "stored" for b in archived), archived
                got = Counter((b["size"], b["sha256"]) for b in archived)
                assert got == want, f"{name}: message {mid} archives {dict(got)}, its own bytes are {dict(want)}"
                for sink_name, sink in blobs.items():
                    held: Counter[tuple[int, str]] = Counter()
                    for b in archived:
                        with sink.open_stored(b["locations"][sink_name]) as fh:
                            held[_hash(fh)] += 1
                    assert held == want, f"{sink_name}: message {mid} holds {dict(held)}, not its own {dict(want)}"
                locations = [b["locations"][s] for b in archived for s in blobs]
                assert len(set(locations)) == len(locations), f"message {mid} shares a stored file: {locations}"


def assert_rows_point_at_own_bytes(path: Path) -> None:
    """rc_attachments: one row per (message, attachment id), with that attachment's own SHA-256."""
    import sqlalchemy as sa

    truth = own_bytes(rc_messages())
    with rcetl.open_archive(path) as archive, archive.record_sinks["db"].engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT message_id, id, size, sha256, location FROM rc_attachments")).all()
    got = {(r[0], r[1]): (r[2], r[3]) for r in rows}
    want = {(mid, aid): v for mid, atts in truth.items() for aid, v in atts.items()}
    assert got == want
    assert len({r[4] for r in rows}) == len(rows), "two rows point at one file"


@pytest.mark.integration
def test_every_message_keeps_its_own_attachment_bytes_in_every_sink(
        tmp_path: Path, rcetl_home: Path, s3_url: str, gcs_url: str,
        dropbox_fake: tuple[Any, str, str], mongodb_url: str) -> None:
    fake, host, ca = dropbox_fake
    database = f"ident_{uuid.uuid4().hex[:12]}"
    sinks = {
        "db": {"plugin": "sqlite", "url": f"sqlite:///{tmp_path / 'archive.sqlite'}"},
        "mongo": {"plugin": "mongodb", "url": mongodb_url, "database": database},
        "files": {"plugin": "filesystem", "path": str(tmp_path / "files"), "fsync": False},
        "s3": {"plugin": "s3", "bucket": unique("ident").lower(), "endpoint_url": s3_url,
               "region": "us-east-1", "addressing_style": "path", "create_bucket": True,
               "access_key_id": "testing", "secret_access_key": "testing"},
        "gcs": {"plugin": "gcs", "bucket": unique("ident").lower(), "project": "e2e",
                "emulator_host": gcs_url, "create_bucket": True},
        "dropbox": {"plugin": "dropbox", "root": "/" + unique("ident"), "access_token": "test-token",
                    "ca_certs": ca, "api_host": host, "content_host": host},
    }
    with rc_sandbox() as sb:
        path = write_pipeline(tmp_path, sb, sinks)
        summary = run(path)
        assert summary.status == "ok", summary.errors
        assert_own_bytes_everywhere(path, ["db", "mongo"], ["files", "s3", "gcs", "dropbox"])
        assert_rows_point_at_own_bytes(path)
        # Every stored file read back from every store (hash + content check), and every one downloaded
        # again and compared with what each store holds: clean, and every message proven.
        report = verify_clean(path, rcetl_home, "--rehash", "--deep", "10")
        assert report["deep"] == {"message-store": 8} and report["proven"] == 5  # 8 attachments


def _legacy_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the message-store source name binaries as rcetl did before attachment ids were scoped by
    their message: blob id ``attachment-<id>`` and key variable ``id`` = the attachment id alone.
    That is exactly what older versions wrote (checkpoints too), so the archive below is one they
    left behind."""
    from rcetl.plugins.sources import message_store

    original = message_store.message_record

    def legacy(raw: dict[str, Any], account: str, extension: str) -> rcetl.Record:
        record = original(raw, account, extension)
        by_url = {a.get("uri"): a for a in raw.get("attachments") or [] if isinstance(a, dict)}
        blobs = []
        for ref in record.blobs:
            att_id = by_url[ref.url]["id"]
            blobs.append(rcetl.BlobRef(blob_id=f"attachment-{att_id}", url=ref.url, kind=ref.kind,
                                       content_type=ref.content_type, size=ref.size,
                                       variables={**ref.variables, "id": att_id}))
        record.blobs = blobs
        return record

    monkeypatch.setattr(message_store, "message_record", legacy)
    monkeypatch.setattr(message_store, "IDENTITY", 1)  # ... and checkpoints as they wrote them


def _verify(path: Path, home: Path) -> tuple[int, dict[str, Any]]:
    done = cli("verify", str(path), "--json", home=home)
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    return done.returncode, json.loads(done.stdout)


@pytest.mark.integration
def test_verify_fails_on_an_archive_written_with_unscoped_attachment_ids_and_the_next_run_repairs_it(
        tmp_path: Path, rcetl_home: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    sinks = {
        "db": {"plugin": "sqlite", "url": f"sqlite:///{tmp_path / 'archive.sqlite'}"},
        "files": {"plugin": "filesystem", "path": str(tmp_path / "files"), "fsync": False},
    }
    with rc_sandbox() as sb:
        path = write_pipeline(tmp_path, sb, sinks)
        with monkeypatch.context() as m:
            _legacy_identity(m)
            old = run(path)
        assert old.status == "ok", old.errors

        # The old archive: messages with attachment id 1 all point at one file (the first's bytes).
        code, report = _verify(path, rcetl_home)
        assert code == 1 and not report["ok"], [f for f in report["findings"] if f["kind"] != "stray"][:5]
        problems = [f for f in report["findings"] if f["stream"] == "message-store"]
        flagged = {f["key"] for f in problems}
        assert set(own_bytes(rc_messages())) <= flagged, problems[:8]

        # The next run re-archives every message under its own identity (see docs/reliability.md),
        # and says why it lists the mailbox again.
        with caplog.at_level(logging.WARNING, logger="rcetl.plugins.sources.message_store"):
            again = run(path)
        assert again.status == "ok", again.errors
        assert "named by their id alone" in caplog.text
        assert_own_bytes_everywhere(path, ["db"], ["files"])
        assert_rows_point_at_own_bytes(path)
        report = verify_clean(path, rcetl_home)
        # The files the old identity left behind are reported, not counted as problems.
        superseded = [f for f in report["findings"] if f["kind"] == "superseded"]
        assert superseded, report["findings"][:5]
