"""GET /account/{accountId} and the deletes ``rcetl purge`` uses: call recordings, an extension's
call log, messages by conversation. Each answer is checked against the spec; the ground truth and
the counters must show what was deleted."""

from __future__ import annotations

import pytest
from ringcentral import SDK

from rcetl.sandbox import Sandbox

from .conftest import login
from .rc_spec import check, check_status

WIDE = {"dateFrom": "2000-01-01T00:00:00.000Z"}


@pytest.fixture()
def fresh():
    with Sandbox(seed=9, size="tiny", limits=False) as sb:
        yield sb, login(sb)


def test_account_info(openapi, sandbox, api):
    acct = sandbox.accounts[0]
    r = api.get(f"{sandbox.server}/restapi/v1.0/account/~")
    body = check(openapi, "account-info", r)
    assert body["id"] == int(acct["account_id"]) and body["status"] == "Confirmed"
    assert body["uri"] == f"{sandbox.server}/restapi/v1.0/account/{acct['account_id']}"
    assert body["operator"]["id"] == acct["owner_extension_id"] and body["mainNumber"].startswith("+1")
    assert body["serviceInfo"]["brand"]["name"] == "RingCentral"
    assert r.headers["X-Rate-Limit-Group"] == "light"
    same = check(openapi, "account-info", api.get(f"{sandbox.server}/restapi/v1.0/account/{acct['account_id']}"))
    assert same == body
    other = api.get(f"{sandbox.server}/restapi/v1.0/account/123")
    assert other.status_code == 404 and check(openapi, "account-info", other)["errors"][0]["errorCode"] == "CMN-102"


def _available_recordings(sb):
    return [r for r in sb.ground_truth()["accounts"][0]["recordings"] if r["available"]]


def test_delete_call_recordings(openapi, fresh):
    sb, s = fresh
    url = f"{sb.server}/restapi/v1.0/account/~/call-recordings"
    victims = _available_recordings(sb)[:2]
    ids = [r["id"] for r in victims]
    r = s.delete(url, json={"records": ids})
    check_status(openapi, "call-recordings-delete", r, "delete")
    assert r.status_code == 204 and r.headers["X-Rate-Limit-Group"] == "heavy"
    for rid in ids:
        meta = s.get(f"{sb.server}/restapi/v1.0/account/~/recording/{rid}")
        assert meta.status_code == 404 and check(openapi, "recording", meta)["errors"][0]["errorCode"] == "CMN-102"
        content = s.get(f"{sb.media_server}/restapi/v1.0/account/~/recording/{rid}/content")
        assert content.status_code == 404
        check(openapi, "recording-content", content)
    truth = sb.ground_truth()["accounts"][0]
    assert {r["id"]: r["available"] for r in truth["recordings"] if r["id"] in ids} == {i: False for i in ids}
    # "deletes the recording file itself, not the record of it in the call log"
    calls = {c["recording"]["id"]: c for c in truth["call_log"] if c.get("recording")}
    assert all(rid in calls for rid in ids)
    listed = s.get(f"{sb.server}/restapi/v1.0/account/~/call-log/{victims[0]['call_id']}").json()
    assert listed["recording"]["id"] == ids[0]
    counters = sb.counters()
    assert counters["deleted"]["recordings"] == 2 and counters["by_endpoint"]["call-recordings-delete"] == 1


def test_delete_call_recordings_errors(openapi, fresh):
    sb, s = fresh
    url = f"{sb.server}/restapi/v1.0/account/~/call-recordings"
    keep = _available_recordings(sb)[0]["id"]
    for bad in (s.delete(url), s.delete(url, json={"records": []}), s.delete(url, data=b"{not json"),
                s.delete(url, json={"records": [str(i) for i in range(101)]})):
        assert bad.status_code == 400
        check_status(openapi, "call-recordings-delete", bad, "delete")
    missing = s.delete(url, json={"records": [keep, "999"]})
    assert missing.status_code == 404 and missing.json()["errors"][0]["parameterValue"] == "999"
    check_status(openapi, "call-recordings-delete", missing, "delete")
    assert s.get(f"{sb.server}/restapi/v1.0/account/~/recording/{keep}").status_code == 200, "all or nothing"
    past_retention = next(r["id"] for r in sb.ground_truth()["accounts"][0]["recordings"] if not r["available"])
    assert s.delete(url, json={"records": [past_retention]}).status_code == 404
    assert sb.counters()["deleted"]["recordings"] == 0


