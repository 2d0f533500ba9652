"""Registers the SQL sink under ``sql`` and its per-database aliases (cheap: no SQLAlchemy import)."""

from __future__ import annotations

import rcetl

from .config import MssqlSinkConfig, MysqlSinkConfig, PostgresSinkConfig, SqliteSinkConfig, SqlSinkConfig


def _make_sink(name: str, config: rcetl.PluginConfig, ctx: rcetl.RunContext) -> rcetl.Sink:
    from .sink import SqlSink  # SQLAlchemy and the drivers load only when a pipeline uses the sink

    return SqlSink(name, config, ctx)


_VARIANTS: list[tuple[str, type[SqlSinkConfig], str]] = [
    ("sql", SqlSinkConfig, "Records into any SQLAlchemy database (typed columns + full JSON, upserts)"),
    ("sqlite", SqliteSinkConfig, "Records into a SQLite file (the sql sink with SQLite defaults)"),
    ("mysql", MysqlSinkConfig, "Records into MySQL or MariaDB (the sql sink with PyMySQL, utf8mb4)"),
    ("postgres", PostgresSinkConfig, "Records into PostgreSQL (the sql sink with psycopg 3, JSONB)"),
    ("mssql", MssqlSinkConfig, "Records into SQL Server (the sql sink with pymssql, MERGE upserts)"),
]


@rcetl.hookimpl
def rcetl_sinks() -> list[rcetl.SinkSpec]:
    return [
        rcetl.SinkSpec(name=name, config=config, factory=_make_sink, kinds=frozenset({"records"}),
                       description=description)
        for name, config, description in _VARIANTS
    ]
