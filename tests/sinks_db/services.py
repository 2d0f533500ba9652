"""Find a real database server for the integration tests, in this order:

1. ``RCETL_TEST_<SERVICE>_URL`` from the environment (CI service containers, a developer's server);
2. a container started with testcontainers, where a Docker engine answers;
3. the server this project's machines run (MariaDB, PostgreSQL), or SecantusDB in-process for MongoDB;
4. otherwise the test is skipped, with the reason.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable, Iterator

LOCAL_DEFAULTS = {
    "mysql": "mysql+pymysql://root@127.0.0.1:3306/test",
    "postgres": "postgresql+psycopg://postgres@127.0.0.1:5432/test",
}


def docker_available() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


def port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def _container(service: str) -> tuple[Callable[[], object], Callable[[object], str]]:
    if service == "mysql":
        from testcontainers.mysql import MySqlContainer

        return (lambda: MySqlContainer("mariadb:11", dialect="pymysql"), lambda c: c.get_connection_url())
    if service == "postgres":
        from testcontainers.postgres import PostgresContainer

        return (lambda: PostgresContainer("postgres:16", driver="psycopg"), lambda c: c.get_connection_url())
    if service == "mssql":
        from testcontainers.mssql import SqlServerContainer

        return (lambda: SqlServerContainer(dialect="mssql+pymssql"), lambda c: c.get_connection_url())
    from testcontainers.mongodb import MongoDbContainer

    return (lambda: MongoDbContainer("mongo:7"), lambda c: c.get_connection_url())


@contextlib.contextmanager
def service_url(service: str, tmp_dir: str) -> Iterator[tuple[str | None, str]]:
    """Yield ``(url, how)``; url is None when no server can be had here, ``how`` says why."""
    env = os.environ.get(f"RCETL_TEST_{service.upper()}_URL")
    if env:
        yield env, "environment"
        return
    if docker_available():
        make, url_of = _container(service)
        with make() as container:
            yield url_of(container), "testcontainers"
        return
    if service in LOCAL_DEFAULTS:
        port = 3306 if service == "mysql" else 5432
        if port_open("127.0.0.1", port):
            yield LOCAL_DEFAULTS[service], "local server"
        else:
            yield None, f"no RCETL_TEST_{service.upper()}_URL, no Docker, nothing on 127.0.0.1:{port}"
        return
    if service == "mongodb":
        try:
            import secantus
        except ImportError:
            yield None, "no RCETL_TEST_MONGODB_URL, no Docker, and secantusdb is not installed"
            return
        server = secantus.SecantusDBServer(host="127.0.0.1", port=0, storage_path=tmp_dir)
        server.start()
        try:
            yield server.uri, "SecantusDB in-process"
        finally:
            server.stop()
        return
    yield None, f"no RCETL_TEST_{service.upper()}_URL and no Docker engine (SQL Server cannot run here)"
