"""Downloads (streamed GETs) go to the session's transport adapter directly, not through
``Session.request``: the same headers, proxies, redirect refusal and errors, less Python per file."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from typing import Any

import pytest
import requests

import rcetl
from rcetl.plugins.sources.ringcentral import http
from rcetl.plugins.sources.ringcentral.download import download
from tests.servers import QuietHandler, serve
from tests.sources.fakes import FixedTokens, FreeBudget

PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
BODY = b"ID3" + bytes(range(256)) * 40


class _Out:
    def __init__(self) -> None:
        self.data = bytearray()
        self.content_type: str | None = None
        self.content_length: int | None = None

    def write(self, chunk: bytes) -> int:
        self.data += chunk
        return len(chunk)


def _server(seen: list[tuple[str, dict[str, str]]]) -> ThreadingHTTPServer:
    class Handler(QuietHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
            if self.path.endswith("/moved"):
                self.send_response(302)
                self.send_header("Location", "http://elsewhere.example/x")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if self.path.endswith("/missing"):
                body = b'{"errorCode": "CMN-102", "message": "Resource not found"}'
                self.send_response(404)
                self.send_header("Content-Type", "application/json")
            else:
                body = BODY
                self.send_response(200)
                self.send_header("Content-Type", "audio/mpeg")
                self.send_header("Set-Cookie", "sticky=1; Path=/")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return serve(Handler)


@pytest.fixture
def origin(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, list[tuple[str, dict[str, str]]]]]:
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.upper(), raising=False)
    seen: list[tuple[str, dict[str, str]]] = []
    server = _server(seen)
    yield f"http://127.0.0.1:{server.server_port}", seen
    server.shutdown()


def _client() -> http.ApiClient:
    return http.ApiClient(budget=FreeBudget(), tokens_factory=lambda post: FixedTokens(),  # type: ignore[arg-type]
                          basic_auth=("id", "secret"), time_scale=1.0, timeout=10, verify_tls=True, pool_size=2,
                          max_retries=0, backoff_cap=1.0, trusted_hosts=frozenset({"127.0.0.1"}))


@pytest.fixture
def no_session_request(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a download went through Session.request")

    monkeypatch.setattr(requests.Session, "request", refuse)


def test_a_download_is_sent_by_the_adapter_with_the_same_headers(origin, no_session_request):
    url, seen = origin
    client = _client()
    for _ in range(2):  # the second on a kept-alive connection, still without the cookie
        out = _Out()
        assert download(client, f"{url}/media/rec/1/content", out, what="recording 1") == len(BODY)
        assert bytes(out.data) == BODY and out.content_type == "audio/mpeg" and out.content_length == len(BODY)
    assert [p for p, _ in seen] == ["/media/rec/1/content"] * 2
    headers = seen[-1][1]
    assert headers["authorization"] == "Bearer tok-1"
    assert headers["user-agent"] == f"rcetl/{rcetl.__version__}"
    assert headers["accept-encoding"] == "identity"  # bytes counted as sent, never decoded
    assert "cookie" not in headers
    assert client.counts == {"200": 2}
    client.close()


def test_a_download_goes_through_the_environment_proxy(origin, monkeypatch, no_session_request):
    url, seen = origin
    monkeypatch.setenv("HTTP_PROXY", url)  # the test server answers as the proxy: absolute-form target
    client = _client()
    out = _Out()
    download(client, "http://127.0.0.1:1/media/rec/2/content", out, what="recording 2")
    assert [p for p, _ in seen] == ["http://127.0.0.1:1/media/rec/2/content"] and bytes(out.data) == BODY
    client.close()


def test_a_download_redirect_is_refused_and_a_404_is_gone(origin, no_session_request):
    url, seen = origin
    client = _client()
    with pytest.raises(rcetl.PermanentError, match="redirect"):
        download(client, f"{url}/media/moved", _Out(), what="recording 3")
    with pytest.raises(rcetl.ItemGone):
        download(client, f"{url}/media/missing", _Out(), what="recording 4")
    assert [p for p, _ in seen] == ["/media/moved", "/media/missing"]  # nothing followed
    client.close()


def test_a_download_to_an_untrusted_host_sends_nothing(origin, no_session_request):
    url, seen = origin
    client = _client()
    with pytest.raises(rcetl.PermanentError, match="refusing to send"):
        download(client, "http://attacker.example/x", _Out(), what="recording 5")
    assert seen == []
    client.close()
