"""A realistic archive batch, shaped like what the RingCentral streams hand record sinks.

Call-log records (Detailed view, with legs; some with a recording), their recordings (one audio blob
each), SMS/fax/voicemail messages with attachments (one blob per attachment), a message id above
2^53 and at the int64 maximum, case-different call ids, hostile and unicode strings, and a
third-party stream with int and string keys.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import rcetl

ACCOUNT = "400131421008"
BIG_ID = 2**53 + 1  # the first integer a float cannot hold
MAX_ID = 2**63 - 1
BIG_CONVERSATION = 8031152018338945839
HOSTILE = [
    "O'Brien\"; DROP TABLE rc_call_log; --",
    "Zoë Ångström 🎧 李小龙 مرحبا",
    "back\\slash\ttab\nnewline %s :id ? $1",
    "x" * 300,  # longer than the name column: the column is cut, raw keeps it whole
    "<script>alert(1)</script>",
]
START = datetime(2024, 3, 1, 9, 0, tzinfo=timezone.utc)
MEDIA = "https://media.ringcentral.com:443/restapi/v1.0/account/~"


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def stored_blob(blob_id: str, kind: str, content_type: str, payload: bytes) -> rcetl.BlobResult:
    digest = hashlib.sha256(payload).hexdigest()
    ref = rcetl.BlobRef(blob_id=blob_id, url=f"{MEDIA}/{kind}/{blob_id}/content", kind=kind,
                        content_type=content_type, size=len(payload))
    location = f"archive/{kind}/{blob_id}"
    return rcetl.BlobResult(ref=ref, status="stored", size=len(payload), sha256=digest,
                            stored=[rcetl.StoredBlob(sink="files", location=location, size=len(payload),
                                                     sha256=digest, content_type=content_type)])


def party(i: int, *, ext: bool = False) -> dict:
    p = {"phoneNumber": f"+1650555{i:04d}", "name": HOSTILE[i % len(HOSTILE)]}
    if ext:
        p["extensionId"] = str(62000000 + i)
    return p


def call_record(i: int, *, recorded: bool) -> dict:
    start = START + timedelta(hours=i)
    call_id = f"VgLcd1KWffJVzUA{i}" if i % 7 else f"vGlCD1kwFFjvZua{i}"  # case-sensitive ids
    ext = 101 + i % 3
    data = {
        "uri": f"https://platform.ringcentral.com/restapi/v1.0/account/{ACCOUNT}/call-log/{call_id}",
        "id": call_id,
        "sessionId": str(4051253000 + i),
        "telephonySessionId": f"s-a0d178729c49dz1876d9b9d11z19269ec{i:04d}",
        "startTime": iso(start),
        "duration": 30 + i,
        "type": "Voice",
        "direction": "Inbound" if i % 2 else "Outbound",
        "action": "Phone Call",
        "result": "Accepted" if i % 5 else "Missed",
        "reason": "Accepted",
        "from": party(i),
        "to": party(i + 1, ext=True),
        "extension": {"id": ext, "uri": f"https://platform.ringcentral.com/restapi/v1.0/account/{ACCOUNT}/extension/{ext}"},
        "lastModifiedTime": iso(start + timedelta(minutes=5)),
        "legs": [
            {"startTime": iso(start), "duration": 30 + i, "type": "Voice", "direction": "Inbound",
             "action": "Phone Call", "result": "Accepted", "legType": "Accept", "from": party(i),
             "to": party(i + 1, ext=True), "extension": {"id": ext}},
            {"startTime": iso(start + timedelta(seconds=2)), "duration": 28 + i, "type": "Voice",
             "direction": "Outbound", "action": "VoIP Call", "result": "Accepted", "legType": "PstnToSip",
             "from": party(i), "to": party(i + 2)},
        ],
    }
    if recorded:
        data["recording"] = {"id": f"{9000000 + i}", "uri": f"{MEDIA}/recording/{9000000 + i}", "type": "Automatic",
                             "contentUri": f"{MEDIA}/recording/{9000000 + i}/content"}
    return data


def recording_record(call: dict) -> rcetl.ArchivedRecord:
    rec = call["recording"]
    data = {**rec, "contentType": "audio/mpeg",
            "call": {k: call[k] for k in ("id", "sessionId", "telephonySessionId", "startTime", "duration",
                                           "direction", "extension", "from", "to")}}
    blob = stored_blob(f"recording-{rec['id']}", "recording", "audio/mpeg", f"audio of {rec['id']}".encode())
    return rcetl.ArchivedRecord(rcetl.Record("recording", rec["id"], data, account=ACCOUNT,
                                             occurred_at=START), [blob])


def message_record(msg_id: int, i: int) -> rcetl.ArchivedRecord:
    kind = ["SMS", "Fax", "VoiceMail"][i % 3]
    created = START + timedelta(days=i % 40, minutes=i)
    att_types = {"SMS": ("Text", "text/plain", "sms.txt"), "Fax": ("RenderedDocument", "application/pdf", "fax.pdf"),
                 "VoiceMail": ("AudioRecording", "audio/mpeg", "vm.mp3")}[kind]
    attachments = [
        {"id": msg_id - n if msg_id >= 2**53 else 700_000_000_000_000 + i * 10 + n,
         "uri": f"{MEDIA}/message-store/{msg_id}/content/{n}", "type": att_types[0],
         "contentType": att_types[1], "fileName": f"{n}-{att_types[2]}", "size": 1000 + n}
        for n in range(2 if kind == "Fax" else 1)
    ]
    data = {
        "uri": f"https://platform.ringcentral.com/restapi/v1.0/account/{ACCOUNT}/extension/101/message-store/{msg_id}",
        "id": msg_id, "conversationId": BIG_CONVERSATION - i, "type": kind,
        "direction": "Inbound" if i % 2 else "Outbound",
        "creationTime": iso(created), "lastModifiedTime": iso(created + timedelta(seconds=30)),
        "from": party(i, ext=True), "to": [party(i + 1), party(i + 2)],
        "subject": HOSTILE[i % len(HOSTILE)], "readStatus": "Unread", "messageStatus": "Received",
        "availability": "Alive", "attachments": attachments,
        "conversation": {"id": str(BIG_CONVERSATION - i)},
    }
    if kind == "Fax":
        data["faxPageCount"] = 2 + i % 4
    if kind == "VoiceMail":
        data["vmTranscriptionStatus"] = "Completed"
    # The message-store source's blob id: attachment ids are unique only within their message.
    blobs = [stored_blob(f"attachment-{msg_id}-{a['id']}", "attachment", a["contentType"],
                         f"{msg_id}/{a['id']}".encode())
             for a in attachments]
    return rcetl.ArchivedRecord(rcetl.Record("message-store", msg_id, data, account=ACCOUNT,
                                             occurred_at=created), blobs)


@dataclass
class Dataset:
    records: list[rcetl.ArchivedRecord]
    keys: dict[str, set] = field(default_factory=dict)  # stream -> expected keys (exact types)
    legs: int = 0
    attachments: int = 0

    def assert_held_by(self, sink: rcetl.RecordSink) -> None:
        """The sink reports exactly this data set's keys, with their exact types, per stream."""
        for stream, keys in self.keys.items():
            entries = list(sink.archived(stream, ACCOUNT))
            assert {e.key for e in entries} == keys
            assert {type(e.key) for e in entries} == {type(k) for k in keys}
            assert sink.count(stream) == len(keys)  # type: ignore[attr-defined]

    def assert_rewrites_change_nothing(self, sink: rcetl.RecordSink, snapshot: Callable[[Any], Any]) -> None:
        """Writing the data set again, in order and reversed, leaves ``snapshot(sink)`` as it was."""
        before = snapshot(sink)
        sink.write(self.records)
        sink.write(list(reversed(self.records)))
        assert snapshot(sink) == before

    def write_then_update(self, sink: rcetl.RecordSink) -> tuple[rcetl.ArchivedRecord, rcetl.ArchivedRecord]:
        """Write the data set, then its call and fax changed at the source (:func:`updated_at_source`):
        the sink still holds each record once. Returns the changed call and fax."""
        sink.write(self.records)
        call, fax = updated_at_source(self)
        sink.write([call, fax])
        for stream in ("call-log", "message-store"):
            assert sink.count(stream) == len(self.keys[stream])
        return call, fax

    def of(self, stream: str) -> list[rcetl.ArchivedRecord]:
        return [r for r in self.records if r.record.stream == stream]


