"""RingCentral's own Python SDK, unchanged, against the sandbox."""

from __future__ import annotations

import pytest
from ringcentral import SDK


@pytest.fixture(scope="module")
def platform(sandbox):
    sdk = SDK(sandbox.client_id, sandbox.client_secret, sandbox.server)
    p = sdk.platform()
    p.login(jwt=sandbox.jwt)
    return p


def test_pages_the_account_call_log(platform, sandbox):
    ids, page = [], 1
    while True:
        body = platform.get("/restapi/v1.0/account/~/call-log",
                            {"dateFrom": "2000-01-01T00:00:00.000Z", "perPage": 10, "page": page}).json_dict()
        ids += [r["id"] for r in body["records"]]
        if "nextPage" not in body["navigation"]:
            break
        page += 1
    assert ids == [c["id"] for c in sandbox.ground_truth()["accounts"][0]["call_log"] if not c.get("deleted")]


def test_downloads_a_recording(platform, sandbox):
    rec = next(r for r in sandbox.ground_truth()["accounts"][0]["recordings"] if r["available"])
    meta = platform.get(f"/restapi/v1.0/account/~/recording/{rec['id']}").json_dict()
    body = platform.get(meta["contentUri"]).body()
    import hashlib

    assert hashlib.sha256(body).hexdigest() == rec["sha256"]


def test_batch_get_messages_multipart(platform, sandbox):
    owner = str(sandbox.accounts[0]["owner_extension_id"])
    ids = [m["id"] for m in sandbox.ground_truth()["accounts"][0]["messages"] if m["extensionId"] == owner][:3]
    resp = platform.get(f"/restapi/v1.0/account/~/extension/~/message-store/{','.join(map(str, ids))}")
    parts = resp.multipart()
    assert [p.json_dict()["id"] for p in parts] == ids
    assert all(p.response().status_code == 200 for p in parts)


def test_downloads_an_attachment(platform, sandbox):
    truth = sandbox.ground_truth()["accounts"][0]
    att = next(a for a in truth["attachments"] if a["available"] and a["content_type"] == "application/pdf")
    msg = next(m for m in truth["messages"] if m["id"] == att["message_id"])
    uri = next(a["uri"] for a in msg["attachments"] if a["id"] == att["id"])
    body = platform.get(uri).body()
    assert body.startswith(b"%PDF-") and len(body) == att["size"]


def test_refreshes_the_token(platform):
    before = platform.auth().access_token()
    platform.refresh()
    assert platform.auth().access_token() != before
    assert platform.get("/restapi/v1.0/account/~/extension").json_dict()["records"]
