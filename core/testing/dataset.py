"""The small data set the contract suite writes: records shaped like rcetl's real streams.

``call-log`` (string ids), ``recording`` (string ids, one audio binary each) and ``message-store``
(integer ids, attachments). Built from the RingCentral sandbox's ground truth when the sandbox is
importable, else from the fixture shipped in ``rcetl/testing/ground_truth.json`` (a cut of the
same ground truth), so a third-party sink is tested on the shapes it will meet in production.
Binaries are deterministic bytes of the ground truth's sizes (capped), and a few records are added
on purpose: ids above 2**53 up to 2**63-1, and hostile keys and values.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from importlib import resources
from typing import Any

from ..records import BlobRef, Record

CALL_LOG, RECORDING, MESSAGE_STORE = "call-log", "recording", "message-store"
STREAMS = (CALL_LOG, RECORDING, MESSAGE_STORE)
MAX_BLOB = 16 * 1024  # contract binaries stay small: the suite must be fast against cloud emulators
SANDBOX_SEED = 1
# Ids a float cannot hold: 2**53 + 1 is the first, 2**63 - 1 the largest signed 64-bit id.
EXACT_IDS = (2**53 + 1, 2**62 + 7, 2**63 - 1)
HOSTILE_STRINGS = (
    "x'; DROP TABLE rc_call_log; --",
    "../../../etc/passwd",
    'quote " and back\\slash',
    "Ωmega 🙂 李小龍 \u202eevil.exe",
    "line\nbreak\ttab \x1b[31mred",
    "CON",
)


@dataclass
class ContractDataset:
    """Records of every stream, the bytes of every binary they reference, and where they came from."""

    records: list[Record]
    blobs: dict[str, bytes] = field(default_factory=dict)  # blob id -> bytes
    origin: str = "builtin"  # "sandbox" (built from a live Sandbox's ground truth) or "builtin"
    ground_truth: dict[str, Any] = field(default_factory=dict)

    def streams(self) -> list[str]:
        return sorted({r.stream for r in self.records})

    def of(self, *streams: str) -> list[Record]:
        return [r for r in self.records if r.stream in streams]

    def with_blobs(self) -> list[Record]:
        return [r for r in self.records if r.blobs]

    def exact_id_records(self) -> list[Record]:
        return [r for r in self.records if isinstance(r.key, int) and r.key > 2**53]

    def hostile_records(self) -> list[Record]:
        return [r for r in self.records if r.data.get("_hostile")]

    def keys(self, stream: str) -> list[tuple[str, Any]]:
        return sorted(((r.account, r.key) for r in self.records if r.stream == stream), key=repr)


def attachment_blob_id(message_id: Any, attachment_id: Any) -> str:
    """The built-in message-store source's blob id: an attachment id is scoped by its message."""
    return f"attachment-{message_id}-{attachment_id}"


def blob_bytes(blob_id: str, size: int) -> bytes:
    """Deterministic bytes for a binary: a key always names the same bytes."""
    size = max(1, min(size, MAX_BLOB))
    seed = hashlib.sha256(blob_id.encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    return datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)


def _ext(content_type: str | None) -> str:
    ct = (content_type or "").split(";")[0].strip().lower()
    return {"audio/mpeg": "mp3", "audio/wav": "wav", "audio/x-wav": "wav", "image/tiff": "tiff",
            "application/pdf": "pdf", "text/plain": "txt", "image/jpeg": "jpg", "image/png": "png"}.get(ct, "bin")


