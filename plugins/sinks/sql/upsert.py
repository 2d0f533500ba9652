"""One idempotent upsert statement per table, in each dialect's native form, run with executemany.

Every form skips rows whose content is unchanged, so re-archiving a batch rewrites nothing:
PostgreSQL and SQLite through a ``WHERE ... IS DISTINCT FROM`` on ``DO UPDATE``, MySQL/MariaDB
natively (an identical ``ON DUPLICATE KEY UPDATE`` leaves the row untouched), SQL Server through
``WHEN MATCHED AND EXISTS (SELECT source EXCEPT SELECT target)`` (NULL-safe comparison).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite

_COLUMN_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def upsert_statement(table: sa.Table, dialect: Dialect) -> sa.Insert | sa.TextClause:
    """The statement that inserts or updates rows of ``table``; execute it with a list of rows."""
    name = dialect.name
    if name in ("postgresql", "sqlite"):
        return _on_conflict(table, name)
    if name in ("mysql", "mariadb"):
        return _on_duplicate_key(table)
    if name == "mssql":
        return mssql_merge(table, dialect)
    raise NotImplementedError(f"no upsert for the {name!r} dialect (supported: sqlite, postgresql, mysql, "
                              "mariadb, mssql)")


def _value_columns(table: sa.Table) -> list[sa.Column]:
    return [c for c in table.columns if not c.primary_key]


def _on_conflict(table: sa.Table, dialect_name: str) -> sa.Insert:
    # Imported here, on first use, so loading the sink does not load every dialect.
    ins: postgresql.Insert | sqlite.Insert
    if dialect_name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert
        ins = postgresql_insert(table)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert
        ins = sqlite_insert(table)
    values = _value_columns(table)
    return ins.on_conflict_do_update(
        index_elements=list(table.primary_key.columns),
        set_={c.name: ins.excluded[c.name] for c in values},
        where=sa.or_(*(c.is_distinct_from(ins.excluded[c.name]) for c in values)),
    )


def _on_duplicate_key(table: sa.Table) -> sa.Insert:
    from sqlalchemy.dialects.mysql import insert

    ins = insert(table)
    return ins.on_duplicate_key_update({c.name: ins.inserted[c.name] for c in _value_columns(table)})


def mssql_merge(table: sa.Table, dialect: Dialect) -> sa.TextClause:
    """SQL Server's MERGE, which SQLAlchemy has no construct for.

    Every identifier is quoted by the dialect's identifier preparer (``[schema].[prefix_table]``,
    ``[type]``), and comes only from the declared schema, whose names are checked here and in
    ``schema.build_tables``; every value is a typed bound parameter. ``HOLDLOCK`` closes MERGE's race between the match and the insert.
    """
    prep = dialect.identifier_preparer
    cols = list(table.columns)
    for c in cols:
        if not _COLUMN_NAME.match(c.name):
            raise ValueError(f"column name {c.name!r} is not a plain identifier")
    keys = [c for c in cols if c.primary_key]
    values = _value_columns(table)
    q = prep.quote_identifier
    target = ".".join(q(part) for part in (table.schema, table.name) if part)

    def listing(columns: list[sa.Column], alias: str = "") -> str:
        return ", ".join(f"{alias}{q(c.name)}" for c in columns)

    sql = "\n".join(
        [
            f"MERGE INTO {target} WITH (HOLDLOCK) AS t",
            f"USING (VALUES ({', '.join(':' + c.name for c in cols)})) AS s ({listing(cols)})",
            "ON " + " AND ".join(f"t.{q(c.name)} = s.{q(c.name)}" for c in keys),
            f"WHEN MATCHED AND EXISTS (SELECT {listing(values, 's.')} EXCEPT SELECT {listing(values, 't.')})",
            "    THEN UPDATE SET " + ", ".join(f"t.{q(c.name)} = s.{q(c.name)}" for c in values),
            f"WHEN NOT MATCHED THEN INSERT ({listing(cols)}) VALUES ({listing(cols, 's.')});",
        ]
    )
    return sa.text(sql).bindparams(*(sa.bindparam(c.name, type_=c.type) for c in cols))
