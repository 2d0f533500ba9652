"""rcetl's built-in sinks, registered the way any sink package registers its own.

Each sink is one class (its options, description and capabilities are declared on it) named by
dotted path: its module, and the SDK it uses, is imported only when a pipeline names the sink. A
sink whose optional extra is missing is reported by ``rcetl validate`` with the ``pip install`` line.
"""

from __future__ import annotations

import rcetl

_SQL = "rcetl.plugins.sinks.sql.variants"
_SQL_CONFIG = "rcetl.plugins.sinks.sql.config"
_RECORDS = frozenset({"records"})


def _sql(name: str, kind: str, extra: str | None = None, requires: tuple[str, ...] = ()) -> rcetl.SinkEntry:
    """An SQL sink: its module imports SQLAlchemy, so its options model (``sql.config``, which does
    not) and its kind are declared here and ``rcetl validate`` never imports SQLAlchemy."""
    return rcetl.SinkEntry(name, f"{_SQL}:{kind}Sink", extra=extra, requires=requires,
                           config=f"{_SQL_CONFIG}:{kind}SinkConfig", kinds=_RECORDS)


@rcetl.hookimpl
def rcetl_sinks() -> list[rcetl.SinkEntry]:
    return [
        rcetl.SinkEntry("filesystem", "rcetl.plugins.sinks.filesystem:FilesystemSink"),
        rcetl.SinkEntry("sql", f"{_SQL}:AnySqlSink", config=f"{_SQL_CONFIG}:SqlSinkConfig", kinds=_RECORDS),
        _sql("sqlite", "Sqlite"),
        _sql("mysql", "Mysql", extra="rcetl[mysql]", requires=("pymysql",)),
        _sql("postgres", "Postgres", extra="rcetl[postgres]", requires=("psycopg",)),
        _sql("mssql", "Mssql", extra="rcetl[mssql]", requires=("pymssql",)),
        rcetl.SinkEntry("mongodb", "rcetl.plugins.sinks.mongodb.sink:MongoRecordSink", extra="rcetl[mongodb]",
                        requires=("pymongo",)),
        rcetl.SinkEntry("s3", "rcetl.plugins.sinks.s3:S3Sink", extra="rcetl[s3]", requires=("boto3",)),
        rcetl.SinkEntry("gcs", "rcetl.plugins.sinks.gcs:GCSSink", extra="rcetl[gcs]",
                        requires=("google.cloud.storage", "google_crc32c")),
        rcetl.SinkEntry("dropbox", "rcetl.plugins.sinks.dropbox:DropboxSink", extra="rcetl[dropbox]",
                        requires=("dropbox",)),
    ]
