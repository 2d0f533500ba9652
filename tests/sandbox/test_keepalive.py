"""HTTP/1.1 keep-alive: one connection serves many requests (bodies included), and clients that
open a connection per request (the SDK) or pool them (requests.Session) both work."""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

import pytest
import requests
from ringcentral import SDK

from rcetl.sandbox import Sandbox

from .conftest import JWT_GRANT, login


def _conn(url: str) -> http.client.HTTPConnection:
    u = urlsplit(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=10)


def test_one_connection_many_requests(sandbox):
    import base64

    conn = _conn(sandbox.server)
    basic = base64.b64encode(f"{sandbox.client_id}:{sandbox.client_secret}".encode()).decode()
    form = f"grant_type={JWT_GRANT}&assertion={sandbox.jwt}"
    conn.request("POST", "/restapi/oauth/token", body=form,
                 headers={"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"})
    first = conn.getresponse()
    token = json.loads(first.read())["access_token"]
    assert first.version == 11 and first.getheader("Connection") != "close"
    sock = conn.sock
    auth = {"Authorization": f"Bearer {token}"}
    for path in ("/restapi/v1.0/account/~", "/restapi/v1.0/account/~/extension", "/nope"):
        conn.request("GET", path, headers=auth)
        resp = conn.getresponse()
        body = resp.read()
        assert len(body) == int(resp.getheader("Content-Length"))
        assert conn.sock is sock, "the connection was kept"
    # a body the app never reads (DELETE of an unknown message) must not leak into the next request
    conn.request("DELETE", "/restapi/v1.0/account/~/extension/~/message-store/1", body=b'["1","2"]', headers=auth)
    assert conn.getresponse().read() and conn.sock is sock
    conn.request("GET", "/restapi/v1.0/account/~", headers=auth)
    assert json.loads(conn.getresponse().read())["status"] == "Confirmed"
    # media: a binary with Content-Length, then a 206, on one connection
    rec = next(r for r in sandbox.ground_truth()["accounts"][0]["recordings"] if r["available"])
    media = _conn(sandbox.media_server)
    path = f"/restapi/v1.0/account/~/recording/{rec['id']}/content"
    media.request("GET", path, headers=auth)
    assert len(media.getresponse().read()) == rec["size"]
    media_sock = media.sock
    media.request("GET", path, headers={**auth, "Range": "bytes=0-9"})
    part = media.getresponse()
    assert part.status == 206 and len(part.read()) == 10 and media.sock is media_sock


def test_session_and_sdk_with_keepalive(sandbox):
    s = login(sandbox)
    for _ in range(3):
        assert s.get(f"{sandbox.server}/restapi/v1.0/account/~/extension").status_code == 200
    platform = SDK(sandbox.client_id, sandbox.client_secret, sandbox.server).platform()
    platform.login(jwt=sandbox.jwt)
    assert platform.get("/restapi/v1.0/account/~").json_dict()["status"] == "Confirmed"


def test_dropped_connection_is_closed_and_the_next_request_works():
    with Sandbox(seed=5, size="tiny", faults="drop=1", limits=False) as sb:
        s = login(sb)
        url = f"{sb.server}/restapi/v1.0/account/~/extension"
        for _ in range(2):
            with pytest.raises(requests.exceptions.RequestException):
                s.get(url)
        assert s.post(f"{sb.server}/restapi/oauth/token", auth=(sb.client_id, sb.client_secret),
                      data={"grant_type": JWT_GRANT, "assertion": sb.jwt}).status_code == 200