def test_delete_call_recordings_with_the_sdk(fresh):
    sb, _ = fresh
    platform = SDK(sb.client_id, sb.client_secret, sb.server).platform()
    platform.login(jwt=sb.jwt)
    rid = _available_recordings(sb)[0]["id"]
    resp = platform.delete("/restapi/v1.0/account/~/call-recordings", body={"records": [rid]})
    assert resp.response().status_code == 204
    assert sb.data[0].recordings[rid].available is False


def test_delete_extension_call_log(openapi, fresh):
    sb, s = fresh
    owner = sb.accounts[0]["owner_extension_id"]
    base = f"{sb.server}/restapi/v1.0/account/~/extension/~"
    mine = [c for c in sb.ground_truth()["accounts"][0]["call_log"] if c["extension"]["id"] == owner and not c.get("deleted")]
    assert len(mine) >= 2
    cut = mine[len(mine) // 2]["startTime"]  # newest first: the older half goes
    older = {c["id"] for c in mine if c["startTime"] < cut}
    sync = s.get(f"{base}/call-log-sync", params={"syncType": "FSync", "recordCount": 1}).json()["syncInfo"]["syncToken"]
    r = s.delete(f"{base}/call-log", params={"dateTo": cut})
    check_status(openapi, "extension-call-log-delete", r, "delete")
    assert r.status_code == 204
    left = check(openapi, "extension-call-log", s.get(f"{base}/call-log", params={**WIDE, "perPage": 1000}))
    assert not older & {c["id"] for c in left["records"]}
    shown = s.get(f"{base}/call-log", params={**WIDE, "perPage": 1000, "showDeleted": "true"}).json()["records"]
    assert {c["id"] for c in shown if c.get("deleted")} >= older
    inc = check(openapi, "extension-call-log-sync",
                s.get(f"{base}/call-log-sync", params={"syncType": "ISync", "syncToken": sync, "showDeleted": "true"}))
    assert {c["id"] for c in inc["records"]} == older and all(c["deleted"] for c in inc["records"])
    truth = {c["id"]: c for c in sb.ground_truth()["accounts"][0]["call_log"]}
    assert all(truth[i].get("deleted") is True for i in older)
    assert sb.counters()["deleted"]["calls"] == len(older)
    again = s.delete(f"{base}/call-log", params={"dateTo": cut})
    assert again.status_code == 204 and sb.counters()["deleted"]["calls"] == len(older)
    bad = s.delete(f"{base}/call-log", params={"dateTo": "yesterday"})
    assert bad.status_code == 400
    check_status(openapi, "extension-call-log-delete", bad, "delete")


def _owner_messages(sb):
    owner = str(sb.accounts[0]["owner_extension_id"])
    return [m for m in sb.ground_truth()["accounts"][0]["messages"] if m["extensionId"] == owner]


def test_delete_conversation(openapi, fresh):
    sb, s = fresh
    base = f"{sb.server}/restapi/v1.0/account/~/extension/~/message-store"
    conv = next(m["conversationId"] for m in _owner_messages(sb) if m.get("conversationId") and m["availability"] == "Alive")
    members = {m["id"] for m in _owner_messages(sb) if m.get("conversationId") == conv and m["availability"] == "Alive"}
    r = s.delete(base, params={"conversationId": str(conv)})
    check_status(openapi, "conversation-delete", r, "delete")
    assert r.status_code == 204
    after = {m["id"]: m["availability"] for m in _owner_messages(sb)}
    assert {after[i] for i in members} == {"Deleted"}
    assert sb.counters()["deleted"]["messages"] == len(members)
    assert s.delete(base, params={"conversationId": str(conv), "purge": "true"}).status_code == 204
    gone = {a["message_id"]: a["available"] for a in sb.ground_truth()["accounts"][0]["attachments"]}
    assert all(gone[i] is False for i in members if i in gone)
    listed = s.get(base, params={**WIDE, "availability": "Purged"}).json()["records"]
    assert members <= {m["id"] for m in listed}
    bad = s.delete(base, params={"type": "Nope"})
    assert bad.status_code == 400
    check_status(openapi, "conversation-delete", bad, "delete")


def test_delete_messages_by_star_body(openapi, fresh):
    sb, s = fresh
    base = f"{sb.server}/restapi/v1.0/account/~/extension/~/message-store"
    ids = [m["id"] for m in _owner_messages(sb) if m["availability"] == "Alive"][:2]
    r = s.delete(f"{base}/*", json=[str(i) for i in ids], params={"purge": "true"})
    check_status(openapi, "message-delete", r, "delete")
    assert r.status_code == 204
    assert {s.get(f"{base}/{i}").json()["availability"] for i in ids} == {"Purged"}
    too_many = s.delete(f"{base}/{','.join(['1'] * 51)}")
    assert too_many.status_code == 400 and too_many.json()["errors"][0]["errorCode"] == "CMN-106"