def records_from_ground_truth(truth: dict[str, Any], *, calls: int = 12, messages: int = 12) -> ContractDataset:
    """Records like the built-in streams make them, from a sandbox ground truth (a cut of it)."""
    records: list[Record] = []
    blobs: dict[str, bytes] = {}
    for account in truth.get("accounts", []):
        acct = str(account["account_id"])
        by_call = {c["id"]: c for c in account.get("call_log", [])}
        for call in account.get("call_log", [])[:calls]:
            records.append(Record(stream=CALL_LOG, key=str(call["id"]), data=call, account=acct,
                                  deleted=bool(call.get("deleted")), occurred_at=_instant(call.get("startTime"))))
        for rec in account.get("recordings", [])[: max(calls // 2, 1)]:
            call = by_call.get(rec["call_id"], {})
            when = _instant(call.get("startTime"))
            blob_id = f"recording-{rec['id']}"
            data = {**(call.get("recording") or {"id": rec["id"]}), "id": str(rec["id"]),
                    "call": {k: call[k] for k in ("id", "sessionId", "startTime", "direction") if k in call}}
            blobs[blob_id] = blob_bytes(blob_id, rec["size"])
            ref = BlobRef(blob_id=blob_id, url=f"https://media.example/recording/{rec['id']}/content",
                          kind="recording", content_type=rec.get("content_type"), size=len(blobs[blob_id]),
                          variables={"id": str(rec["id"]), "date": when, "kind": "recording",
                                     "extension": (call.get("extension") or {}).get("id", "account"),
                                     "ext": _ext(rec.get("content_type")), "account": acct,
                                     "call_id": rec["call_id"]})
            records.append(Record(stream=RECORDING, key=str(rec["id"]), data=data, account=acct, blobs=[ref],
                                  occurred_at=when))
        for msg in account.get("messages", [])[:messages]:
            when = _instant(msg.get("creationTime"))
            refs = []
            for att in msg.get("attachments") or []:
                blob_id = attachment_blob_id(msg["id"], att["id"])
                blobs[blob_id] = blob_bytes(blob_id, int(att.get("size") or 64))
                refs.append(BlobRef(blob_id=blob_id, url=str(att.get("uri", "")), kind="attachment",
                                    content_type=att.get("contentType"), size=len(blobs[blob_id]),
                                    variables={"id": f"{msg['id']}-{att['id']}", "attachment_id": att["id"],
                                               "message_id": msg["id"], "date": when,
                                               "extension": msg.get("extensionId"), "kind": "attachment",
                                               "ext": _ext(att.get("contentType")), "account": acct,
                                               "name": att.get("fileName")}))
            records.append(Record(stream=MESSAGE_STORE, key=int(msg["id"]), data=msg, account=acct, blobs=refs,
                                  deleted=msg.get("availability") in ("Deleted", "Purged"), occurred_at=when))
    _add_edge_cases(records, blobs, str(truth["accounts"][0]["account_id"]) if truth.get("accounts") else "1")
    return ContractDataset(records=records, blobs=blobs, ground_truth=truth)


def _add_edge_cases(records: list[Record], blobs: dict[str, bytes], acct: str) -> None:
    when = datetime.fromisoformat("2026-11-01T12:00:00+00:00")
    for n, big in enumerate(EXACT_IDS):
        # RingCentral numbers attachments per message: every one of these messages has attachment 1,
        # each with bytes of its own (a kit keyed by the attachment id alone would mix them up).
        blob_id = attachment_blob_id(big, 1)
        blobs[blob_id] = blob_bytes(blob_id, 100 + n)
        ref = BlobRef(blob_id=blob_id, url=f"https://media.example/message/{big}/content/1", kind="attachment",
                      content_type="text/plain", size=len(blobs[blob_id]),
                      variables={"id": f"{big}-1", "attachment_id": 1, "message_id": big, "date": when,
                                 "extension": "101", "kind": "attachment", "ext": "txt", "account": acct})
        records.append(Record(stream=MESSAGE_STORE, key=big, account=acct, occurred_at=when, blobs=[ref],
                              data={"id": big, "conversationId": big - 1, "type": "SMS", "direction": "Inbound",
                                    "subject": f"exact id {big}", "creationTime": "2026-11-01T12:00:00Z",
                                    "availability": "Alive",
                                    "attachments": [{"id": 1, "contentType": "text/plain"}]}))
    for n, text in enumerate(HOSTILE_STRINGS):
        blob_id = f"recording-hostile-{n}"
        blobs[blob_id] = blob_bytes(blob_id, 200 + n)
        ref = BlobRef(blob_id=blob_id, url="https://media.example/hostile", kind="recording",
                      content_type="audio/mpeg", size=len(blobs[blob_id]),
                      variables={"id": text, "date": when, "extension": text, "kind": "recording", "ext": "mp3",
                                 "account": acct, "name": text})
        records.append(Record(stream=CALL_LOG, key=text, account=acct, occurred_at=when,
                              data={"id": text, "startTime": "2026-11-01T12:00:00Z", "direction": "Inbound",
                                    "from": {"name": text, "phoneNumber": "+15550100"}, "_hostile": True}))
        records.append(Record(stream=RECORDING, key=f"hostile-{n}", account=acct, occurred_at=when, blobs=[ref],
                              data={"id": f"hostile-{n}", "contentUri": "https://media.example/hostile",
                                    "call": {"id": text}, "_hostile": True}))


def builtin_ground_truth() -> dict[str, Any]:
    """The fixture shipped with rcetl.testing: a cut of the sandbox's ground truth (seed 1, tiny)."""
    text = resources.files("rcetl.testing").joinpath("ground_truth.json").read_text(encoding="utf-8")
    return json.loads(text)


def sandbox_ground_truth(seed: int = SANDBOX_SEED, size: str = "tiny") -> dict[str, Any] | None:
    """The ground truth of a (not started) sandbox, or None when rcetl.sandbox is not installed."""
    try:
        from rcetl.sandbox import Sandbox
    except ImportError:
        return None
    return Sandbox(seed=seed, size=size).ground_truth()


@lru_cache(maxsize=4)
def _cached(prefer_sandbox: bool) -> ContractDataset:
    truth = sandbox_ground_truth() if prefer_sandbox else None
    data = records_from_ground_truth(truth if truth is not None else builtin_ground_truth())
    data.origin = "sandbox" if truth is not None else "builtin"
    return data


def load_dataset(prefer_sandbox: bool = True) -> ContractDataset:
    """A fresh copy of the contract data set (callers may change the records they get)."""
    cached = _cached(prefer_sandbox)
    return ContractDataset(records=[replace(r, data=json.loads(json.dumps(r.data)), blobs=list(r.blobs))
                                    for r in cached.records],
                           blobs=dict(cached.blobs), origin=cached.origin, ground_truth=cached.ground_truth)
