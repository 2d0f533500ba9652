"""Check an archive against the sandbox's ground truth: complete, exact, no duplicate, no half file.

Reads the archive through the sinks' own verification API (``RecordSink.archived``) so the same
check serves SQLite, MariaDB and PostgreSQL, and reads every stored binary back to hash it.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import rcetl


def _hash(fh: Any) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    for chunk in iter(lambda: fh.read(1024 * 1024), b""):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def expected(gt: dict[str, Any]) -> dict[str, dict[tuple[str, Any], Any]]:
    """Per stream: (account, key) -> expected binaries {blob_id: (size, sha256) or None if gone}."""
    out: dict[str, dict[tuple[str, Any], Any]] = {"call-log": {}, "recording": {}, "message-store": {}}
    for acct in gt["accounts"]:
        a = acct["account_id"]
        for rec in acct["call_log"]:
            out["call-log"][(a, rec["id"])] = {}
        for r in acct["recordings"]:
            out["recording"][(a, r["id"])] = {f"recording-{r['id']}": (r["size"], r["sha256"]) if r["available"]
                                              else None}
        atts: dict[int, dict[str, Any]] = {}
        for att in acct["attachments"]:
            atts.setdefault(att["message_id"], {})[f"attachment-{att['message_id']}-{att['id']}"] = \
                (att["size"], att["sha256"]) if att["available"] else None
        for msg in acct["messages"]:
            out["message-store"][(a, msg["id"])] = atts.get(msg["id"], {})
    return out


def check_archive(gt: dict[str, Any], record_sink: rcetl.RecordSink, blob_sink: rcetl.BlobSink,
                  streams: Iterable[str] = ("call-log", "recording", "message-store")) -> None:
    want = expected(gt)
    for stream in streams:
        entries = list(record_sink.archived(stream))
        keys = Counter((e.account, e.key) for e in entries)
        dupes = [k for k, n in keys.items() if n > 1]
        assert not dupes, f"{stream}: duplicated records {dupes[:5]}"
        missing = set(want[stream]) - set(keys)
        extra = set(keys) - set(want[stream])
        assert not missing, f"{stream}: {len(missing)} records missing, e.g. {sorted(missing, key=repr)[:5]}"
        assert not extra, f"{stream}: {len(extra)} unexpected records, e.g. {sorted(extra, key=repr)[:5]}"
        for e in entries:
            blobs = want[stream][(e.account, e.key)]
            archived = {b["blob_id"]: b for b in e.archive}
            assert set(archived) == set(blobs), f"{stream} {e.key!r}: binaries {set(archived)} != {set(blobs)}"
            for blob_id, truth in blobs.items():
                b = archived[blob_id]
                if truth is None:
                    assert b["status"] == "gone", f"{blob_id} should be gone, is {b['status']}"
                    continue
                assert b["status"] == "stored", f"{blob_id}: {b}"
                assert (b["size"], b["sha256"]) == truth, f"{blob_id}: archived {b['size']}/{b['sha256']} != {truth}"
                location = b["locations"][blob_sink.name]
                with blob_sink.open_stored(location) as fh:
                    assert _hash(fh) == truth, f"{blob_id}: stored bytes at {location} differ from the truth"


def assert_no_partial_files(folder: Path) -> None:
    """No temp/partial file anywhere, and no versioned duplicate (a conflict would mean two writes)."""
    leftovers = [p for p in folder.rglob("*") if p.is_file() and (
        p.name.startswith(".") or p.suffix in {".part", ".tmp"} or ".v2." in p.name)]
    assert not leftovers, f"partial or duplicate files: {leftovers[:5]}"