def make_dataset(calls: int = 12, messages: int = 9) -> Dataset:
    """``calls`` call-log records (every third recorded), their recordings, ``messages`` messages
    (SMS, fax, voicemail in turn; two of them with the big ids), and three third-party records."""
    out: list[rcetl.ArchivedRecord] = []
    for i in range(calls):
        call = call_record(i, recorded=i % 3 == 0)
        out.append(rcetl.ArchivedRecord(rcetl.Record("call-log", call["id"], call, account=ACCOUNT)))
        if "recording" in call:
            out.append(recording_record(call))
    ids = [BIG_ID, MAX_ID] + [1_000_000_000 + i for i in range(max(0, messages - 2))]
    for i, msg_id in enumerate(ids[:messages]):
        out.append(message_record(msg_id, i))
    out += [
        rcetl.ArchivedRecord(rcetl.Record("acme-tickets", 42, {"id": 42, "title": HOSTILE[1]}, account=ACCOUNT,
                                          occurred_at=START)),
        rcetl.ArchivedRecord(rcetl.Record("acme-tickets", "42", {"id": "42", "title": "string twin"},
                                          account=ACCOUNT)),
        rcetl.ArchivedRecord(rcetl.Record("acme-tickets", BIG_ID, {"id": BIG_ID}, account=ACCOUNT)),
    ]
    ds = Dataset(out)
    for r in out:
        ds.keys.setdefault(r.record.stream, set()).add(r.record.key)
    ds.legs = sum(len(r.record.data.get("legs", [])) for r in ds.of("call-log"))
    ds.attachments = sum(len(r.record.data.get("attachments", [])) for r in ds.of("message-store"))
    return ds


def updated_at_source(ds: Dataset) -> tuple[rcetl.ArchivedRecord, rcetl.ArchivedRecord]:
    """The first call with a moved lastModifiedTime, a new result and one leg fewer, and the first
    fax marked deleted with one attachment fewer, as the source would yield them on a later run."""
    call = copy.deepcopy(ds.of("call-log")[0])
    call.record.data.update(lastModifiedTime="2024-04-02T10:00:00.000Z", result="Voicemail")
    call.record.data["legs"] = call.record.data["legs"][:1]
    fax = copy.deepcopy(next(r for r in ds.of("message-store") if r.record.data["type"] == "Fax"))
    fax.record.data.update(availability="Deleted", lastModifiedTime="2024-04-02T10:00:00.000Z")
    fax.record.data["attachments"] = fax.record.data["attachments"][:1]
    fax.blobs = fax.blobs[:1]
    fax.record.deleted = True
    return call, fax
