"""Fixtures for the database sink tests: real servers (see services.py), one table prefix or
database per test so the tests run side by side under pytest-xdist."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import rcetl

from .services import service_url

# SQL Server runs where RCETL_TEST_MSSQL_URL or Docker gives one (never on this project's machines).
SQL_BACKENDS = ["sqlite", "mysql", "postgres", "mssql"]


@pytest.fixture
def run_ctx(tmp_path: Path) -> rcetl.RunContext:
    # Sinks use only base_dir/spool_dir and the logger; budgets and coordination belong to sources.
    return rcetl.RunContext(pipeline="test", budgets=None, coordinator=None, spool_dir=tmp_path,  # type: ignore[arg-type]
                            base_dir=tmp_path)


@pytest.fixture
def unique_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}_"


def _server_fixture(service: str):
    @pytest.fixture(scope="session", name=f"{service}_url")
    def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
        with service_url(service, str(tmp_path_factory.mktemp(service))) as (url, how):
            if url is None:
                pytest.skip(how)
            yield url

    return server


# mysql_url, postgres_url, mssql_url, mongodb_url: one server per test session (and xdist worker).
mysql_url = _server_fixture("mysql")
postgres_url = _server_fixture("postgres")
mssql_url = _server_fixture("mssql")
mongodb_url = _server_fixture("mongodb")


@pytest.fixture(params=SQL_BACKENDS)
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(sink plugin name, database URL) for every SQL database reachable here."""
    if request.param == "sqlite":
        return "sqlite", str(tmp_path / "archive.sqlite")
    return request.param, request.getfixturevalue(f"{request.param}_url")


@pytest.fixture
def make_sql_sink(backend_url: tuple[str, str], unique_prefix: str, run_ctx: rcetl.RunContext
                  ) -> Iterator[Callable[..., rcetl.RecordSink]]:
    """Build (and open) SQL sinks on this test's tables; drops the tables afterwards."""
    from rcetl.plugins.sinks.sql import plugin

    specs = {s.name: s for s in plugin.rcetl_sinks()}
    made: list[rcetl.RecordSink] = []
    plugin_name, url = backend_url

    def make(open_: bool = True, **options) -> rcetl.RecordSink:
        spec = specs[plugin_name]
        config = spec.config.model_validate({"url": url, "table_prefix": unique_prefix, **options})
        sink = spec.factory("archive", config, run_ctx)
        made.append(sink)
        if open_:
            sink.open()
        return sink

    yield make
    if made:
        drop_tables(made[0])
    for sink in made:
        sink.close()


def drop_tables(sink) -> None:
    import sqlalchemy as sa

    with sink.engine.begin() as conn:
        names = [n for n in sa.inspect(conn).get_table_names() if n.startswith(sink.tables.prefix)]
        for name in names:
            sa.Table(name, sa.MetaData()).drop(conn)
