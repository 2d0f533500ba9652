"""The CouchDB-protocol server the couchdb sink's tests run against, and which one it was.

Order: ``RCETL_TEST_COUCHDB_URL``; a ``couchdb:3`` container where Docker answers; a server already
listening on 127.0.0.1:5984 (``.ci/services.sh`` starts ``pouchdb-server --in-memory`` there); the
project-local ``pouchdb-server`` (``.ci/node``, installed from npm by ``.ci/services.sh``) started
for this test process; else :func:`tests.services.unavailable` (a failure under
``RCETL_REQUIRE_SERVICES=1``). The report header names the server the tests ran against.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.services import docker_available, unavailable

ROOT = Path(__file__).resolve().parents[2]
POUCHDB = ROOT / ".ci" / "node" / "node_modules" / ".bin" / "pouchdb-server"
LOCAL = "http://127.0.0.1:5984"
_found: dict[str, str] = {}


def _welcome(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/", timeout=2) as resp:
            return json.loads(resp.read())
    except (OSError, ValueError):
        return None


def _describe(url: str, how: str) -> str:
    welcome = _welcome(url) or {}
    vendor = (welcome.get("vendor") or {}).get("name") or ("CouchDB" if "couchdb" in welcome else "?")
    return f"{vendor} {welcome.get('version', '?')} at {url.split('@')[-1]} ({how})"


def _container() -> str:
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
    from tests.servers import free_port

    port = free_port()
    folder = tempfile.mkdtemp(prefix="rcetl-pouchdb-")  # it writes its config and log to its cwd
    proc = subprocess.Popen([str(POUCHDB), "--in-memory", "--host", "127.0.0.1", "--port", str(port)],
                            cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    atexit.register(proc.terminate)
    url = f"http://127.0.0.1:{port}"
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        if _welcome(url):
            return url
        time.sleep(0.1)
    return None


def couchdb_server() -> tuple[str, str]:
    """(URL, description) of a running CouchDB-protocol server, found once per process."""
    if "url" not in _found:
        if env := os.environ.get("RCETL_TEST_COUCHDB_URL"):
            if not _welcome(env):
                unavailable(f"COUCHDB: RCETL_TEST_COUCHDB_URL={env.split('@')[-1]} does not answer")
            _found.update(url=env, how="RCETL_TEST_COUCHDB_URL")
        elif docker_available():
            _found.update(url=_container(), how="testcontainers couchdb:3")
        elif _welcome(LOCAL):
            _found.update(url=LOCAL, how="local server on 5984 (make services)")
        elif url := _own_pouchdb():
            _found.update(url=url, how="pouchdb-server --in-memory started by the tests")
        else:
            unavailable("COUCHDB: no RCETL_TEST_COUCHDB_URL, no Docker, nothing on 127.0.0.1:5984 and no "
                        f"{POUCHDB.relative_to(ROOT)} (run `make services`, which installs pouchdb-server from npm)")
        _found["description"] = _describe(_found["url"], _found["how"])
        os.environ["RCETL_TEST_COUCHDB_URL"] = _found["url"]  # subprocesses (the CLI) use the same server
    return _found["url"], _found["description"]


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


def unique_db(prefix: str = "rcetl-test") -> str:
    return f"{prefix}-{os.getpid()}-{os.urandom(4).hex()}"
