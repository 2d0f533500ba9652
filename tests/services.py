"""Where integration tests find real servers, and what happens when one is missing.

Order (docs/testing.md), per service:

1. ``RCETL_TEST_<SERVICE>_URL`` from the environment (CI, the GitHub workflow's service containers,
   a developer's own server);
2. a container started through testcontainers' documented modules, where a Docker engine answers
   (probed once per process; ``RCETL_TEST_DOCKER=0`` turns containers off);
3. the service this project's machines run locally (PostgreSQL, MariaDB, Redis, RabbitMQ), or
   SecantusDB in-process for MongoDB;
4. otherwise :func:`unavailable`: a skip on a laptop, a failure under ``RCETL_REQUIRE_SERVICES=1``.

SQL Server is the one service no machine of this project can run (no TDS server installs without
Docker): without a URL or Docker its tests skip, naming that reason, even under
``RCETL_REQUIRE_SERVICES=1``; ``RCETL_REQUIRE_SERVICES=all`` (the GitHub workflow) fails them too.

A container or in-process server is started once per test process (one per xdist worker) and its
URL is put in ``os.environ`` so subprocesses the test starts (the CLI, Celery workers) see it.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import importlib
import os
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, NoReturn
from urllib.parse import urlparse

import pytest

# Services whose absence is a failure under RCETL_REQUIRE_SERVICES=1 ("all" adds the optional ones).
OPTIONAL_ON_CI = {"MSSQL"}


@dataclass(frozen=True)
class Service:
    """How to reach one kind of server: its usual local URL and how to run it in a container."""

    local: str | None
    container: Callable[[], tuple[Any, Callable[[Any], str]]]


def _mysql() -> tuple[Any, Callable[[Any], str]]:
    from testcontainers.community.mysql import MySqlContainer

    # MariaDB, as the project's machines run it; root (some tests create databases), database `test`.
    return (MySqlContainer("mariadb:11", dialect="pymysql", username="root", dbname="test"),
            lambda c: c.get_connection_url())


def _postgres() -> tuple[Any, Callable[[Any], str]]:
    from testcontainers.community.postgres import PostgresContainer

    # The image's POSTGRES_USER is a superuser (some tests create databases), database `test`.
    return (PostgresContainer("postgres:16", username="postgres", dbname="test", driver="psycopg"),
            lambda c: c.get_connection_url())


def _mssql() -> tuple[Any, Callable[[Any], str]]:
    from testcontainers.community.mssql import SqlServerContainer

    return (SqlServerContainer("mcr.microsoft.com/mssql/server:2022-latest", dialect="mssql+pymssql"),
            lambda c: c.get_connection_url())


def _mongodb() -> tuple[Any, Callable[[Any], str]]:
    from testcontainers.community.mongodb import MongoDbContainer

    return MongoDbContainer("mongo:7"), lambda c: c.get_connection_url()


def _redis() -> tuple[Any, Callable[[Any], str]]:
    from testcontainers.community.redis import RedisContainer

    return (RedisContainer("redis:7"),
            lambda c: f"redis://{c.get_container_host_ip()}:{c.get_exposed_port(c.port)}/0")


def _amqp() -> tuple[Any, Callable[[Any], str]]:
    from testcontainers.community.rabbitmq import RabbitMqContainer  # needs pika: testcontainers[rabbitmq]

    return (RabbitMqContainer("rabbitmq:3.13"),
            lambda c: f"amqp://{c.username}:{c.password}@{c.get_container_host_ip()}:{c.get_exposed_port(c.port)}//")


SERVICES: dict[str, Service] = {
    "POSTGRES": Service("postgresql+psycopg://postgres@127.0.0.1:5432/test", _postgres),
    "MYSQL": Service("mysql+pymysql://root@127.0.0.1:3306/test", _mysql),
    "REDIS": Service("redis://127.0.0.1:6379/0", _redis),
    "AMQP": Service("amqp://guest:guest@127.0.0.1:5672//", _amqp),
    "MONGODB": Service(None, _mongodb),  # locally: SecantusDB in-process (see _local_mongodb)
    "MSSQL": Service(None, _mssql),
}
LOCAL_DEFAULTS = {name: s.local for name, s in SERVICES.items() if s.local}

# Servers this process started: service -> URL (containers and SecantusDB stop at exit).
_started: dict[str, str] = {}


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def unavailable(reason: str, service: str | None = None) -> NoReturn:
    """Skip (a laptop without the service) or fail (CI, where every service must run).

    ``service`` in :data:`OPTIONAL_ON_CI` skips under ``RCETL_REQUIRE_SERVICES=1`` too (with the
    reason); ``RCETL_REQUIRE_SERVICES=all`` fails it as well."""
    required = os.environ.get("RCETL_REQUIRE_SERVICES", "")
    if required == "all" or (required == "1" and service not in OPTIONAL_ON_CI):
        pytest.fail(f"required service unavailable (RCETL_REQUIRE_SERVICES={required}): {reason}", pytrace=False)
    pytest.skip(reason)


def require_module(module: str, install: str = "pip install -e '.[test]'") -> ModuleType:
    """``module`` imported, or :func:`unavailable` naming how to install it (a test dependency
    missing on CI is a failure, like a missing service)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        unavailable(f"{module} is not installed ({exc}): {install}")


