"""Where integration tests find real servers, shared by every test module.

Order, as the project's test-services notes describe: ``RCETL_TEST_<SERVICE>_URL`` from the
environment; else a container through testcontainers where a Docker engine answers; else the
service's usual local address if something listens there; else skip with the reason. On CI
(``RCETL_REQUIRE_SERVICES=1``) a missing service fails the test instead of skipping it.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

import pytest

LOCAL_DEFAULTS = {
    "POSTGRES": "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "MYSQL": "mysql+pymysql://root@127.0.0.1:3306/test",
    "REDIS": "redis://127.0.0.1:6379/0",
    "AMQP": "amqp://guest:guest@127.0.0.1:5672//",
}


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def unavailable(reason: str) -> None:
    """Skip (laptop without the service) or fail (CI, where every service must run)."""
    if os.environ.get("RCETL_REQUIRE_SERVICES") == "1":
        pytest.fail(f"required service unavailable on CI: {reason}")
    pytest.skip(reason)


def service_url(service: str) -> str:
    """The URL of a running ``service`` (POSTGRES, MYSQL, REDIS, AMQP) or skip/fail."""
    env = os.environ.get(f"RCETL_TEST_{service}_URL")
    url = env or LOCAL_DEFAULTS[service]
    parsed = urlparse(url.replace("+psycopg", "").replace("+pymysql", ""))
    if port_open(parsed.hostname or "127.0.0.1", parsed.port or 0):
        return url
    unavailable(f"{service} not reachable at {parsed.hostname}:{parsed.port} "
                f"(set RCETL_TEST_{service}_URL or run `make services`)")
    raise AssertionError("unreachable")
