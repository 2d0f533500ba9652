"""Fixtures for the database sink tests: real servers (tests/servers.py, tests/services.py), one table prefix or
database per test so the tests run side by side under pytest-xdist."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import rcetl
from tests.servers import drop_tables

# SQL Server runs where RCETL_TEST_MSSQL_URL or Docker gives one (never on this project's machines:
# its tests skip here with that reason, the one skip allowed under RCETL_REQUIRE_SERVICES=1).
SQL_BACKENDS = ["sqlite", "mysql", "postgres", "mssql"]


@pytest.fixture
def run_ctx(tmp_path: Path) -> rcetl.RunContext:
    # Sinks use only base_dir/spool_dir and the logger; budgets and coordination belong to sources.
    return rcetl.RunContext.standalone(tmp_path, "test")


@pytest.fixture
def unique_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}_"


# mysql_url, postgres_url, mssql_url, mongodb_url: session fixtures of tests/servers.py.


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
    made: list[rcetl.RecordSink] = []
    plugin_name, url = backend_url

    def make(open_: bool = True, **options) -> rcetl.RecordSink:
        sink = build_sink(plugin_name, {"url": url, "table_prefix": unique_prefix, **options}, run_ctx)
        made.append(sink)
        if open_:
            sink.open()
        return sink

    yield make
    if made:
        drop_tables(made[0])
    for sink in made:
        sink.close()


def build_sink(plugin_name: str, options: dict, ctx: rcetl.RunContext, name: str = "archive"):
    """A built-in sink as a pipeline builds it: its registered class, its validated options."""
    from rcetl.plugins.sinks.builtin import rcetl_sinks

    return {entry.name: entry for entry in rcetl_sinks()}[plugin_name].build(name, options, ctx)
