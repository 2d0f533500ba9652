"""The SQL sink under each name a pipeline may give it: one class per name, declaring its options.

``sql`` takes any SQLAlchemy URL; the others are the same sink with a URL check and a default driver
(see ``config``). Registered by dotted path in ``rcetl.plugins.sinks.builtin``; importing this
module imports SQLAlchemy, which happens only when a pipeline uses an SQL sink.
"""

from __future__ import annotations

from .config import MssqlSinkConfig, MysqlSinkConfig, PostgresSinkConfig, SqliteSinkConfig, SqlSinkConfig
from .sink import SqlSink


class AnySqlSink(SqlSink):
    config_model = SqlSinkConfig
    description = "Records into any SQLAlchemy database (typed columns + full JSON, upserts)"


class SqliteSink(SqlSink):
    config_model = SqliteSinkConfig
    description = "Records into a SQLite file (the sql sink with SQLite defaults)"


class MysqlSink(SqlSink):
    config_model = MysqlSinkConfig
    description = "Records into MySQL or MariaDB (the sql sink with PyMySQL, utf8mb4)"


class PostgresSink(SqlSink):
    config_model = PostgresSinkConfig
    description = "Records into PostgreSQL (the sql sink with psycopg 3, JSONB)"


class MssqlSink(SqlSink):
    config_model = MssqlSinkConfig
    description = "Records into SQL Server (the sql sink with pymssql, MERGE upserts)"
