"""The state store's tables and their versioned migrations.

Tables are created on first use and upgraded in place: ``<prefix>schema_version`` holds the
version each migration brought the schema to, and :func:`migrate` applies the missing ones, each
in its own transaction. A later release adds a column by appending a migration that calls
:func:`add_column`; it never edits an earlier one.

Values are JSON text, not a database JSON type: ``json.dumps`` keeps 64-bit ids exact on every
backend, and the text reads back the same on SQLite, PostgreSQL, MySQL and SQL Server. Times are
UNIX seconds in a double: comparable everywhere, with no time-zone conversion by any driver.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import sqlalchemy as sa

# Key columns are short enough that a composite primary key fits MySQL's 3072-byte index limit
# in utf8mb4 (4 bytes a character).
_NAME = 100
_ITEM_KEY = 255

_MYSQL = ("mysql", "mariadb")


def json_text(dialect: str | None = None) -> sa.types.TypeEngine:
    """Text for JSON values. MySQL's TEXT holds 64 KiB and a failed call-log record with many legs
    can be larger: LONGTEXT there. Given the ``dialect`` the tables are for, the MySQL dialect
    module (~0.1 s of imports) is loaded only for MySQL and MariaDB; without one, for any."""
    if dialect is not None and dialect not in _MYSQL:
        return sa.Text()
    from sqlalchemy.dialects import mysql

    return sa.Text().with_variant(mysql.LONGTEXT(), *_MYSQL)

SCHEMA_COMPONENT = "state"


def keyed_table(name: str, md: sa.MetaData, keys: Mapping[str, sa.types.TypeEngine], *rest: sa.schema.SchemaItem) -> sa.Table:
    """A table whose primary key is ``keys`` (column name: type, in order), followed by ``rest``."""
    return sa.Table(name, md, *(sa.Column(k, t, primary_key=True) for k, t in keys.items()), *rest)


def item_keys() -> dict[str, sa.types.TypeEngine]:
    """The key of one item of one stream and account in a pipeline (``item_key`` is ``json.dumps(key)``)."""
    return {"pipeline": sa.String(_NAME), "stream": sa.String(_NAME), "account": sa.String(_NAME),
            "item_key": sa.String(_ITEM_KEY)}


@dataclass(frozen=True)
class Tables:
    version: sa.Table
    checkpoints: sa.Table
    runs: sa.Table
    failed: sa.Table
    purges: sa.Table
    proofs: sa.Table


def define_tables(prefix: str = "rcetl_", dialect: str | None = None) -> Tables:
    """The tables as the latest migration leaves them, with names under ``prefix``; for the
    database ``dialect`` (its name) if given, else with the variant types of every dialect."""
    md = sa.MetaData()
    json_type = json_text(dialect)
    version = sa.Table(
        f"{prefix}schema_version",
        md,
        sa.Column("component", sa.String(50), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
    )
    checkpoints = keyed_table(
        f"{prefix}checkpoints",
        md,
        # "partition" and "key" are reserved words in MySQL: plain names keep hand-written SQL safe.
        {"pipeline": sa.String(_NAME), "source": sa.String(_NAME), "stream": sa.String(_NAME),
         "part": sa.String(_ITEM_KEY)},
        sa.Column("value", json_type, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
    )
    runs = sa.Table(
        f"{prefix}runs",
        md,
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("pipeline", sa.String(_NAME), nullable=False, index=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("info", json_type, nullable=False),
        sa.Column("summary", json_type, nullable=True),
        sa.Column("started_at", sa.Double, nullable=False),
        sa.Column("finished_at", sa.Double, nullable=True),
    )
    failed = keyed_table(
        f"{prefix}failed_items",
        md,
        item_keys(),
        sa.Column("record", json_type, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("first_failed_at", sa.Double, nullable=False),
        sa.Column("last_failed_at", sa.Double, nullable=False),
        sa.Column("next_attempt_at", sa.Double, nullable=False),
        sa.Index(f"{prefix}failed_due", "pipeline", "stream", "next_attempt_at"),
    )
    purges = sa.Table(
        f"{prefix}purges",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("pipeline", sa.String(_NAME), nullable=False, index=True),
        sa.Column("stream", sa.String(_NAME), nullable=False),
        sa.Column("account", sa.String(_NAME), nullable=False),
        sa.Column("item_key", sa.String(_ITEM_KEY), nullable=False),
        sa.Column("action", sa.String(50), nullable=False),
        sa.Column("at", sa.Double, nullable=False),
    )
    # What ``rcetl verify`` proved of an item (its stored bytes read back from every sink, hashed and
    # content-checked, or re-downloaded and compared): ``purge`` deletes at the source only an item
    # with a recent proof of the binaries the archive holds now (``digest``).
    proofs = keyed_table(
        f"{prefix}proofs",
        md,
        item_keys(),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("how", sa.String(20), nullable=False),
        sa.Column("at", sa.Double, nullable=False),
    )
    return Tables(version=version, checkpoints=checkpoints, runs=runs, failed=failed, purges=purges,
                  proofs=proofs)


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[sa.Connection, Tables], None]


def _create_v1(conn: sa.Connection, tables: Tables) -> None:
    for table in (tables.checkpoints, tables.runs, tables.failed, tables.purges):
        table.create(conn, checkfirst=True)


def _create_v2(conn: sa.Connection, tables: Tables) -> None:
    tables.proofs.create(conn, checkfirst=True)


MIGRATIONS: list[Migration] = [
    Migration(1, "checkpoints, runs, failed items, purge log", _create_v1),
    Migration(2, "proofs of verification (what purge may delete)", _create_v2),
]


def add_column(conn: sa.Connection, table: sa.Table, column: sa.Column) -> None:
    """``ALTER TABLE ... ADD COLUMN`` in the connection's dialect, for later migrations.
    The column must be nullable or have a server default, so existing rows stay valid."""
    preparer = conn.dialect.identifier_preparer
    ddl = sa.schema.CreateColumn(column).compile(dialect=conn.dialect)
    conn.exec_driver_sql(f"ALTER TABLE {preparer.format_table(table)} ADD {ddl}")


def current_version(conn: sa.Connection, tables: Tables) -> int:
    found = conn.execute(
        sa.select(tables.version.c.version).where(tables.version.c.component == SCHEMA_COMPONENT)
    ).scalar_one_or_none()
    return int(found or 0)


def migrate(begin: Callable[[], object], tables: Tables, migrations: list[Migration] = MIGRATIONS) -> int:
    """Bring the schema to the last migration's version; return that version.

    ``begin`` opens a transaction (a context manager yielding a connection). Several processes
    may start at once: each migration re-reads the version inside its transaction, and one that
    loses a race to create a table simply finds the work done on the next try.
    """
    with begin() as conn:  # type: ignore[attr-defined]
        tables.version.create(conn, checkfirst=True)
    version = 0
    for migration in sorted(migrations, key=lambda m: m.version):
        with begin() as conn:  # type: ignore[attr-defined]
            version = current_version(conn, tables)
            if version >= migration.version:
                continue
            migration.apply(conn, tables)
            if version == 0:
                conn.execute(
                    sa.insert(tables.version).values(component=SCHEMA_COMPONENT, version=migration.version)
                )
            else:
                conn.execute(
                    sa.update(tables.version)
                    .where(tables.version.c.component == SCHEMA_COMPONENT)
                    .values(version=migration.version)
                )
            version = migration.version
    return version
