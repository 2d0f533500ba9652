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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.schema import AddConstraint, CreateIndex, CreateTable

import rcetl

from . import rows as row_maps
from .schema import LATEST_VERSION, Tables, build_tables

if TYPE_CHECKING:
    # Alembic is imported only when an archive is upgraded: opening a current archive or creating
    # a new one (every run but the first after an rcetl upgrade) does not load it (~0.2 s).
    from alembic.operations import Operations

# Typed columns recomputed from ``raw`` (and ``archive``) when an upgrade adds or retypes them, so
# old rows can be filtered too. Each takes (raw, archive) of the row being refilled.
_COLUMNS_FROM_RAW: dict[str, Callable[[Any, Any], dict]] = {
    "call_log": lambda raw, _archive: row_maps.call_log_columns(raw),
    "call_legs": lambda raw, _archive: row_maps.leg_columns(raw),
    "recordings": lambda raw, archive: row_maps.with_blob(row_maps.recording_columns(raw),
                                                          archive[0] if archive else None),
    "messages": lambda raw, _archive: row_maps.message_columns(raw),
    "attachments": lambda raw, _archive: row_maps.attachment_columns(raw),
}
_BACKFILL_PAGE = 1000


@dataclass
class _Step:
    """What one version step did to one table: the backfill and the removals follow from it."""

    old: sa.Table | None  # the table before the step (None: created by it)
    new: sa.Table
    filled: list[str] = field(default_factory=list)  # added or retyped: refilled from raw
    removed: list[str] = field(default_factory=list)  # dropped once the backfill has read them


def stored_version(conn: Connection, tables: Tables) -> int | None:
    """The archive's schema version, or None when the database holds no archive with this prefix."""
    if not sa.inspect(conn).has_table(tables.schema_version.name, schema=tables.schema_version.schema):
        return None
    return conn.execute(sa.select(sa.func.max(tables.schema_version.c.version))).scalar()


#: Databases where a first fill's foreign keys are added once it is over (``create``), not checked
#: row by row: PostgreSQL checks each child row with a trigger that also locks its parent row
#: (65,587 call legs: 799 ms to insert with the key against 238 ms without; adding the key afterwards
#: checks them all in one join, 41 ms). MySQL/MariaDB would rebuild the table to add a key with its
#: check, and SQLite cannot add one to an existing table at all: they get theirs when created.
DEFERS_FOREIGN_KEYS = frozenset({"postgresql"})


def create(conn: Connection, tables: Tables, *, indexes: bool = True) -> None:
    """A fresh archive at the newest version: straight to the end state, no steps to replay.

    With ``indexes=False`` the tables get their primary keys but not their secondary indexes:
    the first fill then maintains one index per table row by row, and the sink builds the others
    in one pass each once the fill is over (``missing_indexes``/``create_indexes``), as bulk
    loaders do. Random-key indexes (phone numbers) maintained row by row outgrow the database's
    cache on large archives and make each row cost more the more rows there are. On the databases
    of ``DEFERS_FOREIGN_KEYS`` the foreign keys wait for the end of the fill the same way
    (``missing_foreign_keys``/``create_foreign_keys``); the sink writes a parent and its children
    in one transaction and deletes no parent, so the fill cannot break what they check."""
    if indexes:
        tables.metadata.create_all(conn)
    else:
        inspector = sa.inspect(conn)
        keys = None if conn.dialect.name not in DEFERS_FOREIGN_KEYS else ()
        for table in tables.metadata.sorted_tables:
            if not inspector.has_table(table.name, schema=table.schema):
                conn.execute(CreateTable(table, include_foreign_key_constraints=keys))
    conn.execute(tables.schema_version.insert().values(version=tables.version))


def missing_indexes(conn: Connection, tables: Tables) -> dict[sa.Table, list[sa.Index]]:
    """The secondary indexes of each data table that the database does not have (yet)."""
    inspector = sa.inspect(conn)
    missing: dict[sa.Table, list[sa.Index]] = {}
    for table in tables.data_tables():
        present = {i["name"] for i in inspector.get_indexes(table.name, schema=table.schema)}
        absent = [i for i in sorted(table.indexes, key=_name) if _name(i) not in present]
        if absent:
            missing[table] = absent
    return missing


def missing_foreign_keys(conn: Connection, tables: Tables) -> list[sa.ForeignKeyConstraint]:
    """The foreign keys of the data tables that the database does not have (yet). SQLite's are
    never missing: it cannot add one later, so they are created with their tables."""
    if conn.dialect.name == "sqlite":
        return []
    inspector = sa.inspect(conn)
    missing: list[sa.ForeignKeyConstraint] = []
    for table in tables.data_tables():
        present = {fk["name"] for fk in inspector.get_foreign_keys(table.name, schema=table.schema)}
        missing += [fk for fk in sorted(table.foreign_key_constraints, key=_name) if _name(fk) not in present]
    return missing


