"""The API client honours the environment's proxies (HTTP(S)_PROXY, NO_PROXY) as requests does, but
reads the environment once per client and origin instead of on every request."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from typing import Any

import pytest
import requests

from rcetl.plugins.sources.ringcentral import http
from tests.servers import QuietHandler, serve
from tests.sources.fakes import FreeBudget

PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


def _server(name: str, seen: list[str]) -> ThreadingHTTPServer:
    class Handler(QuietHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append(self.path)
            body = b'{"answered_by": "' + name.encode() + b'"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return serve(Handler)


@pytest.fixture
def servers(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, list[str], str, list[str]]]:
    """(origin URL, paths it saw, proxy URL, request targets it saw); no proxy variable set."""
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.upper(), raising=False)
    origin_seen: list[str] = []
    proxy_seen: list[str] = []
    origin, proxy = _server("origin", origin_seen), _server("proxy", proxy_seen)
    yield (f"http://127.0.0.1:{origin.server_port}", origin_seen, f"http://127.0.0.1:{proxy.server_port}",
           proxy_seen)
    origin.shutdown()
    proxy.shutdown()


def _client() -> http.ApiClient:
    return http.ApiClient(budget=FreeBudget(), tokens_factory=lambda post: None, basic_auth=("id", "secret"),  # type: ignore[arg-type]
                          time_scale=1.0, timeout=10, verify_tls=True, pool_size=2, max_retries=0,
                          backoff_cap=1.0, trusted_hosts=frozenset({"127.0.0.1"}))


def _answered_by(client: http.ApiClient, url: str) -> str:
    response = client.request("POST", url, data={"grant_type": "x"}, authenticate=False)
    return response.json()["answered_by"]


def test_requests_go_through_the_environment_proxy(servers, monkeypatch):
    origin, origin_seen, proxy, proxy_seen = servers
    monkeypatch.setenv("HTTP_PROXY", proxy)
    client = _client()
    assert _answered_by(client, f"{origin}/restapi/oauth/token") == "proxy"
    assert proxy_seen == [f"{origin}/restapi/oauth/token"] and origin_seen == []  # absolute form: proxied
    client.close()


def test_no_proxy_hosts_are_reached_directly(servers, monkeypatch):
    origin, origin_seen, proxy, proxy_seen = servers
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    client = _client()
    assert _answered_by(client, f"{origin}/restapi/oauth/token") == "origin"
    assert origin_seen == ["/restapi/oauth/token"] and proxy_seen == []
    client.close()


def test_the_environment_is_read_once_per_origin_not_per_request(servers, monkeypatch):
    origin, _, proxy, proxy_seen = servers
    monkeypatch.setenv("HTTP_PROXY", proxy)
    calls: list[str] = []
    real = requests.utils.get_environ_proxies

    def counting(url: str, no_proxy: Any = None) -> dict[str, str]:
        calls.append(url)
        return real(url, no_proxy)

    monkeypatch.setattr(requests.utils, "get_environ_proxies", counting)
    monkeypatch.setattr(requests.sessions, "get_environ_proxies", counting)
    client = _client()
    for _ in range(3):
        assert _answered_by(client, f"{origin}/restapi/oauth/token") == "proxy"
    assert len(calls) == 1 and len(proxy_seen) == 3
    client.close()
