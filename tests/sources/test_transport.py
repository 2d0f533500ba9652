"""The connection's transport over HTTPS: the CA bundle the environment names is used to verify the
server (a bundle without its CA fails the handshake), and it is looked up once, not on every
request (requests asked the file system about it three times per download)."""

from __future__ import annotations

import os
import ssl
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

import rcetl
from rcetl.plugins.sources.ringcentral import http
from rcetl.plugins.sources.ringcentral.download import download
from tests.servers import QuietHandler
from tests.services import require_module
from tests.sources.fakes import FixedTokens, FreeBudget

BODY = b"ID3" + bytes(range(256)) * 8


class _Out:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, chunk: bytes) -> int:
        self.data += chunk
        return len(chunk)


@pytest.fixture(scope="module")
def tls_origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Path]]:
    """An HTTPS server with a certificate of its own test CA: its URL, that CA's bundle, and the
    bundle of another CA."""
    trustme = require_module("trustme")
    ca, other = trustme.CA(), trustme.CA()
    folder = tmp_path_factory.mktemp("tls")
    bundle, wrong = folder / "ca.pem", folder / "other.pem"
    ca.cert_pem.write_to_path(str(bundle))
    other.cert_pem.write_to_path(str(wrong))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)

    class Handler(QuietHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self.send_response(200)
            self.send_header("Content-Type", "audio/mpeg")
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_port}", bundle, wrong
    server.shutdown()


def _client(bundle: Path, monkeypatch: pytest.MonkeyPatch) -> http.ApiClient:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    return http.ApiClient(budget=FreeBudget(), tokens_factory=lambda post: FixedTokens(),  # type: ignore[arg-type]
                          basic_auth=("id", "secret"), time_scale=1.0, timeout=10, verify_tls=True, pool_size=2,
                          max_retries=0, backoff_cap=1.0, trusted_hosts=frozenset({"127.0.0.1"}))


def _lookups_of(path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every os.path.exists / isdir of ``path`` in this process."""
    seen: list[str] = []
    for name in ("exists", "isdir"):
        real = getattr(os.path, name)

        def spy(p, real=real, name=name):  # noqa: ANN001, ANN202
            if os.fspath(p) == str(path):
                seen.append(name)
            return real(p)

        monkeypatch.setattr(os.path, name, spy)
    return seen


def test_downloads_verify_with_the_bundle_looked_up_once(tls_origin, monkeypatch) -> None:
    url, bundle, _ = tls_origin
    client = _client(bundle, monkeypatch)
    looked = _lookups_of(bundle, monkeypatch)
    for i in range(5):
        out = _Out()
        assert download(client, f"{url}/media/rec/{i}/content", out, what=f"recording {i}") == len(BODY)
        assert bytes(out.data) == BODY
    assert len(looked) <= 2, looked  # exists and isdir, once (requests: three per request)
    client.close()


def test_a_bundle_without_the_servers_ca_fails_the_handshake(tls_origin, monkeypatch) -> None:
    url, _, wrong = tls_origin
    client = _client(wrong, monkeypatch)
    with pytest.raises(rcetl.RcetlError, match="SSLError") as failed:
        download(client, f"{url}/media/rec/x/content", _Out(), what="recording x")
    cause = failed.value.__context__  # the handshake error it was raised while handling
    assert isinstance(cause, requests.exceptions.SSLError) and "CERTIFICATE_VERIFY_FAILED" in str(cause)
    client.close()
