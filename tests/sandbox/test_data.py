"""Same seed, same bytes; --data serves exactly what it was given; adds while running."""

from __future__ import annotations

import base64
import hashlib
import json

import requests

from rcetl.sandbox import Sandbox
from rcetl.sandbox.options import parse_anchor

from .conftest import login

ANCHOR = parse_anchor("2026-01-15T00:00:00Z")


def _truth(**kw):
    return Sandbox(anchor=ANCHOR, host="127.0.0.1", port=18080, media_port=18081, **kw).ground_truth()


def test_same_seed_same_ground_truth_and_bytes():
    a, b = _truth(seed=11, size="tiny", accounts=2), _truth(seed=11, size="tiny", accounts=2)
    assert json.dumps(a) == json.dumps(b)
    other = _truth(seed=12, size="tiny")
    assert other["accounts"][0]["call_log"] != a["accounts"][0]["call_log"]
    assert a["accounts"][0]["account_id"] != a["accounts"][1]["account_id"]


def test_served_bytes_match_ground_truth(sandbox, api):
    truth = sandbox.ground_truth()["accounts"][0]
    for rec in [r for r in truth["recordings"] if r["available"]][:3]:
        body = api.get(f"{sandbox.media_server}/restapi/v1.0/account/~/recording/{rec['id']}/content").content
        assert hashlib.sha256(body).hexdigest() == rec["sha256"]


def test_default_set_is_hostile_on_purpose():
    truth = _truth(seed=1, size="small")["accounts"][0]
    names = [a.get("fileName") for m in truth["messages"] for a in m["attachments"]]
    assert "../../etc/passwd" in names and None in names
    assert any(n and any(ord(ch) < 32 for ch in n) for n in names)
    assert {m["type"] for m in truth["messages"]} >= {"SMS", "Fax", "VoiceMail"}
    assert any(len({c["telephonySessionId"] for c in truth["call_log"] if c.get("recording")}) <
               len([c for c in truth["call_log"] if c.get("recording")]) for _ in [0]), "a transfer with two recordings"
    assert 80 <= len(truth["recordings"]) <= 120 and len(truth["call_log"]) == 400


def test_explicit_counts_and_recording_bytes():
    sb = Sandbox(seed=2, size="tiny", calls=25, recordings=5, messages=7, recording_bytes=3_000_000)
    truth = sb.ground_truth()["accounts"][0]
    assert len(truth["call_log"]) == 25 and len(truth["recordings"]) == 5 and len(truth["messages"]) == 7
    assert {r["size"] for r in truth["recordings"]} == {3_000_000}


def test_data_file_is_served_exactly(tmp_path):
    payload = b"RIFF-not-really"
    doc = {"accounts": [{
        "call_log": [{"id": "CALL1", "startTime": "2026-01-10T10:00:00.000Z", "duration": 42, "type": "Voice",
                      "direction": "Inbound", "action": "Phone Call", "result": "Accepted",
                      "from": {"phoneNumber": "+15550001111"}, "to": {"phoneNumber": "+15550002222"},
                      "recording": {"id": "REC1", "type": "OnDemand",
                                    "content": {"base64": base64.b64encode(payload).decode(), "content_type": "audio/wav"}}}],
        "messages": [{"id": 9007199254740993, "type": "SMS", "creationTime": "2026-01-11T10:00:00.000Z",
                      "direction": "Inbound", "subject": "hi", "conversationId": 9007199254740995,
                      "attachments": [{"id": 9007199254740997, "type": "Text", "contentType": "text/plain",
                                       "content": {"size": 5000}}]}],
    }]}
    path = tmp_path / "data.json"
    path.write_text(json.dumps(doc))
    with Sandbox(seed=1, data=str(path), anchor=ANCHOR, limits=False) as sb:
        s = login(sb)
        calls = s.get(f"{sb.server}/restapi/v1.0/account/~/call-log",
                      params={"dateFrom": "2000-01-01T00:00:00Z", "view": "Detailed"}).json()["records"]
        assert [c["id"] for c in calls] == ["CALL1"] and calls[0]["duration"] == 42
        assert s.get(calls[0]["recording"]["contentUri"]).content == payload
        msgs = json.loads(s.get(f"{sb.server}/restapi/v1.0/account/~/extension/~/message-store",
                                params={"dateFrom": "2000-01-01T00:00:00Z"}).text)["records"]
        assert [m["id"] for m in msgs] == [9007199254740993] and msgs[0]["conversationId"] == 9007199254740995
        att = s.get(msgs[0]["attachments"][0]["uri"])
        assert len(att.content) == 5000 == msgs[0]["attachments"][0]["size"]


def test_admin_routes_add_data_and_count(sandbox):
    before = len(sandbox.data[0].calls)
    r = requests.post(f"{sandbox.admin}/accounts/0/calls", json={"n": 4})
    assert r.status_code == 200 and len(r.json()["added"]) == 4
    assert len(sandbox.data[0].calls) == before + 4
    counters = requests.get(f"{sandbox.admin}/counters").json()
    assert counters == sandbox.counters() or counters["requests"] <= sandbox.counters()["requests"]
    assert set(counters) >= {"by_group", "by_endpoint", "throttled", "bytes_sent"}


def test_fast_call_rendering_equals_the_dict_path():
    """call-log pages are joined from bytes written field by field; they must be exactly what
    dumping call_record gives, in both views, for deleted, recorded and transferred calls."""
    from rcetl.sandbox.render import call_bytes, call_record
    from rcetl.sandbox.web import dumps

    sb = Sandbox(seed=3, size="small", anchor=ANCHOR)
    data = sb.data[0]
    data.calls[5].deleted = True
    kinds = {"deleted": 0, "recorded": 0, "legs": 0}
    for c in data.calls:
        kinds["deleted"] += c.deleted
        kinds["recorded"] += c.recording is not None
        kinds["legs"] += c.legs > 1
        for detailed in (False, True):
            assert call_bytes(c, sb.urls, data.account_id, detailed) == dumps(call_record(c, sb.urls, data.account_id, detailed))
    assert all(kinds.values()), kinds


def test_pages_serve_a_thousand_records(sandbox, api):
    """No timing here (see ``python -m rcetl.sandbox.timing``): a 1,000-record page is served
    whole, from the cache the second time, and both times the same bytes."""
    sb = Sandbox(seed=4, size="tiny", calls=2500, recordings=10, messages=5, limits=False)
    with sb:
        s = login(sb)
        url = f"{sb.server}/restapi/v1.0/account/~/call-log"
        params = {"dateFrom": "2000-01-01T00:00:00Z", "perPage": 1000, "view": "Detailed"}
        first = s.get(url, params=params)
        again = s.get(url, params=params)
        assert first.content == again.content and len(first.json()["records"]) == 1000
        ids = []
        for page in (1, 2, 3):
            ids += [r["id"] for r in s.get(url, params={**params, "page": page}).json()["records"]]
        truth = [c["id"] for c in sb.ground_truth()["accounts"][0]["call_log"] if not c.get("deleted")]
        assert ids == truth
