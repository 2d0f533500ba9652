"""SQL Server cannot run on this project's machines: check the SQL the sink sends it, compiled
offline with the mssql dialect (SQL Server 2022, NVARCHAR(max)), against reviewed golden files
(golden/*.sql.txt: the compiler's output, data that is regenerated, never edited by hand).

Regenerate after an intended change with ``RCETL_UPDATE_GOLDEN=1 pytest tests/sinks_db/test_mssql_sql.py``
and review the diff. Every test of test_sql_sink.py and test_sql_migrations.py also runs live against SQL Server
wherever RCETL_TEST_MSSQL_URL is set or Docker answers.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy.dialects.mssql import pymssql

from rcetl.plugins.sinks.sql import migrate
from rcetl.plugins.sinks.sql.schema import build_tables
from rcetl.plugins.sinks.sql.upsert import mssql_merge, upsert_statement

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture(scope="module")
def dialect():
    d = pymssql.dialect(deprecate_large_types=True)
    d.server_version_info = (16, 0)
    d._setup_version_attributes()
    return d


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("RCETL_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed; if intended, regenerate it (see module docstring)"


def test_create_ddl(dialect):
    check_golden("mssql_create.sql", migrate.create_sql(dialect, build_tables("rc_", "archive")))


@pytest.mark.parametrize("table", ["call_log", "attachments", "records"])
def test_merge(dialect, table):
    stmt = mssql_merge(getattr(build_tables("rc_", "archive"), table), dialect)
    check_golden(f"mssql_merge_{table}.sql", str(stmt.compile(dialect=dialect)) + "\n")


def test_upgrade_from_v1(dialect):
    check_golden("mssql_upgrade_v1_to_v3.sql", migrate.upgrade_sql(dialect, "rc_", "archive", 1))


def test_join_columns_share_the_binary_collation_of_the_ids_they_join(dialect):
    # SQL Server refuses a join between two collations (error 468): rc_call_log.recording_id =
    # rc_recordings.id and rc_recordings.call_id = rc_call_log.id must both be BIN2, in a fresh
    # archive and after an upgrade.
    ddl = migrate.create_sql(dialect, build_tables("rc_", "archive"))
    upgrade = migrate.upgrade_sql(dialect, "rc_", "archive", 2)
    for table, column in (("rc_call_log", "recording_id"), ("rc_recordings", "call_id"),
                          ("rc_call_log", "id"), ("rc_recordings", "id")):
        create = ddl.split(f"CREATE TABLE archive.{table} (")[1].split(";")[0]
        assert f"\t{column} NVARCHAR(64) COLLATE Latin1_General_100_BIN2 " in create, (table, column)
    for table, column in (("rc_call_log", "recording_id"), ("rc_recordings", "call_id")):
        assert (f"ALTER TABLE archive.{table} ADD {column} NVARCHAR(64) COLLATE Latin1_General_100_BIN2"
                in upgrade), (table, column)


def test_merge_is_what_the_sink_runs_on_sql_server(dialect):
    t = build_tables("rc_")
    assert str(upsert_statement(t.messages, dialect)) == str(mssql_merge(t.messages, dialect))


def test_merge_binds_every_value_and_quotes_every_identifier(dialect):
    t = build_tables("rc_", "archive")
    compiled = mssql_merge(t.call_log, dialect).compile(dialect=dialect)
    assert set(compiled.params) == {c.name for c in t.call_log.c}
    sql = str(compiled)
    assert sql.startswith("MERGE INTO [archive].[rc_call_log] WITH (HOLDLOCK) AS t")
    assert "t.[type] = s.[type]" in sql and sql.rstrip().endswith(";")


def test_prefix_and_schema_are_validated_before_any_sql():
    for bad in ("rc; DROP TABLE x", "1rc_", "a" * 32, "rc-"):
        with pytest.raises(ValueError):
            build_tables(bad)
    with pytest.raises(ValueError):
        build_tables("rc_", schema="dbo]; DROP TABLE x; --")
