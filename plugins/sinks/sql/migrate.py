"""Create the archive's tables, and upgrade an archive written by an older rcetl in place.

Versioning is a one-row table (``<prefix>schema_version``) rather than Alembic's script directory:
the table prefix and schema are chosen per pipeline, several archives may share one database, and
the steps derive from ``schema.py``'s ``since`` marks instead of hand-written scripts. Alembic's
``Operations`` still emits each step's DDL, so ALTERs are right for every dialect, and the same
steps render offline as SQL for review (``upgrade_sql``; SQL Server's is a golden file in the tests).
"""

from __future__ import annotations

import io
from collections.abc import Callable

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy.engine import Connection, Dialect

import rcetl

from . import rows as row_maps
from .schema import LATEST_VERSION, Tables, build_tables

# Typed columns recomputed from ``raw`` when an upgrade adds them, so old rows can be filtered too.
_COLUMNS_FROM_RAW: dict[str, Callable] = {
    "call_log": row_maps.call_log_columns,
    "call_legs": row_maps.leg_columns,
    "recordings": row_maps.recording_columns,
    "messages": row_maps.message_columns,
    "attachments": row_maps.attachment_columns,
}
_BACKFILL_PAGE = 1000


def stored_version(conn: Connection, tables: Tables) -> int | None:
    """The archive's schema version, or None when the database holds no archive with this prefix."""
    if not sa.inspect(conn).has_table(tables.schema_version.name, schema=tables.schema_version.schema):
        return None
    return conn.execute(sa.select(sa.func.max(tables.schema_version.c.version))).scalar()


def create(conn: Connection, tables: Tables) -> None:
    """A fresh archive at the newest version: straight to the end state, no steps to replay."""
    tables.metadata.create_all(conn)
    conn.execute(tables.schema_version.insert().values(version=tables.version))


def ensure_schema(conn: Connection, tables: Tables, *, create_tables: bool, where: str) -> None:
    version = stored_version(conn, tables)
    if version == LATEST_VERSION:
        return
    if version is not None and version > LATEST_VERSION:
        raise rcetl.PermanentError(
            f"the archive in {where} is at schema version {version}, newer than this rcetl ({LATEST_VERSION})",
            hint="upgrade rcetl to write to this archive",
        )
    if not create_tables:
        state = "has no archive tables" if version is None else f"is at schema version {version}"
        raise rcetl.PermanentError(
            f"{where} {state}; this rcetl writes version {LATEST_VERSION} (prefix {tables.prefix!r})",
            hint="set `create_tables: true` to let rcetl create or upgrade them, or check table_prefix/schema",
        )
    if version is None:
        create(conn, tables)
    else:
        upgrade(conn, tables, version)


def _steps(op: Operations, prefix: str, schema: str | None, version: int) -> list[tuple[sa.Table, list[str]]]:
    """Emit the DDL that takes an archive from ``version - 1`` to ``version``.

    Returns, per table, the columns added (for the backfill)."""
    before, after = build_tables(prefix, schema, version - 1), build_tables(prefix, schema, version)
    added: list[tuple[sa.Table, list[str]]] = []
    old_names = {t.name for t in before.data_tables()}
    for table in after.data_tables():
        if table.name not in old_names:
            op.create_table(table.name, *(c._copy() for c in table.columns), schema=schema, **table.kwargs)
            new_cols: list[str] = []
        else:
            new_cols = [c.name for c in table.columns if c.info.get("since", 1) == version]
            for name in new_cols:
                op.add_column(table.name, table.c[name]._copy(), schema=schema)
        for index in sorted(table.indexes, key=lambda i: i.name):
            if index.info.get("since", 1) == version or table.name not in old_names:
                op.create_index(index.name, table.name, [c.name for c in index.columns], schema=schema)
        if new_cols:
            added.append((table, new_cols))
    return added


def _set_version(op: Operations, tables: Tables, version: int) -> None:
    op.execute(tables.schema_version.update().values(version=version))


def upgrade(conn: Connection, tables: Tables, from_version: int) -> None:
    """Apply every step after ``from_version``, each in the caller's transaction."""
    op = Operations(MigrationContext.configure(connection=conn))
    schema = tables.schema_version.schema
    for version in range(from_version + 1, tables.version + 1):
        for table, columns in _steps(op, tables.prefix, schema, version):
            _backfill(conn, table, table.name[len(tables.prefix):], columns)
        _set_version(op, tables, version)


def _backfill(conn: Connection, table: sa.Table, base_name: str, columns: list[str]) -> None:
    extract = _COLUMNS_FROM_RAW.get(base_name)
    if extract is None:
        return
    keys = list(table.primary_key.columns)
    update = (
        table.update()
        .where(*(k == sa.bindparam(f"k_{k.name}") for k in keys))
        .values({c: sa.bindparam(f"v_{c}") for c in columns})
    )
    offset = 0
    while True:  # page by primary key: bounded memory however large the archive
        page = conn.execute(
            sa.select(*keys, table.c.raw).order_by(*keys).offset(offset).limit(_BACKFILL_PAGE)
        ).all()
        if not page:
            return
        params = []
        for row in page:
            values = extract(row.raw or {})
            params.append({**{f"k_{k.name}": getattr(row, k.name) for k in keys},
                           **{f"v_{c}": values.get(c) for c in columns}})
        conn.execute(update, params)
        offset += len(page)


def upgrade_sql(dialect: Dialect, prefix: str, schema: str | None, from_version: int) -> str:
    """The upgrade as SQL text, without a database (for review, and the SQL Server golden file)."""
    buf = io.StringIO()
    ctx = MigrationContext.configure(dialect=dialect, opts={"as_sql": True, "output_buffer": buf,
                                                            "literal_binds": True})
    op = Operations(ctx)
    tables = build_tables(prefix, schema)
    for version in range(from_version + 1, tables.version + 1):
        _steps(op, prefix, schema, version)
        _set_version(op, tables, version)
    return buf.getvalue()


def create_sql(dialect: Dialect, tables: Tables) -> str:
    """The DDL of a fresh archive, as ``create`` would run it."""
    from sqlalchemy.schema import CreateIndex, CreateTable

    out = []
    for table in tables.metadata.sorted_tables:
        out.append(str(CreateTable(table).compile(dialect=dialect)).strip() + ";")
        for index in sorted(table.indexes, key=lambda i: i.name):
            out.append(str(CreateIndex(index).compile(dialect=dialect)).strip() + ";")
    return "\n\n".join(out) + "\n"
