"""A small HTTPS fake of the Dropbox API v2 routes a blob sink uses, for the real ``dropbox`` SDK.

No Dropbox emulator exists; this fake follows the HTTP contract (https://www.dropbox.com/developers/
documentation/http/documentation): content routes take their arguments as JSON in the
``Dropbox-API-Arg`` header, RPC routes as a JSON body, route errors are HTTP 409 with
``{"error_summary": ..., "error": {...}}``. It verifies every ``content_hash`` it is sent (computed
here independently of the sink's helper), treats paths case-insensitively as Dropbox does, and can
inject faults: ``fail_next`` (HTTP 503s) and ``corrupt_uploads`` (stores one byte altered and
reports the hash of what it stored, as a faulty store would).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

BLOCK = 4 * 1024 * 1024


def content_hash(data: bytes) -> str:
    blocks = b"".join(hashlib.sha256(data[i : i + BLOCK]).digest() for i in range(0, len(data), BLOCK))
    return hashlib.sha256(blocks).hexdigest()


class RouteError(Exception):
    def __init__(self, summary: str, error: dict[str, Any], status: int = 409) -> None:
        super().__init__(summary)
        self.summary, self.error, self.status = summary, error, status


def _not_found(path: str) -> RouteError:
    return RouteError("path/not_found/", {".tag": "path", "path": {".tag": "not_found"}})


def _tag(value: Any) -> str:
    return value.get(".tag") if isinstance(value, dict) else value


class FakeDropbox:
    def __init__(self) -> None:
        self.files: dict[str, tuple[str, bytes, str]] = {}  # lower path -> (display path, data, rev)
        self.sessions: dict[str, bytearray] = {}
        self.lock = threading.Lock()
        self.calls: dict[str, int] = {}
        self.fail_next = 0
        self.corrupt_uploads = False
        self.access_tokens = {"test-token"}
        self.refresh_tokens = {"test-refresh": ("app-key", "app-secret")}

    # --- routes -------------------------------------------------------------------------------

    def metadata(self, path: str) -> dict[str, Any]:
        display, data, rev = self.files[path.lower()]
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            ".tag": "file",
            "name": display.rsplit("/", 1)[-1],
            "id": "id:" + hashlib.sha1(display.lower().encode()).hexdigest()[:22],
            "client_modified": now,
            "server_modified": now,
            "rev": rev,
            "size": len(data),
            "path_lower": display.lower(),
            "path_display": display,
            "content_hash": content_hash(data),
            "is_downloadable": True,
        }

    def commit(self, commit: dict[str, Any], data: bytes) -> dict[str, Any]:
        path = commit["path"]
        if not path.startswith("/") or "//" in path:
            raise RouteError("path/malformed_path/", {".tag": "path", "reason": {".tag": "malformed_path"}})
        mode = _tag(commit.get("mode", "add"))
        existing = self.files.get(path.lower())
        if existing is not None and mode == "add":
            if existing[1] == data and not commit.get("strict_conflict"):
                return self.metadata(path)
            conflict = {".tag": "conflict", "conflict": {".tag": "file"}}
            raise RouteError(
                "path/conflict/file/", {".tag": "path", "reason": conflict, "upload_session_id": ""}
            )
        if self.corrupt_uploads and data:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        self.files[path.lower()] = (path, data, secrets.token_hex(8))
        return self.metadata(path)

    @staticmethod
    def check_hash(arg: dict[str, Any], data: bytes) -> None:
        expected = arg.get("content_hash")
        if expected is not None and expected != content_hash(data):
            raise RouteError("content_hash_mismatch/", {".tag": "content_hash_mismatch"}, status=409)

    def route(self, name: str, arg: dict[str, Any], body: bytes) -> tuple[Any, bytes | None]:
        """Returns (JSON result, downloaded bytes or None)."""
        if name == "files/upload":
            self.check_hash(arg, body)
            return self.commit(arg, body), None
        if name == "files/upload_session/start":
            self.check_hash(arg, body)
            sid = secrets.token_hex(12)
            self.sessions[sid] = bytearray(body)
            return {"session_id": sid}, None
        if name in ("files/upload_session/append_v2", "files/upload_session/finish"):
            cursor = arg["cursor"]
            data = self.sessions.get(cursor["session_id"])
            if data is None:
                raise RouteError(
                    "lookup_failed/not_found/",
                    {".tag": "lookup_failed", "lookup_failed": {".tag": "not_found"}},
                )
            if cursor["offset"] != len(data):
                error = {".tag": "incorrect_offset", "correct_offset": len(data)}
                raise RouteError(
                    "lookup_failed/incorrect_offset/", {".tag": "lookup_failed", "lookup_failed": error}
                )
            if name.endswith("append_v2"):
                self.check_hash(arg, body)
                data.extend(body)
                return None, None
            data.extend(body)
            self.check_hash(arg, bytes(data))  # finish's hash covers the whole file
            del self.sessions[cursor["session_id"]]
            return self.commit(arg["commit"], bytes(data)), None
        if name == "files/get_metadata":
            if arg["path"].lower() not in self.files:
                raise _not_found(arg["path"])
            return self.metadata(arg["path"]), None
        if name == "files/download":
            if arg["path"].lower() not in self.files:
                raise _not_found(arg["path"])
            return self.metadata(arg["path"]), self.files[arg["path"].lower()][1]
        if name == "files/delete_v2":
            if arg["path"].lower() not in self.files:
                raise _not_found(arg["path"])
            meta = self.metadata(arg["path"])
            del self.files[arg["path"].lower()]
            return {"metadata": meta}, None
        if name == "files/list_folder":
            prefix = arg["path"].lower().rstrip("/") + "/"
            entries = [self.metadata(p) for p in sorted(self.files) if p.startswith(prefix)]
            if not arg.get("recursive"):
                entries = [e for e in entries if "/" not in e["path_lower"][len(prefix) :]]
            return {"entries": entries, "cursor": "c0", "has_more": False}, None
        raise RouteError("unknown_route/", {".tag": "other"}, status=400)


def _handler(fake: FakeDropbox) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path == "/oauth2/token":
                return self._token(body)
            name = self.path.split("?", 1)[0].removeprefix("/2/")
            with fake.lock:
                fake.calls[name] = fake.calls.get(name, 0) + 1
                if fake.fail_next > 0:
                    fake.fail_next -= 1
                    return self._send(503, b"service unavailable", "text/plain")
            token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
            if token not in fake.access_tokens:
                error = {"error_summary": "invalid_access_token/", "error": {".tag": "invalid_access_token"}}
                return self._send(401, json.dumps(error).encode(), "application/json")
            header_arg = self.headers.get("Dropbox-API-Arg")
            arg = json.loads(header_arg) if header_arg else json.loads(body or b"null") or {}
            try:
                with fake.lock:
                    result, download = fake.route(name, arg, body if header_arg else b"")
            except RouteError as err:
                payload = {"error_summary": err.summary, "error": err.error}
                return self._send(err.status, json.dumps(payload).encode(), "application/json")
            if download is not None:
                return self._send(
                    200, download, "application/octet-stream", {"Dropbox-API-Result": json.dumps(result)}
                )
            self._send(200, json.dumps(result).encode(), "application/json")

        def _token(self, body: bytes) -> None:
            from urllib.parse import parse_qs

            form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            app = fake.refresh_tokens.get(form.get("refresh_token", ""))
            if form.get("grant_type") != "refresh_token" or app != (
                form.get("client_id"),
                form.get("client_secret"),
            ):
                return self._send(400, b'{"error": "invalid_grant"}', "application/json")
            token = "access-" + secrets.token_hex(8)
            fake.access_tokens.add(token)
            self._send(
                200,
                json.dumps({"access_token": token, "token_type": "bearer", "expires_in": 14400}).encode(),
                "application/json",
            )

    return Handler


@contextmanager
def serve(ca_dir: str) -> Iterator[tuple[FakeDropbox, str, str]]:
    """Run the fake on a free port; yields (fake, "127.0.0.1:port", CA bundle path)."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca_path = f"{ca_dir}/dropbox-fake-ca.pem"
    ca.cert_pem.write_to_path(ca_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    fake = FakeDropbox()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"127.0.0.1:{server.server_address[1]}", ca_path
    finally:
        server.shutdown()
        server.server_close()