@functools.cache
def docker_available() -> bool:
    """Whether a Docker engine answers (asked once per process: a missing engine costs ~nothing,
    but a slow one would otherwise cost two seconds per test)."""
    if os.environ.get("RCETL_TEST_DOCKER") == "0":
        return False
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


def _start_container(service: str) -> str:
    container, url_of = SERVICES[service].container()
    container.start()
    atexit.register(container.stop)
    return url_of(container)


def _local_mongodb() -> str | None:
    """SecantusDB (MongoDB's wire protocol on WiredTiger; no real mongod installs here) in-process."""
    try:
        import secantus
    except ImportError:
        return None
    folder = tempfile.mkdtemp(prefix="rcetl-secantus-")
    server = secantus.SecantusDBServer(host="127.0.0.1", port=0, storage_path=folder)
    server.start()
    atexit.register(server.stop)
    return server.uri


def _why_missing(service: str) -> str:
    how = f"set RCETL_TEST_{service}_URL"
    if service == "MSSQL":
        return (f"SQL Server: no RCETL_TEST_MSSQL_URL and no Docker engine here, and no SQL Server "
                f"installs on this machine ({how}, or run where Docker answers; the GitHub workflow "
                f"runs these tests against its mssql service container)")
    if service == "MONGODB":
        return f"MongoDB: no RCETL_TEST_MONGODB_URL, no Docker, and secantusdb is not installed ({how})"
    parsed = urlparse(LOCAL_DEFAULTS[service])
    return (f"{service} not reachable at {parsed.hostname}:{parsed.port} and no Docker engine "
            f"({how} or run `make services`)")


def service_url(service: str) -> str:
    """The URL of a running ``service`` (POSTGRES, MYSQL, REDIS, AMQP, MONGODB, MSSQL), else
    :func:`unavailable` with the reason."""
    service = service.upper()
    if env := os.environ.get(f"RCETL_TEST_{service}_URL"):
        if service in _started or _reachable(env):
            return env
        unavailable(f"{service}: RCETL_TEST_{service}_URL={env} does not answer", service)
    url = None
    if docker_available():
        url = _start_container(service)
    elif SERVICES[service].local:
        local = SERVICES[service].local
        url = local if _reachable(local) else None
    elif service == "MONGODB":
        url = _local_mongodb()
    if url is None:
        unavailable(_why_missing(service), service)
    _started[service] = url
    os.environ[f"RCETL_TEST_{service}_URL"] = url
    return url


def _reachable(url: str) -> bool:
    try:
        parsed = urlparse(url)
        host, port = parsed.hostname, parsed.port
    except ValueError:  # several hosts (a MongoDB seed list): let the client say
        return True
    return host is None or port is None or port_open(host, port)
