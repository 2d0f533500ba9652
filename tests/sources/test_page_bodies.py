"""The client reads a JSON page's body in one read (``ApiClient.request``), not in requests' 10 KB
chunks: a 1.6 MB call-log page was ~160 reads, each taking the GIL back from the thread that
builds rows. What the chunked read gave must stay: a body cut short is a dropped connection (the
request is sent again, a new budget slot), gzip is decoded, chunked transfer is read whole, and
the connection goes back to the pool for the next page."""

from __future__ import annotations

import gzip
import json

import pytest
import requests

import rcetl
from rcetl.plugins.sources.ringcentral import http
from tests.servers import QuietHandler, serve
from tests.sources.fakes import FixedTokens, FreeBudget

PAGE = json.dumps({"records": [{"id": f"c{i}", "n": "x" * 500} for i in range(3000)]}).encode()  # ~1.6 MB


class CountingBudget(FreeBudget):
    def __init__(self) -> None:
        self.acquired = 0

    def acquire(self, group: str, priority: int = 0) -> object:
        self.acquired += 1
        return object()


def _client(budget: FreeBudget | None = None, max_retries: int = 2) -> http.ApiClient:
    return http.ApiClient(budget=budget or FreeBudget(), tokens_factory=lambda post: FixedTokens(),
                          basic_auth=("id", "secret"), time_scale=1000.0, timeout=10, verify_tls=True, pool_size=4,
                          max_retries=max_retries, backoff_cap=1.0, trusted_hosts=frozenset({"127.0.0.1"}))


def _server(behaviour: list[str], clients: set[tuple[str, int]] | None = None):
    """Serves PAGE; each GET takes the next of ``behaviour`` (then "plain"): "cut" sends half of it
    after an honest Content-Length and closes, "gzip" compresses it, "chunked" sends it in chunks."""

    class Handler(QuietHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if clients is not None:
                clients.add(self.client_address)
            kind = behaviour.pop(0) if behaviour else "plain"
            body = gzip.compress(PAGE) if kind == "gzip" else PAGE
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if kind == "gzip":
                self.send_header("Content-Encoding", "gzip")
            if kind == "chunked":
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for i in range(0, len(body), 70_000):
                    part = body[i:i + 70_000]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.write(b"0\r\n\r\n")
                return
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if kind == "cut":
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    return serve(Handler)


def _fetch(behaviour: list[str], client: http.ApiClient) -> object:
    """One call-log page through ``client`` from a server behaving as ``behaviour`` says."""
    server = _server(behaviour)
    try:
        return client.get_json(f"http://127.0.0.1:{server.server_port}/restapi/v1.0/account/~/call-log")
    finally:
        client.close()
        server.shutdown()


@pytest.mark.parametrize("kind", ["plain", "gzip", "chunked"])
def test_a_page_is_read_whole(kind: str) -> None:
    assert _fetch([kind], _client()) == json.loads(PAGE)


def test_a_body_cut_short_is_requested_again_with_a_new_slot() -> None:
    budget = CountingBudget()
    client = _client(budget)
    assert _fetch(["cut"], client) == json.loads(PAGE)
    assert client.counts.get("connection-error") == 1 and budget.acquired == 2


def test_a_body_cut_short_every_time_fails_as_a_dropped_connection() -> None:
    with pytest.raises(rcetl.TransientError, match="ChunkedEncodingError"):
        _fetch(["cut"] * 5, _client(max_retries=1))


def test_pages_read_one_after_another_share_one_connection() -> None:
    clients: set[tuple[str, int]] = set()
    server = _server([], clients)
    client = _client()
    try:
        for _ in range(3):
            client.get_json(f"http://127.0.0.1:{server.server_port}/restapi/v1.0/account/~/call-log")
        response = client.request("GET", f"http://127.0.0.1:{server.server_port}/restapi/v1.0/account/~/other")
    finally:
        client.close()
        server.shutdown()
    assert len(clients) == 1
    assert isinstance(response, requests.Response) and response.content == PAGE and response.json() == json.loads(PAGE)