def create_foreign_keys(conn: Connection, keys: list[sa.ForeignKeyConstraint]) -> None:
    """Add ``keys``, each checked against every row in one pass; one another process added
    meanwhile is kept (PostgreSQL has no ``ADD CONSTRAINT IF NOT EXISTS``: asked first, in the same
    transaction)."""
    inspector = sa.inspect(conn)
    for fk in keys:
        table = fk.table
        present = {k["name"] for k in inspector.get_foreign_keys(table.name, schema=table.schema)}
        if _name(fk) not in present:
            conn.execute(AddConstraint(fk))


def is_empty(conn: Connection, table: sa.Table) -> bool:
    return conn.execute(sa.select(sa.literal(1)).select_from(table).limit(1)).first() is None


def create_indexes(conn: Connection, indexes: list[sa.Index]) -> None:
    """Build ``indexes``; where the dialect can say so, one another process made meanwhile is kept.

    MySQL/MariaDB get one ``ALTER TABLE ... ADD INDEX ..., ADD INDEX ...`` per table: InnoDB then
    reads its clustered table once for all of them, not once per index, which past the buffer pool
    is most of the work (100k calls into MariaDB: the five call-log indexes in 1.9-2.4 s against
    4.6-7.1 s one by one, and the close's index build grew 36x from 10k to 100k calls)."""
    if_not_exists = conn.dialect.name in ("postgresql", "sqlite") or getattr(conn.dialect, "is_mariadb", False)
    if conn.dialect.name not in ("mysql", "mariadb"):
        for index in indexes:
            conn.execute(CreateIndex(index, if_not_exists=if_not_exists))
        return
    prep = conn.dialect.identifier_preparer
    by_table: dict[sa.Table, list[sa.Index]] = {}
    for index in indexes:
        by_table.setdefault(index.table, []).append(index)  # type: ignore[arg-type]  # build_tables binds every index
    for table, table_indexes in by_table.items():
        adds = ", ".join(
            f"ADD INDEX {'IF NOT EXISTS ' if if_not_exists else ''}{prep.quote(_name(index))} "
            f"({', '.join(prep.quote(c.name) for c in index.columns)})"
            for index in table_indexes)
        conn.exec_driver_sql(f"ALTER TABLE {prep.format_table(table)} {adds}")


def ensure_schema(conn: Connection, tables: Tables, *, create_tables: bool, where: str,
                  indexes: bool = True) -> None:
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
        create(conn, tables, indexes=indexes)
    else:
        upgrade(conn, tables, version)


def _steps(op: Operations, prefix: str, schema: str | None, version: int) -> list[_Step]:
    """Emit the DDL that takes an archive from ``version - 1`` to ``version``, except the removal
    of columns, which ``_finish`` does after the backfill has read them."""
    before, after = build_tables(prefix, schema, version - 1), build_tables(prefix, schema, version)
    old_tables = {t.name: t for t in before.data_tables()}
    sqlite = op.get_context().dialect.name == "sqlite"
    steps: list[_Step] = []
    for table in after.data_tables():
        old = old_tables.get(table.name)
        if old is None:
            op.create_table(table.name, *(c._copy() for c in table.columns), schema=schema, **table.kwargs)
            steps.append(_Step(None, table))
            continue
        step = _Step(old, table, removed=[c.name for c in old.columns if c.info.get("until") == version])
        retyped = {c.name for c in table.columns if c.info.get("since") == version and c.info.get("retyped")}
        # An index on a retyped column must go first: SQLite and SQL Server refuse to drop the column.
        dropped_indexes = {_name(i) for i in old.indexes if retyped & {c.name for c in i.columns}}
        for index_name in sorted(dropped_indexes):
            op.drop_index(index_name, table_name=table.name, schema=schema)
        for column in sorted(retyped):
            op.drop_column(table.name, column, schema=schema)
        step.filled = [c.name for c in table.columns if c.info.get("since", 1) == version]
        for column in step.filled:
            op.add_column(table.name, table.c[column]._copy(), schema=schema)
        for index in sorted(table.indexes, key=_name):
            if index.info.get("since", 1) == version or index.name in dropped_indexes:
                op.create_index(_name(index), table.name, [c.name for c in index.columns], schema=schema)
        for fk in table.foreign_key_constraints:
            # SQLite cannot add a constraint to an existing table (it would have to copy the table);
            # it does not enforce foreign keys unless asked to anyway. docs/sinks/databases.md says so.
            if fk.info.get("since", 1) == version and not sqlite:
                op.create_foreign_key(_name(fk), table.name, fk.referred_table.name, list(fk.column_keys),
                                      [e.column.name for e in fk.elements], source_schema=schema,
                                      referent_schema=schema, ondelete=fk.ondelete)
        steps.append(step)
    return steps


