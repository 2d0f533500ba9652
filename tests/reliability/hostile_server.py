"""A small hostile RingCentral stand-in: a WSGI app on a free port that logs in normally, serves a
tiny healthy account, and on demand answers with a crafted fault (``scenario``).

The healthy account: 4 calls (2 recorded), 2 messages of extension 1 (one above 2^53, both with an
attachment of declared size). ``ground_truth()`` has the shape of the sandbox's, so
``archive_check.check_archive`` checks an archive of it. A second server, ``evil``, on another host
(127.0.0.2) records every request it gets: redirects and foreign URIs point there, and the tests
assert it never saw a token.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlencode

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

ACCOUNT = "1000"
BIG = 2**53 + 11  # message ids above 2^53 must stay exact


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.000Z")


#: What each served type starts (and, for PDF, ends) with: RingCentral serves real media, and
#: rcetl's content check refuses bytes whose signature is not their announced type.
_SIGNATURES = {"audio/mpeg": (b"ID3\x03\x00\x00\x00\x00\x00\x00", b""),
               "image/png": (b"\x89PNG\r\n\x1a\n", b""),
               "application/pdf": (b"%PDF-1.4\n", b"\n%%EOF\n")}


def _media(content_type: str, seed: str, size: int) -> bytes:
    """``size`` bytes of ``content_type``: its signature around distinct filler."""
    head, tail = _SIGNATURES[content_type]
    return head + _content(seed, size - len(head) - len(tail)) + tail


def _content(seed: str, size: int) -> bytes:
    out, block = bytearray(), hashlib.sha256(seed.encode()).digest()
    while len(out) < size:
        out += block
        block = hashlib.sha256(block).digest()
    return bytes(out[:size])


class _Server:
    def __init__(self, host: str, app: Callable) -> None:
        self.http = make_server(host, 0, app, threaded=True)
        self.url = f"http://{host}:{self.http.server_port}"
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


class HostileRingCentral:
    client_id = "hostile-client-id"
    client_secret = "hostile-client-secret-5f3a9"
    jwt = "eyJhbGciOiJub25lIn0.hostile-jwt-payload-77c1.sig"
    time_scale = 1000.0

    def __init__(self) -> None:
        self.scenario = "healthy"
        self.hits: dict[str, int] = {}
        self.tokens_issued: list[str] = []
        self.evil_requests: list[dict[str, str]] = []
        self._lock = threading.Lock()
        now = datetime.now(timezone.utc).replace(microsecond=0)
        self.calls = []
        for i in range(4):
            call: dict[str, Any] = {"id": f"C{i}AbX", "sessionId": str(500 + i), "startTime": _iso(now - timedelta(days=i + 1)),
                                    "duration": 30 + i, "type": "Voice", "direction": "Inbound", "result": "Accepted",
                                    "from": {"phoneNumber": "+15550100"}, "to": {"phoneNumber": "+15550199"}}
            self.calls.append(call)
        self.messages = [
            {"id": BIG, "type": "SMS", "creationTime": _iso(now - timedelta(days=2)), "availability": "Alive",
             "conversationId": BIG + 1, "attachments": [{"id": BIG + 2, "type": "MmsAttachment",
                                                         "contentType": "image/png", "size": 2048}]},
            {"id": 7001, "type": "Fax", "creationTime": _iso(now - timedelta(days=3)), "availability": "Alive",
             "attachments": [{"id": 7002, "type": "RenderedDocument", "contentType": "application/pdf",
                              "size": 3000, "fileName": "fax.pdf"}]},
        ]
        self.recording_sizes = {"9001": 4000, "9002": 5000}
        self.platform = _Server("127.0.0.1", self._app)
        self.evil = _Server("127.0.0.2", self._evil_app)
        self.server = self.platform.url
        self.media = f"{self.server}/restapi/v1.0/account/{ACCOUNT}"
        for n, rec_id in enumerate(self.recording_sizes):
            self.calls[n]["recording"] = {"id": rec_id, "type": "Automatic",
                                          "uri": f"{self.media}/recording/{rec_id}",
                                          "contentUri": f"{self.media}/recording/{rec_id}/content"}
        for m in self.messages:
            for a in m["attachments"]:
                a["uri"] = f"{self.media}/extension/1/message-store/{m['id']}/content/{a['id']}"
            m["uri"] = f"{self.media}/extension/1/message-store/{m['id']}"

    # --- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> HostileRingCentral:
        return self

    def __exit__(self, *exc: object) -> None:
        self.platform.close()
        self.evil.close()

    def ground_truth(self, calls: list[dict] | None = None) -> dict[str, Any]:
        calls = self.calls if calls is None else calls
        recordings = [{"id": rid, "call_id": c["id"], "size": self.recording_sizes[rid],
                       "sha256": hashlib.sha256(self._recording(rid)).hexdigest(), "available": True}
                      for c in calls if "recording" in c for rid in [c["recording"]["id"]]]
        attachments = [{"id": a["id"], "message_id": m["id"], "size": a["size"],
                        "sha256": hashlib.sha256(self._attachment(a)).hexdigest(), "available": True}
                       for m in self.messages for a in m["attachments"]]
        return {"accounts": [{"account_id": ACCOUNT, "call_log": calls, "recordings": recordings,
                              "messages": self.messages, "attachments": attachments}]}

    def _recording(self, rid: str) -> bytes:
        return _media("audio/mpeg", f"rec-{rid}", self.recording_sizes[rid])

    def _attachment(self, att: dict) -> bytes:
        return _media(att["contentType"], f"att-{att['id']}", att["size"])

    # --- the app -------------------------------------------------------------------------------

    def _hit(self, key: str) -> int:
        with self._lock:
            self.hits[key] = self.hits.get(key, 0) + 1
            return self.hits[key]

    def _evil_app(self, environ, start_response):  # noqa: ANN001, ANN201
        req = Request(environ)
        self.evil_requests.append({"path": req.path, "authorization": req.headers.get("Authorization", ""),
                                   "query": req.query_string.decode()})
        return Response(b'{"records": []}', 200, content_type="application/json")(environ, start_response)

    def _app(self, environ, start_response):  # noqa: ANN001, ANN201
        req = Request(environ)
        resp = self._route(req)
        if callable(resp) and not isinstance(resp, Response):
            return resp(environ, start_response)  # a raw WSGI answer (lying lengths, endless bodies)
        return resp(environ, start_response)

    def _json(self, body: Any, status: int = 200) -> Response:
        return Response(json.dumps(body), status, content_type="application/json")

    def _route(self, req: Request):  # noqa: ANN202
        path, s = req.path, self.scenario
        if path == "/restapi/oauth/token":
            return self._token(req)
        if not path.startswith("/restapi/v1.0/"):
            return Response("not found", 404)
        if s == "401 forever":
            return self._json({"errorCode": "TokenInvalid", "errors": [{"errorCode": "OAU-129", "message":
                               "Access token corrupted"}]}, 401)
        if s == "500 forever":
            return self._json({"errorCode": "CMN-500"}, 500)
        if not req.headers.get("Authorization", "").startswith("Bearer tok-"):
            return self._json({"errorCode": "AGW-401"}, 401)
        if path == "/restapi/v1.0/account/~":
            return self._json({"id": int(ACCOUNT)})
        if path == "/restapi/v1.0/account/~/call-log":
            return self._call_log(req)
        if path.endswith("/message-sync"):
            return self._json({"records": [], "syncInfo": {"syncType": req.args.get("syncType"),
                                                           "syncToken": "sync-1", "syncTime": _iso(datetime.now(timezone.utc))}})
        if path == "/restapi/v1.0/account/~/extension/1/message-store":
            return self._messages(req)
        if "/recording/" in path and path.endswith("/content"):
            rid = path.split("/")[-2]
            return self._binary(req, self._recording(rid), "audio/mpeg", "recording")
        if "/content/" in path:
            aid = int(path.rsplit("/", 1)[1])
            att = next(a for m in self.messages for a in m["attachments"] if a["id"] == aid)
            return self._binary(req, self._attachment(att), att["contentType"], "attachment")
        return self._json({"errorCode": "CMN-102", "message": "Resource not found"}, 404)

    def _token(self, req: Request) -> Response:
        if self.scenario == "token endpoint sends HTML":
            return Response("<html><body>Service Unavailable</body></html>", 200, content_type="text/html")
        if self.scenario == "token without access_token":
            return self._json({"token_type": "bearer", "expires_in": 3600})
        token = f"tok-{len(self.tokens_issued)}-a8f2c"
        self.tokens_issued.append(token)
        return self._json({"access_token": token, "token_type": "bearer", "expires_in": 3600,
                           "refresh_token": f"ref-{len(self.tokens_issued)}-99b1", "refresh_token_expires_in": 604800,
                           "owner_id": "1", "scope": "ReadCallLog ReadMessages"})

    # --- lists ---------------------------------------------------------------------------------

    def _window(self, req: Request, items: list[dict], field: str) -> list[dict]:
        lo, hi = req.args.get("dateFrom", ""), req.args.get("dateTo", "9999")
        return [x for x in items if lo <= x[field] < hi]

    def _page(self, req: Request, items: list[dict], path: str) -> dict[str, Any]:
        per_page = int(req.args.get("perPage", 1000))
        page = int(req.args.get("page", 1))
        chunk = items[(page - 1) * per_page: page * per_page]
        body: dict[str, Any] = {"uri": req.url, "records": chunk, "paging": {"page": page, "perPage": per_page},
                                "navigation": {}}
        if page * per_page < len(items):
            args = {k: v for k, v in req.args.items(multi=True)} | {"page": str(page + 1)}
            body["navigation"]["nextPage"] = {"uri": f"{self.server}{path}?{urlencode(args)}"}
        return body

    def _call_log(self, req: Request):  # noqa: ANN202
        s = self.scenario
        calls = [dict(c) for c in self._window(req, self.calls, "startTime")]
        n = self._hit("call-log")
        if s == "429 without Retry-After, then fine" and n <= 3:
            return self._json({"errorCode": "CMN-301", "message": "Request rate exceeded"}, 429)
        if s == "429 forever":
            return self._json({"errorCode": "CMN-301", "message": "Request rate exceeded"}, 429)
        if s == "huge page (5,000 records)":
            return self._json({"records": self.huge_calls, "paging": {"page": 1, "perPage": 5000}, "navigation": {}})
        body = self._page(req, calls, req.path)
        recs = body["records"]
        if recs:
            if s == "id missing":
                del recs[0]["id"]
            elif s == "id as float":
                recs[0]["id"] = 12345.0
            elif s == "id as bool":
                recs[0]["id"] = True
            elif s == "startTime not a date":
                recs[0]["startTime"] = "yesterday afternoon"
            elif s == "record not an object":
                recs[0] = "C0AbX"
            elif s == "contentUri on another host":
                for r in recs:
                    if "recording" in r:
                        r["recording"] = dict(r["recording"], contentUri=f"{self.evil.url}/steal/{r['recording']['id']}")
            elif s == "duplicate ids in a page":
                recs.append(dict(recs[0]))
        if s == "nextPage on another host" and body["navigation"].get("nextPage"):
            body["navigation"]["nextPage"]["uri"] = body["navigation"]["nextPage"]["uri"].replace(self.server, self.evil.url)
        if s == "nextPage loop" and body["paging"]["page"] == 2:
            body["navigation"]["nextPage"] = {"uri": req.url.replace("page=2", "page=1")}
        raw = json.dumps(body).encode()
        if s == "records not a list":
            raw = json.dumps({**body, "records": {"0": "C0AbX"}}).encode()
        elif s == "top level is a list":
            raw = json.dumps([body]).encode()
        elif s == "truncated JSON":
            raw = raw[: len(raw) // 2]
        elif s == "empty body":
            raw = b""
        elif s == "HTML instead of JSON":
            return Response("<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>", 200,
                            content_type="text/html")
        elif s == "invalid UTF-8":
            raw = raw.replace(b'"C0AbX"', b'"C0\xff\xfeAbX"')
        elif s == "JSON nested 100,000 deep":
            raw = b"[" * 100_000 + b"]" * 100_000
        elif s == "redirect to another host (list)":
            return Response("", 302, headers={"Location": f"{self.evil.url}/restapi/v1.0/account/~/call-log"})
        return Response(raw, 200, content_type="application/json")

    def _messages(self, req: Request) -> Response:
        s = self.scenario
        items = [json.loads(json.dumps(m)) for m in self._window(req, self.messages, "creationTime")]
        if items and s == "message id as float":
            items[0]["id"] = float(items[0]["id"])
        if items and s == "attachments not a list":
            items[0]["attachments"] = {"id": 1}
        if s == "path-traversal and control-character names":
            for m in items:
                for a in m["attachments"]:
                    a["fileName"] = "../../../../../../tmp/evil\x1b[31m\r\n.sh" if a["id"] == BIG + 2 \
                        else "..\\..\\windows\\win.ini"
        return self._json(self._page(req, items, req.path))

    @property
    def huge_calls(self) -> list[dict]:
        if not hasattr(self, "_huge"):
            base = datetime.now(timezone.utc) - timedelta(days=1)
            self._huge = [{"id": f"H{i:05d}", "startTime": _iso(base - timedelta(seconds=i)), "type": "Voice",
                           "direction": "Outbound", "result": "Accepted", "duration": 1} for i in range(5000)]
        return self._huge

    # --- binaries ------------------------------------------------------------------------------

    def _binary(self, req: Request, data: bytes, content_type: str, kind: str):  # noqa: ANN202
        s = self.scenario
        start = 0
        rng = req.headers.get("Range", "")
        if rng.startswith("bytes="):
            start = int(rng[6:].split("-")[0])
        if s == "redirect to another host (download)" and kind == "recording":
            return Response("", 302, headers={"Location": f"{self.evil.url}/steal{req.path}"})
        if s == "Content-Length longer than the body" and kind == "attachment":
            return _raw(200 if not start else 206, content_type, data[start:], length=len(data) - start + 500,
                        start=start, total=len(data))
        if s == "Content-Length shorter than the body" and kind == "attachment":
            return _raw(200, content_type, data, length=len(data) // 2)
        if s == "endless body" and kind == "recording":
            return _endless(content_type)
        body = data[start:]
        headers = {"Content-Type": content_type, "Content-Length": str(len(body)), "Accept-Ranges": "bytes"}
        status = 200
        if start:
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        return Response(body, status, headers=headers)


def _raw(status: int, content_type: str, body: bytes, *, length: int, start: int = 0, total: int = 0):  # noqa: ANN202
    """A WSGI answer whose Content-Length is ``length`` whatever the body is."""
    def app(environ, start_response):  # noqa: ANN001, ANN202
        headers = [("Content-Type", content_type), ("Content-Length", str(length))]
        if status == 206:
            headers.append(("Content-Range", f"bytes {start}-{total - 1}/{total}"))
        write = start_response(f"{status} {'OK' if status == 200 else 'Partial Content'}", headers)
        try:
            write(body)  # more or fewer bytes than announced, written raw to the socket
        except OSError:
            pass
        return []
    return app


def _endless(content_type: str):  # noqa: ANN202
    def app(environ, start_response):  # noqa: ANN001, ANN202
        start_response("200 OK", [("Content-Type", content_type)])

        def body():  # noqa: ANN202
            chunk = b"\0" * 65536
            for _ in range(100_000):  # ~6.5 GB at most: a bound so a test thread cannot live for ever
                yield chunk
        return body()
    return app


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(url.split("?", 1)[1]) if "?" in url else {}
