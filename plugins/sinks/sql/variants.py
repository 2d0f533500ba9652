"""The SQL sink under each name a pipeline may give it: one class per name, declaring its options.

``sql`` takes any SQLAlchemy URL; the others are the same sink with a URL check and a default driver
(see ``config``). Registered by dotted path in ``rcetl.plugins.sinks.builtin``; importing this
module imports SQLAlchemy, which happens only when a pipeline uses an SQL sink.
"""

from __future__ import annotations

from .config import MssqlSinkConfig, MysqlSinkConfig, PostgresSinkConfig, SqliteSinkConfig, SqlSinkConfig
from .sink import SqlSink

#: Class name: (options model, description). The classes differ in nothing else.
_VARIANTS: dict[str, tuple[type[SqlSinkConfig], str]] = {
    "AnySqlSink": (SqlSinkConfig, "Records into any SQLAlchemy database (typed columns + full JSON, upserts)"),
    "SqliteSink": (SqliteSinkConfig, "Records into a SQLite file (the sql sink with SQLite defaults)"),
    "MysqlSink": (MysqlSinkConfig, "Records into MySQL or MariaDB (the sql sink with PyMySQL, utf8mb4)"),
    "PostgresSink": (PostgresSinkConfig, "Records into PostgreSQL (the sql sink with psycopg 3, JSONB)"),
    "MssqlSink": (MssqlSinkConfig, "Records into SQL Server (the sql sink with pymssql, MERGE upserts)"),
}


def _variant(name: str) -> type[SqlSink]:
    """The SQL sink under one more name: a subclass declaring its options model and description,
    made here so that the table above is the only place they are stated."""
    config, description = _VARIANTS[name]
    return type(name, (SqlSink,), {"config_model": config, "description": description,
                                   "__module__": __name__, "__qualname__": name})


AnySqlSink = _variant("AnySqlSink")
SqliteSink = _variant("SqliteSink")
MysqlSink = _variant("MysqlSink")
PostgresSink = _variant("PostgresSink")
MssqlSink = _variant("MssqlSink")
