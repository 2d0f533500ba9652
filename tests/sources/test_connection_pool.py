"""The RingCentral client keeps a connection for every download thread the engine may run.

The engine sizes one credential's download threads from its budget (up to ``AUTO_MAX``: 50 under
the standard plan, whose Light limit is 50). With 16 kept-alive connections, each window's burst
of 40 Medium downloads closed 24 connections after use ("Connection pool is full, discarding
connection", a warning per download in the run's log) and opened them again a window later: a
TCP handshake and a new server-side connection on the requests that pace the run.
"""

from __future__ import annotations

import logging
import threading

from rcetl.executors.pools import AUTO_MAX
from rcetl.plugins.sources.ringcentral import http
from rcetl.plugins.sources.ringcentral.config import RingCentralConfig
from tests.servers import QuietHandler, serve
from tests.sources.fakes import FixedTokens, FreeBudget

BODY = b"ID3" + bytes(range(256)) * 4


def test_the_default_pool_holds_as_many_connections_as_the_engine_runs_download_threads():
    assert RingCentralConfig.model_fields["pool_size"].default >= AUTO_MAX


def test_a_window_of_concurrent_downloads_keeps_every_connection(caplog):
    concurrent = 40  # the standard plan's Medium window: 40 attachment downloads at once
    arrived = threading.Barrier(concurrent, timeout=10)
    connections: set[tuple[str, int]] = set()
    lock = threading.Lock()

    class Handler(QuietHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            with lock:
                connections.add(self.client_address)
            if self.path.startswith("/burst"):
                arrived.wait()  # every download of the burst in flight at once
            self.send_response(200)
            self.send_header("Content-Type", "audio/mpeg")
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)

    server = serve(Handler)
    client = http.ApiClient(budget=FreeBudget(), tokens_factory=lambda post: FixedTokens(),
                            basic_auth=("id", "secret"), time_scale=1.0, timeout=10, verify_tls=True,
                            pool_size=RingCentralConfig.model_fields["pool_size"].default, max_retries=0, backoff_cap=1.0,
                            trusted_hosts=frozenset({"127.0.0.1"}))
    origin = f"http://127.0.0.1:{server.server_port}"

    def window(path: str) -> None:
        def one(i: int) -> None:
            with client.request("GET", f"{origin}/{path}/{i}", stream=True) as response:
                assert response.content == BODY

        threads = [threading.Thread(target=one, args=(i,)) for i in range(concurrent)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(15)

    try:
        with caplog.at_level(logging.WARNING, logger="urllib3.connectionpool"):
            window("burst")  # the first window opens a connection per download
            opened = len(connections)
            window("next")  # the next window finds them all kept
    finally:
        client.close()
        server.shutdown()
    assert opened == concurrent
    assert len(connections) == concurrent, "connections were closed after the first window and opened again"
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]
