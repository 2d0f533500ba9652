"""Options of the SQL sink, and the aliases that give each database family its defaults.

``sql`` takes any SQLAlchemy URL. ``sqlite``, ``mysql``, ``postgres`` and ``mssql`` are the same sink
with a URL check and a default driver, so ``postgres://...`` just works and a MySQL URL given to the
``postgres`` plugin is caught when the pipeline is validated, before any connection is tried.
"""

from __future__ import annotations

import re
from typing import ClassVar, Literal
from urllib.parse import parse_qsl

from pydantic import Field, field_validator

import rcetl

from .. import register_url_password

# A bare scheme gets the driver rcetl installs with its extras (rcetl[mysql], rcetl[postgres]...).
DEFAULT_DRIVERS = {
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
    "mssql": "mssql+pymssql",
    "sqlserver": "mssql+pymssql",
}

# alias -> SQLAlchemy backend names (the part of the drivername before "+") it accepts
FAMILIES: dict[str, frozenset[str]] = {
    "sqlite": frozenset({"sqlite"}),
    "mysql": frozenset({"mysql", "mariadb"}),
    "postgres": frozenset({"postgresql"}),
    "mssql": frozenset({"mssql"}),
}

TABLE_PREFIX_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,30}$"


# The shape of an SQLAlchemy URL, as sqlalchemy.engine.url parses it: validation checks a URL with it
# and never imports SQLAlchemy (~150 ms); the sink parses the URL it is given with make_url when it opens.
_URL = re.compile(r"""
    (?P<name>[\w+]+)://
    (?:(?P<username>[^:/]*)(?::(?P<password>[^@]*))?@)?
    (?:(?:\[(?P<ipv6host>[^/?]+)\]|(?P<ipv4host>[^/:?]+))?(?::(?P<port>[^/?]*))?)?
    (?:/(?P<database>[^?]*))?
    (?:\?(?P<query>.*))?
    """, re.X)


def normalize_url(url: str, alias: str | None) -> str:
    """The URL with a default driver, checked against the alias; its password registered as secret.

    Only the scheme changes (``postgres://`` becomes ``postgresql+psycopg://``) and MySQL gets
    ``charset=utf8mb4``; the rest is the user's text, which SQLAlchemy parses when the sink opens."""
    if alias == "sqlite" and "://" not in url:
        url = f"sqlite:///{url}"  # a plain file path
    parsed = _URL.match(url)
    if parsed is None:
        raise ValueError("not a database URL; expected e.g. postgresql://user@host:5432/db")
    if parsed["port"] and not parsed["port"].isdigit():
        raise ValueError(f"the port of a database URL is a number, not {parsed['port']!r}")
    register_url_password(parsed["password"])
    scheme = parsed["name"]
    backend, _, driver = scheme.partition("+")
    if not driver and backend in DEFAULT_DRIVERS:
        backend, _, driver = DEFAULT_DRIVERS[backend].partition("+")
        url = f"{backend}+{driver}{url[len(scheme):]}"
    if alias and backend not in FAMILIES[alias]:
        raise ValueError(
            f"the {alias!r} sink needs a {' or '.join(sorted(FAMILIES[alias]))} URL, not {backend!r}; "
            "use `plugin: sql` for any other SQLAlchemy URL"
        )
    query = parsed["query"]
    if backend in ("mysql", "mariadb") and "charset" not in dict(parse_qsl(query or "")):
        # Names and texts hold emoji: MySQL's legacy "utf8" cannot store them.
        url += f"{'&' if query else '' if url.endswith('?') else '?'}charset=utf8mb4"
    return url


class SqlSinkConfig(rcetl.PluginConfig):
    """Archive records into a relational database through SQLAlchemy."""

    alias: ClassVar[str | None] = None

    url: str = Field(description="SQLAlchemy database URL; put the password in ${ENV_VAR}")
    table_prefix: str = Field("rc_", pattern=TABLE_PREFIX_PATTERN,
                              description="prefix of every table name (several archives can share a database)")
    db_schema: str | None = Field(None, alias="schema", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$",
                                  description="database schema holding the tables (PostgreSQL, SQL Server)")
    batch_size: int = Field(1000, ge=1, le=100_000, description="rows per executemany statement")
    create_tables: bool = Field(True, description="create the tables, and upgrade an older archive in place")
    connections: int = Field(2, ge=1, le=16, description="PostgreSQL, MySQL/MariaDB: connections a batch is "
                             "written through at once, a part of its records each (in a transaction of its own; "
                             "the server works on each in a process of its own); SQLite and SQL Server use one")
    writer_process: bool | Literal["auto"] = Field(
        "auto", description="SQLite files: write from a process of its own, so SQLite's work runs on another core "
        "beside the run's: auto from the first batch of 500 records, true from the first batch, false never")

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return normalize_url(value, cls.alias)


class SqliteSinkConfig(SqlSinkConfig):
    """Archive records into a SQLite file (``url`` may be a plain path, relative to the pipeline file)."""

    alias: ClassVar[str | None] = "sqlite"


class MysqlSinkConfig(SqlSinkConfig):
    """Archive records into MySQL or MariaDB."""

    alias: ClassVar[str | None] = "mysql"


class PostgresSinkConfig(SqlSinkConfig):
    """Archive records into PostgreSQL."""

    alias: ClassVar[str | None] = "postgres"


class MssqlSinkConfig(SqlSinkConfig):
    """Archive records into Microsoft SQL Server."""

    alias: ClassVar[str | None] = "mssql"
