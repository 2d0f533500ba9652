"""--data serves RingCentral-shaped records exactly as given, refuses what it cannot serve, and the
generated data uses RingCentral's own id schemes and binary formats.

The records below are written from the spec's examples and the fact sheet
(shared/reference/ringcentral-api.md, sections 1, 4.6-4.10, 5.1-5.2), including the shapes that
once broke the loader: attachment ids repeated across messages, a ``conversationId`` above 2^53,
a party with a ``contact`` block, an attachment without ``type``, legs in the Detailed view only.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json

import pytest
from typer.testing import CliRunner

from rcetl.sandbox import Sandbox
from rcetl.sandbox.cli import app as sandbox_cli
from rcetl.sandbox.options import parse_anchor

from .conftest import login

ANCHOR = parse_anchor("2026-01-15T00:00:00Z")
EXT = 62_491_834_004
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(28)
# What the sandbox adds when the record lacks it (docs/sandbox.md, "Loading your own records").
DERIVED = {"call": {"uri"}, "recording": {"uri", "contentUri"}, "message": {"uri"}, "attachment": {"uri", "size"},
           "extension": {"uri"}}

EXTENSIONS = [
    {"id": EXT, "extensionNumber": "101", "name": "Jane Smith", "type": "User", "status": "Enabled",
     "contact": {"firstName": "Jane", "lastName": "Smith", "email": "jane.smith@example.com"}, "hidden": False},
    {"id": 62_491_835_004, "extensionNumber": "102", "name": "Support", "type": "Department", "status": "Enabled"},
]

LEG = {"startTime": "2026-01-10T10:00:00.000Z", "duration": 42, "durationMs": 42_117, "type": "Voice",
       "internalType": "Local", "direction": "Inbound", "action": "Phone Call", "result": "Accepted",
       "reason": "Accepted", "to": {"phoneNumber": "+16505550101", "name": "Jane Smith"},
       "from": {"phoneNumber": "+14155550199", "location": "San Francisco, CA"}, "transport": "PSTN",
       "extension": {"uri": "https://platform.ringcentral.com/restapi/v1.0/account/37439510/extension/62491834004",
                     "id": EXT}}

CALLS = [
    {   # Detailed view as the spec's example has it: three legs, an OnDemand WAV recording
        "id": "VgLcd1KWffJVzUA", "sessionId": "11596683004", "telephonySessionId": "s-a0d178729c49dz1876d9b9d11z19269ec0000",
        **LEG, "recording": {"id": "3106449004", "type": "OnDemand",
                             "content": {"base64": base64.b64encode(WAV).decode(), "content_type": "audio/wav"}},
        "lastModifiedTime": "2026-01-10T10:01:03.521Z", "billing": {"costIncluded": 0.0, "costPurchased": 0.0},
        "legs": [dict(LEG, legType="Accept", master=True), dict(LEG, legType="FindMe", master=False),
                 dict(LEG, legType="FollowMe", master=False)]},
    {   # Simple view shape: nothing beyond what the spec requires, no legs, no extension
        "id": "VgLcd1KWffJVzUB", "sessionId": "11596683005", "startTime": "2026-01-11T09:30:00.000Z",
        "duration": 0, "type": "Fax", "direction": "Outbound", "action": "Outgoing Fax", "result": "Sent",
        "from": {"extensionNumber": "101"}, "to": {"phoneNumber": "+442071234567"}},
    {   # a deleted record, with its URI given: served exactly, byte for byte
        "uri": "https://platform.ringcentral.com/restapi/v1.0/account/37439510/call-log/VgLcd1KWffJVzUC?view=Simple",
        "id": "VgLcd1KWffJVzUC", "sessionId": "11596683006", "startTime": "2026-01-12T08:00:00.000Z",
        "duration": 5, "type": "Voice", "direction": "Outbound", "action": "VoIP Call", "result": "No Answer",
        "from": {"extensionNumber": "101"}, "to": {"phoneNumber": "+16505550123"}, "deleted": True},
]

MESSAGES = [
    {   # SMS, attachment id 1 as in the batch-get sample; conversationId beyond 2^53; a party with contact
        "id": 2447722008, "extensionId": str(EXT), "type": "SMS", "direction": "Inbound",
        "creationTime": "2026-01-12T10:00:00.000Z", "lastModifiedTime": "2026-01-12T10:00:01.531Z",
        "readStatus": "Read", "priority": "Normal", "availability": "Alive", "messageStatus": "Received",
        "from": {"phoneNumber": "+14155550199", "name": "Bob", "contact": {"firstName": "Bob", "lastName": "Brown"}},
        "to": [{"phoneNumber": "+16505550101", "name": "Jane Smith", "location": "Palo Alto, CA"}],
        "subject": "Running 10 min late", "conversationId": 8234962969801171948,
        "conversation": {"uri": "https://platform.ringcentral.com/restapi/v1.0/conversation/8234962969801171948",
                         "id": "8234962969801171948"},
        "attachments": [{"id": 1, "type": "Text", "contentType": "text/plain"}]},
    {   # MMS: again attachment id 1, then 2; a JPEG picture
        "id": 2416832008, "type": "SMS", "direction": "Inbound", "creationTime": "2026-01-12T11:00:00.000Z",
        "from": {"phoneNumber": "+14155550199"}, "to": [{"phoneNumber": "+16505550101"}], "subject": "photo",
        "conversationId": 8031152018338945839, "messageStatus": "Received", "readStatus": "Unread",
        "attachments": [{"id": 1, "type": "Text", "contentType": "text/plain"},
                        {"id": 2, "type": "MmsAttachment", "contentType": "image/jpeg", "fileName": "IMG_0001.jpg"}]},
    {   # voicemail: attachment id equal to the message id (docs example); no `type` on the transcript
        "id": 402406984008, "type": "VoiceMail", "direction": "Inbound", "creationTime": "2026-01-13T09:24:03.000Z",
        "to": [{"name": "Jane Smith"}], "from": {"phoneNumber": "+18445558517", "name": "RingCentral"},
        "readStatus": "Unread", "priority": "Normal", "availability": "Alive", "messageStatus": "Received",
        "vmTranscriptionStatus": "NotAvailable",
        "attachments": [{"id": 402406984008, "type": "AudioRecording", "contentType": "audio/x-wav", "vmDuration": 25},
                        {"id": 402406984009, "contentType": "text/plain"}]},
    {   # a three-page fax as TIFF
        "id": 308833278010, "type": "Fax", "direction": "Inbound", "creationTime": "2026-01-13T12:00:00.000Z",
        "faxPageCount": 3, "faxResolution": "High", "coverIndex": 0, "from": {"phoneNumber": "+442071234567"},
        "to": [{"phoneNumber": "+16505550101"}], "messageStatus": "Received", "readStatus": "Read",
        "attachments": [{"id": 1, "type": "RenderedDocument", "contentType": "image/tiff"}]},
    {   # deleted, and purged (its attachment's content is gone)
        "id": 308833278011, "type": "SMS", "creationTime": "2026-01-13T13:00:00.000Z", "availability": "Deleted",
        "subject": "old", "attachments": [{"id": 1, "type": "Text", "contentType": "text/plain"}]},
    {"id": 308833278012, "type": "SMS", "creationTime": "2026-01-13T14:00:00.000Z", "availability": "Purged"},
]


def _doc() -> dict:
    return {"accounts": [{"account_id": "37439510", "extensions": EXTENSIONS, "call_log": CALLS, "messages": MESSAGES}]}


def _served_as_given(served: dict, given: dict, kind: str) -> None:
    """Every given field served unchanged (nested records too); the rest only what is derived."""
    given = {k: v for k, v in given.items() if k != "content"}
    extra = set(served) - set(given)
    assert extra <= DERIVED[kind], f"{kind} {given.get('id')}: invented {sorted(extra - DERIVED[kind])}"
    for key, value in given.items():
        if kind == "call" and key == "recording":
            _served_as_given(served[key], value, "recording")
        elif kind == "message" and key == "attachments":
            assert len(served[key]) == len(value)
            for s, g in zip(served[key], value, strict=True):
                _served_as_given(s, g, "attachment")
        else:
            assert served.get(key, "<missing>") == value, f"{kind} {given.get('id')}: {key} changed"


@pytest.fixture(scope="module")
def given(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "ringcentral.json"
    path.write_text(json.dumps(_doc()))
    with Sandbox(seed=1, data=str(path), anchor=ANCHOR, limits=False) as sb:
        yield sb, login(sb)


def test_calls_are_served_as_given_in_both_views(given):
    sb, s = given
    url = f"{sb.server}/restapi/v1.0/account/~/call-log"
    for view in ("Detailed", "Simple"):
        served = s.get(url, params={"dateFrom": "2000-01-01T00:00:00Z", "view": view, "showDeleted": "true"}).json()["records"]
        by_id = {c["id"]: c for c in served}
        assert set(by_id) == {c["id"] for c in CALLS}
        for call in CALLS:
            expected = call if view == "Detailed" else {k: v for k, v in call.items() if k != "legs"}
            _served_as_given(by_id[call["id"]], expected, "call")
            assert view == "Detailed" or "legs" not in by_id[call["id"]]
    assert by_id["VgLcd1KWffJVzUC"] == CALLS[2], "a complete record is served byte for byte"
    detailed = s.get(f"{url}/VgLcd1KWffJVzUA", params={"view": "Detailed"}).json()
    assert [leg["legType"] for leg in detailed["legs"]] == ["Accept", "FindMe", "FollowMe"]
    assert s.get(detailed["recording"]["contentUri"]).content == WAV


def test_messages_are_served_as_given_with_exact_big_numbers(given):
    sb, s = given
    r = s.get(f"{sb.server}/restapi/v1.0/account/~/extension/~/message-store",
              params={"dateFrom": "2000-01-01T00:00:00Z", "availability": ["Alive", "Deleted", "Purged"], "perPage": 100})
    assert b'"conversationId":8234962969801171948' in r.content and b'"id":"8234962969801171948"' in r.content
    served = {m["id"]: m for m in r.json()["records"]}
    assert set(served) == {m["id"] for m in MESSAGES}
    for msg in MESSAGES:
        _served_as_given(served[msg["id"]], msg, "message")
    sms = served[2447722008]
    assert sms["from"]["contact"] == {"firstName": "Bob", "lastName": "Brown"}
    assert "type" not in served[402406984008]["attachments"][1], "no type invented for an attachment without one"
    assert "conversation" not in served[2416832008] and "to" not in served[308833278011]
    one = s.get(f"{sb.server}/restapi/v1.0/account/~/extension/~/message-store/2447722008").json()
    _served_as_given(one, MESSAGES[0], "message")


def test_attachment_bytes_belong_to_their_message(given):
    sb, s = given
    msgs = {m["id"]: m for m in s.get(f"{sb.server}/restapi/v1.0/account/~/extension/~/message-store",
                                       params={"dateFrom": "2000-01-01T00:00:00Z"}).json()["records"]}
    first = {mid: s.get(m["attachments"][0]["uri"]) for mid, m in msgs.items() if m["attachments"][0]["id"] == 1}
    assert len(first) == 3, "attachment id 1 in three messages"
    assert len({hashlib.sha256(r.content).digest() for r in first.values()}) == 3, "each its own bytes"
    assert first[2447722008].content == b"Running 10 min late"
    tiff = first[308833278010]
    assert tiff.headers["Content-Type"] == "image/tiff" and tiff.content[:4] == b"II*\x00"
    jpeg = s.get(msgs[2416832008]["attachments"][1]["uri"])
    assert jpeg.content[:3] == b"\xff\xd8\xff" and len(jpeg.content) == msgs[2416832008]["attachments"][1]["size"]
    truth = sb.ground_truth()["accounts"][0]["attachments"]
    keys = [a["key"] for a in truth]
    assert len(keys) == len(set(keys)) and "2447722008/1" in keys and "2416832008/1" in keys
    purged = next(a for a in truth if a["message_id"] == 308833278011)
    assert purged["available"] is True  # Deleted keeps its attachments; only Purged loses them


def _export(tmp_path, doc, name="bad.json"):
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    out = tmp_path / "truth.json"
    result = CliRunner().invoke(sandbox_cli, ["export", "--data", str(path), "--out", str(out)])
    return result, out


def _with(**changes) -> dict:
    doc = copy.deepcopy(_doc())
    doc["accounts"][0].update(changes)
    return doc


UNSERVABLE = [
    ("raw list response", {"records": CALLS, "navigation": {}, "paging": {"page": 1}}, "raw list response"),
    ("duplicate call id", _with(call_log=[CALLS[0], CALLS[0]]), "call_log: two records have the id 'VgLcd1KWffJVzUA'"),
    ("duplicate message id", _with(messages=[MESSAGES[0], MESSAGES[0]]), "messages: two records have the id 2447722008"),
    ("duplicate attachment id", _with(messages=[dict(MESSAGES[1], attachments=[{"id": 1}, {"id": 1}])]),
     "messages[0].attachments: two records have the attachment id (message 2416832008) 1"),
    ("unknown top-level key", {"accounts": [], "calls": []}, "unknown top-level key(s) 'calls'"),
    ("unknown account key", _with(recordings=[]), "accounts[0]: unknown key(s) 'recordings'"),
    ("call without startTime", _with(call_log=[{"id": "X1"}]), "call_log[0]: missing 'startTime'"),
    ("bad time", _with(call_log=[dict(CALLS[1], startTime="yesterday")]), "call_log[0] (id 'VgLcd1KWffJVzUB'): startTime"),
    ("message without id", _with(messages=[{"creationTime": "2026-01-12T10:00:00Z"}]), "messages[0]: missing 'id'"),
    ("mailbox not in account", _with(messages=[dict(MESSAGES[0], extensionId="999")]),
     "messages[0] (id 2447722008): extensionId 999 is not an extension"),
    ("size disagrees with content", _with(messages=[dict(MESSAGES[0], attachments=[
        {"id": 1, "size": 3, "content": {"base64": base64.b64encode(b"hello").decode()}}])]),
     "messages[0] (id 2447722008).attachments[0]: size 3 but its content has 5 bytes"),
    ("not JSON", "{\"accounts\": [", "not valid JSON"),
]


@pytest.mark.parametrize(("case", "doc", "message"), UNSERVABLE, ids=[c[0] for c in UNSERVABLE])
def test_unservable_input_is_refused_with_exit_2(tmp_path, case, doc, message):
    result, out = _export(tmp_path, doc)
    assert result.exit_code == 2, result.output
    assert message in result.output and "bad.json" in result.output
    assert not out.exists(), "nothing written"
    with pytest.raises(ValueError, match="bad.json"):
        Sandbox(seed=1, data=str(tmp_path / "bad.json"))


def test_list_responses_inside_an_account_are_a_documented_format(tmp_path):
    doc = _with(call_log={"uri": "...", "records": CALLS, "paging": {"page": 1}, "navigation": {}})
    result, out = _export(tmp_path, doc, "ok.json")
    assert result.exit_code == 0, result.output
    assert [c["id"] for c in json.loads(out.read_text())["accounts"][0]["call_log"]] == [c["id"] for c in reversed(CALLS)]


# --- the generated data --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated():
    return Sandbox(seed=1, size="small", anchor=ANCHOR).ground_truth()["accounts"][0]


def test_generated_ids_follow_ringcentrals_schemes(generated):
    atts = generated["attachments"]
    by_id: dict[int, set[int]] = {}
    for a in atts:
        by_id.setdefault(a["id"], set()).add(a["message_id"])
    assert len(by_id[1]) > 5 and len(by_id[2]) > 1, "small attachment ids repeat across messages"
    assert any(a["id"] == a["message_id"] for a in atts), "an attachment id equal to its message id"
    assert any(a["id"] > 2**53 for a in atts) and any(100_000_000_000 <= a["id"] < 2**53 for a in atts)
    assert len({a["key"] for a in atts}) == len(atts) and all(a["key"] == f"{a['message_id']}/{a['id']}" for a in atts)
    sms = [m for m in generated["messages"] if "conversationId" in m]
    assert any(m["conversationId"] > 2**53 for m in sms)
    for m in sms:
        assert m["conversation"]["id"] == str(m["conversationId"])
        assert m["conversation"]["uri"].endswith(f"/restapi/v1.0/conversation/{m['conversationId']}")
        assert "/account/" not in m["conversation"]["uri"]


def test_generated_binaries_are_distinct_and_in_real_formats(generated):
    binaries = generated["attachments"] + generated["recordings"]
    assert len({b["sha256"] for b in binaries}) == len(binaries), "every binary has its own bytes"
    types = {a["content_type"] for a in generated["attachments"]}
    assert {"text/plain", "image/png", "image/jpeg", "image/gif", "application/pdf", "image/tiff",
            "audio/x-wav", "audio/mpeg"} <= types
    assert {r["content_type"] for r in generated["recordings"]} == {"audio/mpeg", "audio/wav"}
    faxes = [m for m in generated["messages"] if m["type"] == "Fax"]
    assert any(m["faxPageCount"] > 1 and m["attachments"][0]["contentType"] == "image/tiff" for m in faxes)
    assert any(m["faxPageCount"] > 1 and m["attachments"][0]["contentType"] == "application/pdf" for m in faxes)
    assert {m["availability"] for m in generated["messages"]} == {"Alive", "Deleted", "Purged"}
    assert any(c.get("deleted") for c in generated["call_log"])
    assert {len(c["legs"]) for c in generated["call_log"]} >= {1, 2, 3}


def test_generated_binaries_decode_as_their_type(given):
    sb = Sandbox(seed=1, size="tiny", anchor=ANCHOR)
    magic = {"image/png": b"\x89PNG", "image/jpeg": b"\xff\xd8\xff", "image/gif": b"GIF89a", "image/tiff": b"II*\x00",
             "application/pdf": b"%PDF", "audio/x-wav": b"RIFF", "audio/wav": b"RIFF", "audio/mpeg": b"ID3"}
    data = sb.data[0]
    for m in data.messages:
        for a in m.attachments:
            head = a.blob().read()[:8]
            assert a.content_type == "text/plain" or head.startswith(magic[a.content_type]), (m.id, a.id, a.content_type)


def test_rcetl_archives_each_given_record_as_given(tmp_path):
    """The whole path: RingCentral-shaped records given with --data, archived by rcetl into
    SQLite; each archived raw JSON holds every given field unchanged (only derived fields added)."""
    import sqlite3

    from ..sources.runs import archive_of

    with Sandbox(seed=1, data=_doc(), anchor=ANCHOR, limits=False, time_scale=1000.0) as sb:
        archive = archive_of(sb, tmp_path)
        assert archive.run().status == "ok"
    with sqlite3.connect(tmp_path / "archive.db") as db:  # the SQL sink's typed tables keep each record's raw JSON
        calls = {key: json.loads(text) for key, text in db.execute("SELECT id, raw FROM rc_call_log")}
        texts = {str(key): text for key, text in db.execute("SELECT id, raw FROM rc_messages")}
    messages = {key: json.loads(text) for key, text in texts.items()}
    assert set(calls) == {c["id"] for c in CALLS}
    assert set(messages) == {str(m["id"]) for m in MESSAGES}
    for call in CALLS:
        _served_as_given(calls[call["id"]], call, "call")
    for msg in MESSAGES:
        _served_as_given(messages[str(msg["id"])], msg, "message")
    assert "8234962969801171948" in texts["2447722008"], "the big conversation id kept exact in the stored text"
