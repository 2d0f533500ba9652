"""Tables built for one database (``build_tables(..., dialect=name)``) are those built for every
database, as that database sees them: same DDL, same MySQL table options, at every schema version.
Built for one database, they import no other database's SQLAlchemy dialect (a run into SQLite
paid ~0.1 s of imports for PostgreSQL's, MySQL's and SQL Server's), and neither do the state
store's tables."""

from __future__ import annotations

import subprocess
import sys

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mssql
from sqlalchemy.schema import CreateIndex, CreateTable

from rcetl.plugins.sinks.sql.schema import LATEST_VERSION, build_tables

URLS = ["sqlite://", "postgresql+psycopg://u@h/db", "mysql+pymysql://u@h/db", "mariadb+pymysql://u@h/db", "mssql"]


def _dialect(url: str) -> sa.Dialect:
    if url == "mssql":  # its drivers may be missing; the DDL is the dialect's, not the driver's
        return mssql.dialect()
    return sa.create_engine(url).dialect


def _ddl(tables, dialect: sa.Dialect) -> list[str]:
    out = []
    for table in tables.metadata.sorted_tables:
        out.append(str(CreateTable(table).compile(dialect=dialect)))
        out += [str(CreateIndex(i).compile(dialect=dialect)) for i in sorted(table.indexes, key=lambda i: i.name)]
    return out


@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize("version", range(1, LATEST_VERSION + 1))
@pytest.mark.parametrize("schema", [None, "archive"])
def test_tables_for_one_database_are_the_same_there(url, version, schema):
    dialect = _dialect(url)
    every = build_tables("rc_", schema, version)
    one = build_tables("rc_", schema, version, dialect=dialect.name)
    assert _ddl(one, dialect) == _ddl(every, dialect)
    if dialect.name in ("mysql", "mariadb"):
        assert [t.kwargs for t in one.metadata.sorted_tables] == [t.kwargs for t in every.metadata.sorted_tables]


def test_tables_for_sqlite_import_no_other_dialect():
    probe = (
        "import sys\n"
        "from rcetl.plugins.sinks.sql.schema import build_tables\n"
        "from rcetl.state.schema import define_tables\n"
        "build_tables('rc_', dialect='sqlite'); define_tables('rcetl_', 'sqlite')\n"
        "print(sorted({m.split('.')[2] for m in sys.modules if m.startswith('sqlalchemy.dialects.')}))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


@pytest.mark.parametrize("url", URLS)
def test_state_tables_for_one_database_are_the_same_there(url):
    from rcetl.state.schema import define_tables

    dialect = _dialect(url)
    every, one = define_tables("rcetl_"), define_tables("rcetl_", dialect.name)
    for a, b in zip(every.__dict__.values(), one.__dict__.values(), strict=True):
        assert str(CreateTable(b).compile(dialect=dialect)) == str(CreateTable(a).compile(dialect=dialect))
    if dialect.name == "mysql":
        assert "LONGTEXT" in str(CreateTable(one.runs).compile(dialect=dialect))
