"""The archive's relational schema, declared once and versioned column by column.

Every table keeps the record's full JSON (``raw``) beside typed columns for the fields people
filter on, so a field RingCentral adds tomorrow is already archived without a migration. Each
column, index and table carries the schema version that introduced it (``info["since"]``); the
migrator derives each upgrade step from these marks, so the current schema and the upgrade path
cannot drift apart, and ``build_tables(..., version=1)`` re-creates an old archive for tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

#: The newest schema version this rcetl writes; an archive at an older version is upgraded in place.
LATEST_VERSION = 3

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,30}$")
SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

# Natural keys compare byte for byte: call-log ids are case-sensitive base64 ("VgLcd1..."), and
# MySQL's and SQL Server's default collations would fold "Ab" and "aB" into one row.
_BINARY_COLLATION = "Latin1_General_100_BIN2"


_MYSQL = ("mysql", "mariadb")


@dataclass(frozen=True)
class _Types:
    """The column types that differ by database. ``dialect``: the name of the one the tables are for,
    whose variant types alone are made (its dialect module alone imported: PostgreSQL's, MySQL's and
    SQL Server's together cost ~0.1 s of imports on every run); None: every database's."""

    dialect: str | None = None

    def for_(self, *names: str) -> bool:
        return self.dialect is None or self.dialect in names

    def key_text(self, length: int) -> sa.types.TypeEngine:
        if not self.for_("mssql"):
            return sa.Unicode(length)
        from sqlalchemy.dialects import mssql

        return sa.Unicode(length).with_variant(mssql.NVARCHAR(length, collation=_BINARY_COLLATION), "mssql")

    def time(self) -> sa.types.TypeEngine:
        # API times carry milliseconds; keep them (MySQL's DATETIME and SQL Server's DATETIME drop them).
        t = sa.DateTime()
        if self.for_(*_MYSQL):
            from sqlalchemy.dialects import mysql

            t = t.with_variant(mysql.DATETIME(fsp=3), *_MYSQL)
        if self.for_("mssql"):
            from sqlalchemy.dialects import mssql

            t = t.with_variant(mssql.DATETIME2(3), "mssql")
        return t

    def json(self) -> sa.types.TypeEngine:
        # JSONB on PostgreSQL (queryable, comparable); MySQL JSON; text where the dialect has no JSON.
        if not self.for_("postgresql"):
            return sa.JSON(none_as_null=True)
        from sqlalchemy.dialects import postgresql

        return sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def _col(name: str, type_: sa.types.TypeEngine, *, key: bool = False, since: int = 1,
         retyped: bool = False, until: int | None = None) -> sa.Column:
    """A column and the version that introduced it.

    ``retyped``: the column existed before ``since`` with another type (or collation); the upgrade
    drops and re-adds it and refills it from ``raw``, which works on every dialect, including
    SQLite's limited ALTER and SQL Server's refusal to alter an indexed column.
    ``until``: the version that removed it (``build_tables`` keeps it only for older versions)."""
    info: dict = {"since": since}
    if retyped:
        info["retyped"] = True
    if until is not None:
        info["until"] = until
    return sa.Column(name, type_, primary_key=key, nullable=not key, autoincrement=False, info=info)


def _versioned(version: int, old: sa.Column, new: sa.Column) -> sa.Column:
    """``new`` (retyped at its ``since``) for archives at that version or later, else ``old``."""
    return new if version >= new.info["since"] else old


def _e164(prefix: str) -> sa.Column:
    # E.164 is at most 15 digits after "+": rcetl.normalize_phone's form, indexed for search.
    return _col(f"{prefix}_e164", sa.String(16), since=3)


def _account(ty: _Types) -> sa.Column:
    return _col("account", ty.key_text(64), key=True)


def _party(prefix: str, version: int) -> list[sa.Column]:
    return [
        _col(f"{prefix}_number", sa.Unicode(64)),
        _e164(prefix),
        _col(f"{prefix}_name", sa.Unicode(255)),
        # An integer since version 3, like every other extension id (text before).
        _versioned(version, _col(f"{prefix}_extension_id", sa.Unicode(32)),
                   _col(f"{prefix}_extension_id", sa.BigInteger(), since=3, retyped=True)),
    ]


def _call_fields(version: int, ty: _Types) -> list[sa.Column]:
    """What a call and each of its legs have in common (``rows._call_fields`` fills them)."""
    return [
        _col("start_time", ty.time()),
        _col("duration", sa.Integer()),
        _col("type", sa.Unicode(32)),
        _col("direction", sa.Unicode(16)),
        _col("action", sa.Unicode(64)),
        _col("result", sa.Unicode(64)),
        _col("reason", sa.Unicode(128)),
        *_party("from", version),
        *_party("to", version),
        _col("extension_id", sa.BigInteger()),
    ]


def _blob_columns() -> list[sa.Column]:
    """Where the binary went and proof of what it holds (first of ``archive``'s locations)."""
    return [
        _col("blob_id", sa.Unicode(128)),
        _col("blob_status", sa.Unicode(16)),
        _col("location", sa.Unicode(1024)),
        _col("size", sa.BigInteger()),
        _col("sha256", sa.String(64)),
    ]


def _tail(ty: _Types) -> list[sa.Column]:
    return [_col("deleted", sa.Boolean()), _col("raw", ty.json()), _col("archive", ty.json())]


@dataclass(frozen=True)
class Tables:
    """The archive's tables for one prefix and schema (a database may hold several archives)."""

    metadata: sa.MetaData
    call_log: sa.Table
    call_legs: sa.Table
    recordings: sa.Table
    messages: sa.Table
    attachments: sa.Table
    records: sa.Table
    schema_version: sa.Table
    prefix: str
    version: int

    def data_tables(self) -> list[sa.Table]:
        return [self.call_log, self.call_legs, self.recordings, self.messages, self.attachments, self.records]


def _index(prefix: str, short: str, *cols: sa.Column, since: int = 1) -> sa.Index:
    # Short explicit names: a 31-character prefix must still fit PostgreSQL's 63-byte identifiers.
    return sa.Index(f"{prefix}ix_{short}", *cols, info={"since": since})


def _child_of(ty: _Types, parent: sa.Table, column: str, fk_name: str) -> tuple[sa.Column, sa.ForeignKeyConstraint]:
    """A child table's tail: its own copy of its JSON until version 3 (the parent's ``raw`` holds
    it), and since version 3 its foreign key to the parent, whose deletion takes it along."""
    return (_col("raw", ty.json(), until=3),
            sa.ForeignKeyConstraint(["account", column], [parent.c.account, parent.c.id], name=fk_name,
                                    ondelete="CASCADE", info={"since": 3}))


def build_tables(prefix: str, schema: str | None = None, version: int = LATEST_VERSION,
                 dialect: str | None = None) -> Tables:
    """The tables as they are at ``version`` (the newest by default), for the database ``dialect``
    (a dialect name such as ``"sqlite"``; None: with every database's variant types)."""
    ty = _Types(dialect)
    if not IDENTIFIER.match(prefix or "_"):
        raise ValueError(f"table prefix {prefix!r} must match {IDENTIFIER.pattern}")
    if schema is not None and not SCHEMA_NAME.match(schema):
        raise ValueError(f"schema {schema!r} must match {SCHEMA_NAME.pattern}")
    md = sa.MetaData(schema=schema)
    # MySQL/MariaDB: utf8mb4 for emoji in names and texts, binary collation for exact keys.
    # (SQLAlchemy loads a dialect to check options named for it: only MySQL's tables get these.)
    opts: dict[str, Any] = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin", "mariadb_charset": "utf8mb4",
            "mariadb_collate": "utf8mb4_bin"} if ty.for_(*_MYSQL) else {}

    def table(name: str, *items: sa.Column | sa.Constraint) -> sa.Table:
        kept: list[sa.schema.SchemaItem] = [i for i in items if i.info.get("since", 1) <= version < i.info.get("until", version + 1)]
        return sa.Table(f"{prefix}{name}", md, *kept, **opts)

    call_log = table(
        "call_log",
        _account(ty),
        _col("id", ty.key_text(64), key=True),
        _col("session_id", sa.Unicode(64)),
        _col("telephony_session_id", sa.Unicode(128)),
        *_call_fields(version, ty),
        # Joins rc_recordings.id: the same type and (on SQL Server) binary collation since version 3.
        _versioned(version, _col("recording_id", sa.Unicode(64), since=2),
                   _col("recording_id", ty.key_text(64), since=3, retyped=True)),
        _col("last_modified_time", ty.time()),
        *_tail(ty),
    )
    call_legs = table(
        "call_legs",
        _account(ty),
        _col("call_id", ty.key_text(64), key=True),
        _col("leg_index", sa.Integer(), key=True),
        _col("leg_type", sa.Unicode(64)),
        *_call_fields(version, ty),
        # Until version 3 each leg's JSON was stored again here; it is the call's raw["legs"][leg_index].
        *_child_of(ty, call_log, "call_id", f"{prefix}fk_leg_call"),
    )
    recordings = table(
        "recordings",
        _account(ty),
        _col("id", ty.key_text(64), key=True),
        # Joins rc_call_log.id: same type and collation since version 3.
        _versioned(version, _col("call_id", sa.Unicode(64)), _col("call_id", ty.key_text(64), since=3, retyped=True)),
        _col("session_id", sa.Unicode(64)),
        _col("start_time", ty.time()),
        _col("duration", sa.Integer()),
        _col("direction", sa.Unicode(16)),
        _col("type", sa.Unicode(32)),
        _col("content_type", sa.Unicode(128)),
        _col("extension_id", sa.BigInteger()),
        _col("from_number", sa.Unicode(64)),
        _e164("from"),
        _col("to_number", sa.Unicode(64)),
        _e164("to"),
        *_blob_columns(),
        *_tail(ty),
    )
    messages = table(
        "messages",
        _account(ty),
        _col("id", sa.BigInteger(), key=True),
        _col("conversation_id", sa.BigInteger()),
        _col("type", sa.Unicode(16)),
        _col("direction", sa.Unicode(16)),
        _col("creation_time", ty.time()),
        _col("last_modified_time", ty.time()),
        *_party("from", version),
        _col("to_number", sa.Unicode(64)),  # first recipient; every recipient is in raw["to"]
        _e164("to"),
        _col("to_name", sa.Unicode(255)),
        _col("subject", sa.UnicodeText()),
        _col("read_status", sa.Unicode(16)),
        _col("message_status", sa.Unicode(32)),
        _col("availability", sa.Unicode(16)),
        _col("attachment_count", sa.Integer()),
        _col("fax_page_count", sa.Integer(), since=2),
        *_tail(ty),
    )
    attachments = table(
        "attachments",
        _account(ty),
        _col("message_id", sa.BigInteger(), key=True),
        _col("id", sa.BigInteger(), key=True),
        _col("type", sa.Unicode(32)),
        _col("content_type", sa.Unicode(128)),
        _col("file_name", sa.Unicode(255)),
        *_blob_columns(),
        # Until version 3 the attachment's JSON was stored again here; it is in the message's raw.
        *_child_of(ty, messages, "message_id", f"{prefix}fk_att_msg"),
    )
    records = table(
        "records",
        _account(ty),
        _col("stream", ty.key_text(64), key=True),
        # "int" or "str": the key comes back with the exact type it had, and 42 is not "42".
        _col("key_type", sa.String(8), key=True),
        _col("record_key", ty.key_text(255), key=True),
        _col("occurred_at", ty.time()),
        *_tail(ty),
    )
    schema_version = sa.Table(f"{prefix}schema_version", md, sa.Column("version", sa.Integer(), nullable=False))

    # (since, short name, columns); an Index built on bound columns attaches itself to the table.
    indexes = [
        (1, "call_start", lambda: [call_log.c.start_time]),
        (1, "call_ext", lambda: [call_log.c.extension_id, call_log.c.start_time]),
        (2, "call_rec", lambda: [call_log.c.recording_id]),
        (1, "rec_call", lambda: [recordings.c.call_id]),
        (1, "msg_created", lambda: [messages.c.creation_time]),
        (2, "msg_conv", lambda: [messages.c.conversation_id]),
        (1, "rec_stream_time", lambda: [records.c.stream, records.c.occurred_at]),
        # Search by phone number (rcetl.normalize_phone's E.164) within a date range.
        (3, "call_from", lambda: [call_log.c.from_e164, call_log.c.start_time]),
        (3, "call_to", lambda: [call_log.c.to_e164, call_log.c.start_time]),
        (3, "leg_from", lambda: [call_legs.c.from_e164, call_legs.c.start_time]),
        (3, "leg_to", lambda: [call_legs.c.to_e164, call_legs.c.start_time]),
        (3, "recd_from", lambda: [recordings.c.from_e164, recordings.c.start_time]),
        (3, "recd_to", lambda: [recordings.c.to_e164, recordings.c.start_time]),
        (3, "recd_start", lambda: [recordings.c.start_time]),
        (3, "msg_from", lambda: [messages.c.from_e164, messages.c.creation_time]),
        (3, "msg_to", lambda: [messages.c.to_e164, messages.c.creation_time]),
    ]
    for since, short, columns in indexes:
        if since <= version:
            _index(prefix, short, *columns(), since=since)
    return Tables(md, call_log, call_legs, recordings, messages, attachments, records, schema_version,
                  prefix, version)
