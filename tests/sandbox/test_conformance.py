"""Every endpoint's responses, success and error, against the official OpenAPI schemas."""

from __future__ import annotations

import requests

from rcetl.sandbox.routes import ROUTES

from .rc_spec import check, operation

WIDE = {"dateFrom": "2000-01-01T00:00:00.000Z"}


def test_every_route_has_the_spec_throttling_group(openapi):
    for r in ROUTES:
        if r.kind == "admin":
            continue
        op = operation(openapi, r.name, r.method)
        assert op["x-throttling-group"] == r.group, r.name


def test_token_and_error_bodies(openapi, sandbox):
    url = f"{sandbox.server}/restapi/oauth/token"
    ok = requests.post(url, auth=(sandbox.client_id, sandbox.client_secret),
                       data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": sandbox.jwt})
    body = check(openapi, "token", ok, "post")
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600 and body["refresh_token_expires_in"] == 604800
    bad = requests.post(url, auth=(sandbox.client_id, sandbox.client_secret),
                        data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": "x.y.z"})
    assert bad.status_code == 400
    assert check(openapi, "token", bad, "post")["error"] == "invalid_grant"
    refreshed = requests.post(url, auth=(sandbox.client_id, sandbox.client_secret),
                              data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]})
    check(openapi, "token", refreshed, "post")
    again = requests.post(url, auth=(sandbox.client_id, sandbox.client_secret),
                          data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]})
    assert again.status_code == 400, "refresh tokens are single-use"
    # the refresh ended the first access token
    old = requests.get(f"{sandbox.server}/restapi/v1.0/account/~/extension", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert old.status_code == 401
    revoke = requests.post(f"{sandbox.server}/restapi/oauth/revoke", auth=(sandbox.client_id, sandbox.client_secret),
                           data={"token": refreshed.json()["access_token"]})
    assert revoke.status_code == 200
    gone = requests.get(f"{sandbox.server}/restapi/v1.0/account/~/extension",
                        headers={"Authorization": f"Bearer {refreshed.json()['access_token']}"})
    assert gone.status_code == 401 and gone.json()["errors"][0]["errorCode"] == "OAU-129"


def test_401_bodies(openapi, sandbox):
    url = f"{sandbox.server}/restapi/v1.0/account/~/call-log"
    missing = requests.get(url)
    assert missing.status_code == 401 and missing.json()["errorCode"] == "AGW-401"
    check(openapi, "account-call-log", missing)
    malformed = requests.get(url, headers={"Authorization": "Bearer not-a-token"})
    assert malformed.json()["errors"][0]["errorCode"] == "OAU-149"
    check(openapi, "account-call-log", malformed)
    # the query-parameter token is a media-entry-point feature only
    assert requests.get(url, params={"access_token": "x"}).json()["errorCode"] == "AGW-401"


def test_call_log_list_and_paging(openapi, sandbox, api):
    url = f"{sandbox.server}/restapi/v1.0/account/~/call-log"
    first = api.get(url, params={**WIDE, "perPage": 7, "view": "Detailed", "showDeleted": "true"})
    body = check(openapi, "account-call-log", first)
    assert "totalPages" not in body["paging"] and "totalElements" not in body["paging"]
    seen = [r["id"] for r in body["records"]]
    while "nextPage" in body["navigation"]:
        body = check(openapi, "account-call-log", api.get(body["navigation"]["nextPage"]["uri"]))
        assert body["records"], "nextPage must only point at a non-empty page"
        seen += [r["id"] for r in body["records"]]
    truth = sandbox.ground_truth()["accounts"][0]["call_log"]
    assert seen == [r["id"] for r in truth]
    assert all("legs" in r for r in truth)


def test_call_log_defaults_to_the_last_24_hours(sandbox, api):
    body = api.get(f"{sandbox.server}/restapi/v1.0/account/~/call-log", params={"perPage": 1000}).json()
    truth = sandbox.ground_truth()["accounts"][0]["call_log"]
    assert len(body["records"]) < len([r for r in truth if not r.get("deleted")])
    assert "dateFrom=" in body["uri"]


def test_call_log_filters_and_errors(openapi, sandbox, api):
    url = f"{sandbox.server}/restapi/v1.0/account/~/call-log"
    rec = api.get(url, params={**WIDE, "recordingType": "All", "perPage": 1000}).json()["records"]
    assert rec and all("recording" in r for r in rec)
    fax = api.get(url, params={**WIDE, "type": "Fax", "direction": "Inbound"}).json()["records"]
    assert all(r["type"] == "Fax" and r["direction"] == "Inbound" for r in fax)
    bad = api.get(url, params={"perPage": "0"})
    assert bad.status_code == 400 and check(openapi, "account-call-log", bad)["errors"][0]["errorCode"] == "CMN-101"
    ext = api.get(f"{sandbox.server}/restapi/v1.0/account/~/extension/~/call-log", params=WIDE)
    body = check(openapi, "extension-call-log", ext)
    assert all(r["extension"]["id"] == sandbox.accounts[0]["owner_extension_id"] for r in body["records"])


def test_call_log_by_id_single_batch_and_missing(openapi, sandbox, api):
    ids = [r["id"] for r in sandbox.ground_truth()["accounts"][0]["call_log"][:3]]
    base = f"{sandbox.server}/restapi/v1.0/account/~/call-log"
    one = api.get(f"{base}/{ids[0]}")
    assert check(openapi, "account-call-log-record", one)["id"] == ids[0]
    missing = api.get(f"{base}/nope")
    assert missing.status_code == 404 and check(openapi, "account-call-log-record", missing)["errors"][0]["errorCode"] == "CMN-102"
    batch = api.get(f"{base}/{','.join(ids + ['nope'])}")
    assert batch.status_code == 207 and batch.headers["Content-Type"].startswith("multipart/mixed; boundary=")
    too_many = api.get(f"{base}/{','.join(['x'] * 51)}")
    assert too_many.status_code == 400 and too_many.json()["errors"][0]["errorCode"] == "CMN-106"


def test_call_log_sync(openapi, sandbox, api):
    url = f"{sandbox.server}/restapi/v1.0/account/~/call-log-sync"
    full = check(openapi, "account-call-log-sync", api.get(url, params={"syncType": "FSync", "recordCount": 5}))
    assert len(full["records"]) == 5
    token = full["syncInfo"]["syncToken"]
    nothing = check(openapi, "account-call-log-sync", api.get(url, params={"syncType": "ISync", "syncToken": token}))
    assert nothing["records"] == []
    sandbox.add_calls(3)
    new = check(openapi, "account-call-log-sync", api.get(url, params={"syncType": "ISync", "syncToken": token}))
    assert len(new["records"]) == 3
    sandbox.add_calls(251)
    over = api.get(url, params={"syncType": "ISync", "syncToken": new["syncInfo"]["syncToken"]})
    assert over.status_code == 400 and "limit is exceeded" in check(openapi, "account-call-log-sync", over)["message"]
    ext = api.get(f"{sandbox.server}/restapi/v1.0/account/~/extension/~/call-log-sync", params={"recordCount": 3})
    check(openapi, "extension-call-log-sync", ext)


def test_call_log_extract_sync(openapi, sandbox, api):
    url = f"{sandbox.server}/restapi/v1.0/account/~/call-log-extract-sync"
    body = check(openapi, "call-log-extract-sync", api.get(url, params={**WIDE, "recordCount": 10}))
    assert len(body["records"]) >= 10 and body["syncInfo"]["newerRecordsExist"] is True
    ids = [r["id"] for r in body["records"]]
    while body["syncInfo"]["newerRecordsExist"]:
        body = check(openapi, "call-log-extract-sync",
                     api.get(url, params={"syncType": "ISync", "syncToken": body["syncInfo"]["syncToken"]}))
        ids += [r["id"] for r in body["records"]]
    assert sorted(ids) == sorted(c.id for c in sandbox.data[0].calls)


def _recordings(sandbox, available: bool):
    return [r for r in sandbox.ground_truth()["accounts"][0]["recordings"] if r["available"] is available]


def test_recording_metadata_and_content(openapi, sandbox, api):
    rec = _recordings(sandbox, True)[0]
    meta = check(openapi, "recording", api.get(f"{sandbox.server}/restapi/v1.0/account/~/recording/{rec['id']}"))
    assert meta["contentUri"].startswith(sandbox.media_server)
    content = api.get(meta["contentUri"])
    assert content.status_code == 200 and len(content.content) == rec["size"] == int(content.headers["Content-Length"])
    assert content.headers["Content-Type"] == rec["content_type"] == meta["contentType"]
    part = api.get(meta["contentUri"], headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == content.content[10:20]
    assert part.headers["Content-Range"] == f"bytes 10-19/{rec['size']}"
    unsat = api.get(meta["contentUri"], headers={"Range": f"bytes={rec['size']}-"})
    assert unsat.status_code == 416 and unsat.json()["errors"][0]["errorCode"] == "CMN-107"
    token = api.headers["Authorization"].split()[1]
    assert requests.get(meta["contentUri"], params={"access_token": token}).content == content.content


def test_recording_past_retention_is_gone(openapi, sandbox, api):
    old = _recordings(sandbox, False)
    assert old, "the default data set must hold recordings past retention"
    url = f"{sandbox.media_server}/restapi/v1.0/account/~/recording/{old[0]['id']}/content"
    gone = api.get(url)
    assert gone.status_code == 404 and check(openapi, "recording-content", gone)["errors"][0]["errorCode"] == "CMN-102"


def test_extension_list(openapi, sandbox, api):
    body = check(openapi, "extension-list", api.get(f"{sandbox.server}/restapi/v1.0/account/~/extension", params={"perPage": 3}))
    assert body["paging"]["totalElements"] == len(sandbox.data[0].extensions) and "lastPage" in body["navigation"]
    types = {e["type"] for e in sandbox.ground_truth()["accounts"][0]["extensions"]}
    assert {"User", "Department", "IvrMenu"} <= types
    bad = api.get(f"{sandbox.server}/restapi/v1.0/account/~/extension", params={"type": "Nope"})
    assert bad.status_code == 400
    check(openapi, "extension-list", bad)


def _owner_messages(sandbox):
    owner = sandbox.accounts[0]["owner_extension_id"]
    return [m for m in sandbox.ground_truth()["accounts"][0]["messages"] if m["extensionId"] == str(owner)]


def test_message_list_get_batch(openapi, sandbox, api):
    base = f"{sandbox.server}/restapi/v1.0/account/~/extension/~/message-store"
    body = check(openapi, "message-list", api.get(base, params={**WIDE, "availability": ["Alive", "Deleted", "Purged"]}))
    assert [m["id"] for m in body["records"]] == [m["id"] for m in _owner_messages(sandbox)]
    assert body["paging"]["totalElements"] == len(body["records"])
    alive = check(openapi, "message-list", api.get(base, params=WIDE))
    assert all(m["availability"] == "Alive" for m in alive["records"])
    ids = [str(m["id"]) for m in body["records"][:3]]
    one = api.get(f"{base}/{ids[0]}")
    assert check(openapi, "message", one)["id"] == int(ids[0])
    missing = api.get(f"{base}/1")
    assert missing.status_code == 404
    check(openapi, "message", missing)
    batch = api.get(f"{base}/{','.join(ids + ['1'])}", headers={"Accept": "application/vnd.ringcentral.multipart+json"})
    assert batch.status_code == 207
    entries = batch.json()
    assert [e["status"] for e in entries] == [200, 200, 200, 404]
    for e in entries[:3]:
        check_body = e["body"]
        assert str(check_body["id"]) == e["resourceId"]


def test_message_ids_beyond_float_precision(sandbox):
    ids = [m["id"] for a in sandbox.ground_truth()["accounts"] for m in a["messages"]]
    assert any(i > 2**53 for i in ids)
    assert all(isinstance(i, int) for i in ids)


def test_attachment_content(openapi, sandbox, api):
    att = next(a for a in sandbox.ground_truth()["accounts"][0]["attachments"] if a["available"])
    msg = next(m for m in sandbox.ground_truth()["accounts"][0]["messages"] if m["id"] == att["message_id"])
    uri = next(a["uri"] for a in msg["attachments"] if a["id"] == att["id"])
    r = api.get(uri)
    assert r.status_code == 200 and len(r.content) == att["size"]
    assert r.headers["X-Rate-Limit-Group"] == "medium"
    missing = api.get(uri.rsplit("/", 1)[0] + "/12345")
    assert missing.status_code == 404
    check(openapi, "attachment-content", missing)


def test_message_sync_and_delete_purge(openapi, sandbox, api):
    url = f"{sandbox.server}/restapi/v1.0/account/~/extension/~/message-sync"
    full = check(openapi, "message-sync", api.get(url, params={"syncType": "FSync", **WIDE}))
    token = full["syncInfo"]["syncToken"]
    victim = full["records"][0]["id"]
    base = f"{sandbox.server}/restapi/v1.0/account/~/extension/~/message-store"
    assert api.delete(f"{base}/{victim}").status_code == 204
    assert api.get(f"{base}/{victim}").json()["availability"] == "Deleted"
    inc = check(openapi, "message-sync", api.get(url, params={"syncType": "ISync", "syncToken": token}))
    assert inc["records"] == [{"id": victim, "availability": "Deleted"}]
    assert api.delete(f"{base}/{victim}").status_code == 204
    assert api.get(f"{base}/{victim}").json()["availability"] == "Purged"
    added = sandbox.add_messages(2)
    inc2 = check(openapi, "message-sync", api.get(url, params={"syncType": "ISync", "syncToken": inc["syncInfo"]["syncToken"]}))
    owner = str(sandbox.accounts[0]["owner_extension_id"])
    expected = {m["id"] for m in added if m["extensionId"] == owner} | {victim}
    assert {r["id"] for r in inc2["records"]} == expected
    bad = api.get(url, params={"syncType": "ISync", "syncToken": "garbage"})
    assert bad.status_code == 400
    check(openapi, "message-sync", bad)