def _name(item: sa.Index | sa.ForeignKeyConstraint) -> str:
    """The name ``schema.build_tables`` gives every index and foreign key (SQLAlchemy types names
    as optional because a constraint may be unnamed; ours never are, and DDL needs the name)."""
    name = item.name
    if not isinstance(name, str):
        raise TypeError(f"{item!r} has no name: schema.build_tables must name every index and foreign key")
    return name


def _finish(op: Operations, schema: str | None, steps: list[_Step]) -> None:
    for step in steps:
        for name in step.removed:
            op.drop_column(step.new.name, name, schema=schema)


def _set_version(op: Operations, tables: Tables, version: int) -> None:
    op.execute(tables.schema_version.update().values(version=version))


def upgrade(conn: Connection, tables: Tables, from_version: int) -> None:
    """Apply every step after ``from_version``, each in the caller's transaction."""
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    op = Operations(MigrationContext.configure(connection=conn))
    schema = tables.schema_version.schema
    for version in range(from_version + 1, tables.version + 1):
        steps = _steps(op, tables.prefix, schema, version)
        for step in steps:
            if step.old is not None and step.filled:
                _backfill(conn, step, step.new.name[len(tables.prefix):])
        _finish(op, schema, steps)
        _set_version(op, tables, version)


def _backfill(conn: Connection, step: _Step, base_name: str) -> None:
    extract = _COLUMNS_FROM_RAW.get(base_name)
    if extract is None or step.old is None or "raw" not in step.old.c:
        return
    old, columns = step.old, step.filled
    keys = list(old.primary_key.columns)
    sources = [old.c.raw, *([old.c.archive] if "archive" in old.c else [])]
    update = (
        step.new.update()
        .where(*(step.new.c[k.name] == sa.bindparam(f"k_{k.name}") for k in keys))
        .values({c: sa.bindparam(f"v_{c}") for c in columns})
    )
    last: tuple | None = None
    while True:  # keyset pages by primary key: bounded memory and no OFFSET rescans
        query = sa.select(*keys, *sources).order_by(*keys).limit(_BACKFILL_PAGE)
        if last is not None:
            query = query.where(_after(keys, last))
        page = conn.execute(query).all()
        if not page:
            return
        params = []
        for row in page:
            values = extract(row.raw or {}, getattr(row, "archive", None) or [])
            params.append({**{f"k_{k.name}": getattr(row, k.name) for k in keys},
                           **{f"v_{c}": values.get(c) for c in columns}})
        conn.execute(update, params)
        last = tuple(getattr(page[-1], k.name) for k in keys)


def _after(keys: list[sa.Column], last: tuple) -> sa.ColumnElement[bool]:
    """``keys > last`` in key order, spelled out: SQL Server has no row-value comparison."""
    terms = []
    for i, key in enumerate(keys):
        terms.append(sa.and_(*(k == v for k, v in zip(keys[:i], last[:i], strict=True)), key > last[i]))
    return sa.or_(*terms)


def upgrade_sql(dialect: Dialect, prefix: str, schema: str | None, from_version: int) -> str:
    """The upgrade as SQL text, without a database (for review, and the SQL Server golden file)."""
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    buf = io.StringIO()
    ctx = MigrationContext.configure(dialect=dialect, opts={"as_sql": True, "output_buffer": buf,
                                                            "literal_binds": True})
    op = Operations(ctx)
    tables = build_tables(prefix, schema)
    for version in range(from_version + 1, tables.version + 1):
        _finish(op, schema, _steps(op, prefix, schema, version))
        _set_version(op, tables, version)
    return buf.getvalue()


def create_sql(dialect: Dialect, tables: Tables) -> str:
    """The DDL of a fresh archive, as ``create`` would run it."""
    out = []
    for table in tables.metadata.sorted_tables:
        out.append(str(CreateTable(table).compile(dialect=dialect)).strip() + ";")
        for index in sorted(table.indexes, key=_name):
            out.append(str(CreateIndex(index).compile(dialect=dialect)).strip() + ";")
    return "\n\n".join(out) + "\n"
