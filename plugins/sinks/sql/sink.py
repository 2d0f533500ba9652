"""The SQL record sink: batched native upserts in one transaction per write, verification reads."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, make_url

import rcetl

from . import errors
from .config import SqlSinkConfig
from .rows import CHILDREN, STREAMS, Rows, TableRows, to_rows
from .schema import Tables, build_tables

if TYPE_CHECKING:
    from .sqlite_writer import SqliteWriter
from .upsert import upsert_statement

# Parent keys per IN (...) list: well under SQL Server's 2,100 parameters per statement.
_IN_CHUNK = 500
# A batch is cut in parts (one per connection, see SqlSink._connections) only when each part holds
# at least this many records: a part's fixed costs (a transaction, its round trips) stay small.
_MIN_PART = 200
#: A SQLite file's writer process starts (``writer_process: auto``) with the first batch of at
#: least this many records: it pays off on a backfill's batches (a call-log page, 1,000 records),
#: while for the batches of records with binaries (256 at most at the default 8 downloads) its
#: 16-19 MB of peak RSS (a second interpreter) bought nothing: such a batch is a few rows among
#: minutes of downloads. Once started it writes every later batch.
_PROCESS_FROM = 500
# Bound values per multi-row statement (PostgreSQL allows 65,535).
_MAX_PARAMS = 30_000
# SQL text per statement when rows are sent as literals (MySQL's max_allowed_packet: 4 MB at least).
_LITERAL_BYTES = 2_000_000
# Dialects written through the driver's executemany with rows as tuples (others: SQLAlchemy).
_FAST = {"sqlite", "postgresql", "mysql", "mariadb"}
# A table is analysed after this sink's first write to it, then each time the rows it wrote double:
# fresh statistics for the planner at an amortised O(1) per row. Not before the first write: the
# statistics of an empty table tell PostgreSQL it stays tiny, so it looks parents up by account
# alone and filters thousands of rows; a never-analysed table is estimated from its real size.
_FIRST_ANALYZE = 1
# Rows written to a table in one run after which the sink analyses every column as it closes.
_FULL_ANALYZE = 10_000
_PARENT = {"call_legs": "call_log", "attachments": "messages"}
_NAMED = re.compile(r"%\((\w+)\)s")
log = logging.getLogger(__name__)


@dataclass
class _Prepared:
    """A batch made ready to write (SqlSink.prepare): its keys (for error messages), rows per
    table, and either the writer process's message or the rows with the driver's parameters."""

    keys: list[tuple[str, rcetl.Key]]
    counts: dict[str, int]
    message: bytes | None = None
    # Rows and the driver's parameters of each part, written through a connection each
    parts: list[tuple[TableRows, dict[str, list[Any]] | None]] = field(default_factory=list)


@dataclass(frozen=True)
class _Compiled:
    """One table's upsert, compiled once: the SQL text and how a row dict becomes the driver's tuple."""

    sql: str
    columns: tuple[str, ...]
    processors: tuple[tuple[int, Callable[[list[Any]], list[Any]]], ...]  # (position, column conversion)
    values_group: tuple[int, int] | None = None  # where "(%s, ...)" sits, to repeat it (MySQL)
    staged: _Staged | None = None  # PostgreSQL: rows are copied into a session table, then upserted
    literal: bool = False  # PyMySQL: rows rendered as SQL literals here (see _mysql_literal)

    def column_values(self, rows: Rows) -> list[list[Any]]:
        """The values of each bound column, converted for the driver: a conversion is one pass over
        its column instead of a step in every row's loop."""
        columns = [rows.columns[name] for name in self.columns]
        for i, convert in self.processors:
            columns[i] = convert(columns[i])
        return columns

    def params(self, rows: Rows) -> list[Any]:
        """What :meth:`SqlSink._upsert_rows` sends: the driver's tuple of each row; PostgreSQL's
        columns (one array each); with ``literal``, each row's ``(...)`` SQL text."""
        columns = self.column_values(rows)
        if self.staged is not None:
            return columns
        if self.literal:
            return ["(" + ", ".join(map(_mysql_literal, values)) + ")" for values in zip(*columns, strict=True)]
        return list(zip(*columns, strict=True))

    def multi_row(self, n: int) -> str:
        start, end = self.values_group  # type: ignore[misc]
        return self.sql[:start] + ", ".join([self.sql[start:end]] * n) + self.sql[end:]

    def with_values(self, rendered: Sequence[str]) -> str:
        """The statement with ``rendered`` rows (of ``params`` with ``literal``) as its VALUES."""
        start, end = self.values_group  # type: ignore[misc]
        return self.sql[:start] + ", ".join(rendered) + self.sql[end:]


def _mysql_literal(value: Any) -> str:
    """One value as MySQL/MariaDB SQL text, for PyMySQL, whose own escaping (a Python call chain
    and a character-by-character translation per value) was 45 % of a MariaDB run's busy time.

    Text is sent as a hex literal with its character set (``_utf8mb4 X'...'``): made of hex digits
    only, it needs no escaping, whatever the text holds, and stays a utf8mb4 string for VARCHAR and
    JSON columns alike. Anything but None, text, ints and naive datetimes goes through PyMySQL's
    own ``escape_item``, as do strings that are not valid UTF-8 (PyMySQL refuses them the same way)."""
    kind = type(value)
    if value is None:
        return "NULL"
    if kind is str:
        if not value:
            return "''"
        try:
            return "_utf8mb4 X'" + value.encode().hex() + "'"
        except UnicodeEncodeError:
            pass
    elif kind is int:
        return str(value)
    elif kind is bool:
        return "1" if value else "0"
    elif kind is datetime and value.tzinfo is None:
        return "'" + value.isoformat(" ", "microseconds") + "'"
    from pymysql.converters import escape_item

    return str(escape_item(value, "utf8mb4"))


def _compile(table: sa.Table, dialect: sa.engine.Dialect) -> _Compiled:
    compiled = upsert_statement(table, dialect).compile(dialect=dialect)
    sql = str(compiled)
    if compiled.positiontup:
        columns = tuple(compiled.positiontup)
    else:  # named "%(name)s" placeholders (psycopg, PyMySQL) become positional "%s" for tuples
        columns = tuple(_NAMED.findall(sql))
        sql = _NAMED.sub("%s", sql)
    if sorted(columns) != sorted(c.name for c in table.columns):
        raise AssertionError(f"{table.name}: the compiled upsert binds {columns}")  # a schema/upsert bug
    processors: list[tuple[int, Callable[[list[Any]], list[Any]]]] = []
    for i, name in enumerate(columns):
        column_type = table.c[name].type.dialect_impl(dialect)
        if isinstance(column_type, sa.JSON):
            processors.append((i, _json_column))  # the one JSON encoding of the record
        elif isinstance(column_type, sa.DateTime):
            convert = column_type.bind_processor(dialect)  # SQLite stores SQLAlchemy's text form
            if convert is not None:
                processors.append((i, _sqlite_datetimes(convert) if dialect.name == "sqlite" else _each(convert)))
    if dialect.name == "sqlite":  # in-process: its executemany is as fast as anything
        return _Compiled(sql, columns, tuple(processors))
    start = sql.index(" VALUES (") + len(" VALUES ")
    depth, end = 0, start
    for end, char in enumerate(sql[start:], start):  # noqa: B007 - the closing parenthesis
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0:
            break
    staged = None
    if dialect.name == "postgresql":
        staged = _Staged.of(table, dialect, columns, sql[: start - len(" VALUES ")], sql[end + 1:])
    literal = dialect.name in ("mysql", "mariadb") and dialect.driver == "pymysql"
    return _Compiled(sql, columns, tuple(processors), (start, end + 1), staged, literal)


@dataclass(frozen=True)
class _Staged:
    """PostgreSQL's bulk path: COPY a part's rows into a temporary table of this connection, then one
    ``INSERT ... SELECT ... ON CONFLICT`` from it, then empty it.

    COPY is PostgreSQL's bulk loader, and psycopg formats COPY rows in C; the upsert from the staged
    rows keeps the sink's semantics (insert, update what changed, count what changed). Arrays for an
    ``unnest`` upsert were built element by element by psycopg's list dumper, in Python: 14 % of a
    backfill's GIL time. The table is made (if this connection has none) by the transaction that
    uses it, so a read-only role that verifies or browses never needs the TEMP privilege; it has no
    constraints: a batch never holds one key twice."""

    create: str
    copy: str
    upsert: str
    empty: str
    direct: str  # COPY straight into the table: for rows known to be new (see SqlSink._write_rows)

    @classmethod
    def of(cls, table: sa.Table, dialect: sa.engine.Dialect, columns: tuple[str, ...], insert_head: str,
           conflict_tail: str) -> _Staged:
        prep = dialect.identifier_preparer
        stage = prep.quote_identifier(f"rcetl_stage_{table.name}")
        names = ", ".join(prep.quote_identifier(name) for name in columns)
        defined = ", ".join(f"{prep.quote_identifier(name)} {table.c[name].type.compile(dialect)}" for name in columns)
        return cls(create=f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} ({defined})",
                   copy=f"COPY {stage} ({names}) FROM STDIN",
                   upsert=f"{insert_head} SELECT {names} FROM {stage}{conflict_tail}",
                   empty=f"TRUNCATE {stage}",
                   direct=f"COPY {prep.format_table(table)} ({names}) FROM STDIN")


# A pooled connection idle for longer than this is pinged before it is used (see _ping_when_idle).
_IDLE_PING = 5.0


def _ping_when_idle(engine: Engine) -> None:
    """SQLAlchemy's ``pool_pre_ping``, but only for a connection that sat idle in the pool for
    ``_IDLE_PING`` seconds: a run checks one out per batch, back to back, and the ping's round
    trip per batch was 6 % of the PostgreSQL writer's time (50k calls). A connection the server
    dropped (a restart, an idle timeout) has been idle: it is pinged, found dead, and replaced
    (the pool retries a checkout refused with DisconnectionError), as with pool_pre_ping."""
    @sa.event.listens_for(engine.pool, "checkin")
    def checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info["rcetl_idle_since"] = time.monotonic()

    @sa.event.listens_for(engine.pool, "checkout")
    def checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("rcetl_idle_since")
        if since is None or time.monotonic() - since < _IDLE_PING:
            return  # just connected, or back in the pool a moment ago
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # noqa: BLE001 - any failure of the ping: a dead connection
            raise sa.exc.DisconnectionError(f"ping failed: {exc}") from exc
        if alive is False:
            raise sa.exc.DisconnectionError("ping failed")


def _copy(conn: Connection, statement: str, columns: list[list[Any]]) -> None:
    """``COPY ... FROM STDIN`` of the rows whose columns are ``columns`` (psycopg formats them in C)."""
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None  # a connection in a transaction has its DBAPI connection
    cur = dbapi.cursor()
    try:
        with cur.copy(statement) as copy:  # psycopg's cursor
            write_row = copy.write_row
            for row in zip(*columns, strict=True):
                write_row(row)
    except Exception as exc:
        # As SQLAlchemy reports what it runs, so errors.translate names it like any other.
        raise sa.exc.DBAPIError.instance(statement, None, exc, type(exc)) from exc
    finally:
        cur.close()


def _table_of(index: sa.Index) -> sa.Table:
    table = index.table
    assert isinstance(table, sa.Table)  # schema.build_tables binds every index to its table
    return table


def _json_column(values: list[Any]) -> list[Any]:
    """``rcetl.json_dumps`` of each value (None stays NULL), orjson called inline: a Python call per
    value cost as much as the encoding. What orjson refuses takes ``json_dumps`` for the whole
    column, which gives every value exactly what it gives it alone."""
    dumps = orjson.dumps
    try:
        return [None if v is None else dumps(v).decode() for v in values]
    except TypeError:
        return [None if v is None else rcetl.json_dumps(v) for v in values]


def _each(convert: Callable[[Any], Any]) -> Callable[[list[Any]], list[Any]]:
    def column(values: list[Any]) -> list[Any]:
        return [None if v is None else convert(v) for v in values]

    return column


def _sqlite_datetimes(convert: Callable[[Any], Any]) -> Callable[[list[Any]], list[Any]]:
    """SQLAlchemy's SQLite text form of naive datetimes ("2016-06-06 18:26:52.000000"), which
    ``isoformat`` writes identically in C at a third of the cost, inline; anything else goes
    through SQLAlchemy's own processor."""

    def column(values: list[Any]) -> list[Any]:
        return [v.isoformat(" ", "microseconds") if type(v) is datetime and v.tzinfo is None
                else None if v is None else convert(v) for v in values]

    return column


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class SqlSink(rcetl.RecordSink):
    """One implementation for every SQLAlchemy dialect; the dialect picks the upsert statement."""

    config: SqlSinkConfig

    def __init__(self, name: str, config: rcetl.PluginConfig, ctx: rcetl.RunContext) -> None:
        super().__init__(name, config, ctx)
        self.url: URL = self._resolve_url(make_url(self.config.url))
        # The tables of this sink's own database: no other database's dialect module is imported.
        self.tables: Tables = build_tables(self.config.table_prefix, self.config.db_schema,
                                           dialect=self.url.get_backend_name())
        self._engine: Engine | None = None
        self._statements: dict[str, sa.Executable] = {}
        self._compiled: dict[str, _Compiled] = {}
        self._written: dict[str, int] = {}  # rows written per table since the last ANALYZE
        self._analyze_at: dict[str, int] = {}
        self._deferred: list[sa.Index] = []  # secondary indexes built at close (a first fill)
        self._deferred_keys: list[sa.ForeignKeyConstraint] = []  # foreign keys added at close (idem)
        # PostgreSQL: parent tables that were empty (with their children) when the sink opened, whose
        # batches are written as new without looking their keys up, until a key says otherwise.
        self._first_fill: set[str] = set()
        self._sqlite_writer: SqliteWriter | None = None  # a SQLite file's writer process
        self._parts_pool: ThreadPoolExecutor | None = None  # writes a batch's other parts
        self._lock = threading.Lock()  # what tasks' threads share: the writer, the pool, the counts

    # --- connection ----------------------------------------------------------------------------

    def _resolve_url(self, url: URL) -> URL:
        db = url.database
        if url.get_backend_name() == "sqlite" and db and db != ":memory:" and not db.startswith("file:"):
            url = url.set(database=str(self.ctx.resolve(db)))
        return url

    @property
    def where(self) -> str:
        """The database named for messages: host, port, database and user; never the password."""
        u = self.url
        if u.get_backend_name() == "sqlite":
            return f"sqlite:{u.database}"
        port = f":{u.port}" if u.port else ""
        return f"{u.get_backend_name()}://{u.username or ''}@{u.host or 'localhost'}{port}/{u.database or ''}"

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = self._create_engine()
        return self._engine

    def _create_engine(self) -> Engine:
        backend = self.url.get_backend_name()
        connect_args: dict[str, Any] = {
            "sqlite": {"timeout": _SQLITE_TIMEOUT},
            "mysql": {"connect_timeout": 10},
            "mariadb": {"connect_timeout": 10},
            "postgresql": {"connect_timeout": 10},
            "mssql": {"login_timeout": 10},
        }.get(backend, {})
        kwargs: dict[str, Any] = {}
        if backend == "mssql":
            kwargs["deprecate_large_types"] = True  # NVARCHAR(max), not the deprecated NTEXT
        engine = sa.create_engine(self.url, json_serializer=rcetl.json_dumps, json_deserializer=rcetl.json_loads,
                                  connect_args=connect_args, **kwargs)
        _ping_when_idle(engine)
        if backend == "sqlite":
            sa.event.listen(engine, "connect", _sqlite_pragmas)
            database = self.url.database
            if database and database != ":memory:" and not database.startswith("file:"):
                # A new archive's own folder is made, owner-only, like the state store's; but only
                # one level: a path whose parent's parent is missing is a typo, reported on connect.
                folder = os.path.dirname(os.path.abspath(database))
                if not os.path.isdir(folder) and os.path.isdir(os.path.dirname(folder)):
                    os.mkdir(folder, mode=0o700)
        if backend == "postgresql":
            # One multi-row INSERT ... ON CONFLICT per page instead of a statement per row: several
            # times faster with psycopg 3. Safe because a batch never holds one key twice (to_rows).
            engine.dialect.use_insertmanyvalues_wo_returning = True
        return engine

    def _compiled_of(self, name: str) -> _Compiled:
        compiled = self._compiled.get(name)
        if compiled is None:
            compiled = self._compiled[name] = _compile(self._table(name), self.engine.dialect)
        return compiled

    def open(self) -> None:
        # Imported here, not at module level: alembic is only needed to open an archive, and
        # `rcetl validate` loads this class without opening anything (its start-up budget).
        from . import migrate

        def opening(conn: Connection) -> tuple[list[sa.Index], list[sa.ForeignKeyConstraint], set[sa.Table]]:
            migrate.ensure_schema(conn, self.tables, create_tables=self.config.create_tables, where=self.where,
                                  indexes=False)
            indexes = [i for found in migrate.missing_indexes(conn, self.tables).values() for i in found]
            keys = migrate.missing_foreign_keys(conn, self.tables)
            tables = {_table_of(i) for i in indexes} | {k.table for k in keys}
            if conn.dialect.name == "postgresql":
                tables |= {self._table(name) for family in _PARENT.items() for name in family}
            return indexes, keys, {t for t in tables if migrate.is_empty(conn, t)}

        indexes, keys, empty = self._run(opening, keys=[])
        if self.engine.dialect.name == "postgresql":
            self._first_fill = {parent for child, parent in _PARENT.items()
                                if {self._table(child), self._table(parent)} <= empty}
        # A new archive's secondary indexes (and, on PostgreSQL, its foreign keys) are made once its
        # first fill is over (at close): until then only the primary keys, which the sink's own
        # lookups use, are kept up row by row. A table that has rows but lacks them had a fill that
        # never reached its close (a kill, a crash): they are made now, so every run ends with them
        # whatever happened before.
        self._deferred = [i for i in indexes if _table_of(i) in empty]
        self._deferred_keys = [k for k in keys if k.table in empty]
        self._finish_tables([i for i in indexes if _table_of(i) not in empty],
                            [k for k in keys if k.table not in empty], analyse=[])

    def _finish_tables(self, indexes: list[sa.Index], keys: list[sa.ForeignKeyConstraint],
                       analyse: list[sa.Table]) -> None:
        """Build ``indexes`` and analyse ``analyse`` (see :meth:`_analyze`), then add the foreign
        ``keys`` (after the rest: their lock would wait for the builds anyway). Where the database
        has several writers the jobs run on ``connections`` connections at once, each in a server
        process of its own: on PostgreSQL one job per index or ANALYZE (none waits for another:
        ANALYZE reads columns, not indexes), the analyses first, as they take longest (50,000
        calls: the close 0.66 s one table after the other, 0.52 s a table per connection); on
        MySQL/MariaDB one per table (one ALTER TABLE builds a table's indexes in one pass).
        Failures are logged: the rows are stored, and the next open tries again."""
        if not indexes and not keys and not analyse:
            return
        if not self.config.create_tables and (indexes or keys):  # no DDL allowed: say what is missing
            names = ", ".join([str(i.name) for i in indexes] + [str(k.name) for k in keys])
            log.warning("sink %r: the archive in %s lacks %s (create_tables is off)", self.name, self.where, names)
            indexes, keys = [], []

        def analysed(table: sa.Table) -> None:
            try:  # after a bulk fill, statistics for the queries people run
                self._analyze([table], keys_only=False)
            except sa.exc.SQLAlchemyError as exc:  # the rows are stored; autovacuum analyses later
                log.warning("sink %r: ANALYZE of %s after the run failed: %s", self.name, table.name,
                            errors.first_line(exc))

        jobs: list[Callable[[], None]] = [functools.partial(analysed, t) for t in analyse]
        if self.engine.dialect.name == "postgresql":
            jobs += [functools.partial(self._build_indexes, [i]) for i in indexes]
        else:
            by_table: dict[sa.Table, list[sa.Index]] = {}
            for index in indexes:
                by_table.setdefault(_table_of(index), []).append(index)
            jobs += [functools.partial(self._build_indexes, found) for found in by_table.values()]
        workers = min(len(jobs), self._connections())
        if workers > 1:
            with ThreadPoolExecutor(workers, thread_name_prefix=f"rcetl-sql-close-{self.name}") as pool:
                list(pool.map(lambda job: job(), jobs))
        else:
            for job in jobs:
                job()
        if keys:
            from . import migrate

            names = ", ".join(str(k.name) for k in keys)
            try:
                self._run(lambda conn: migrate.create_foreign_keys(conn, keys), keys=[])
            except rcetl.RcetlError as exc:
                log.warning("sink %r: could not add the foreign keys %s: %s", self.name, names, exc)

    def _build_indexes(self, indexes: list[sa.Index]) -> None:
        if not indexes or not self.config.create_tables:
            return
        from . import migrate

        try:
            self._run(lambda conn: migrate.create_indexes(conn, indexes), keys=[])
        except rcetl.RcetlError as exc:  # the rows are stored; the next open tries again
            names = ", ".join(str(i.name) for i in indexes)
            log.warning("sink %r: could not build the indexes %s: %s", self.name, names, exc)

    def _analyze(self, tables: list[sa.Table], *, keys_only: bool = True, conn: Connection | None = None) -> None:
        """Refresh the planner's statistics (PostgreSQL, SQLite; InnoDB keeps its own current).

        During a run PostgreSQL analyses only the primary-key columns, which the sink's own
        lookups use (parents by key, children by parent): that also refreshes the table's size,
        which decides index against scan, at a fifth of the cost of every column (a JSONB ``raw``
        is the expensive one: 270 against 47 ms on 20,000 calls, run again each time the table
        doubles). When the sink closes after a bulk fill (``keys_only=False``) it adds the columns
        of the table's indexes, whose statistics choose between them for the queries people run
        (by number, date, extension, recording): 165-230 against 455-480 ms for every typed column
        of 50,000 calls. The other columns are left to autovacuum, which analyses the whole table
        within a minute or so of a bulk fill: an ANALYZE of some columns does not reset
        PostgreSQL's count of the rows changed since the last full one (checked on PostgreSQL 15;
        tests/sinks_db/test_pg_analyze.py). Never the JSON documents: each is unique, so their
        statistics (whole-document values) help no plan (a query on a field inside ``raw`` needs an
        expression index, which has statistics of its own)."""
        dialect = self.engine.dialect
        if dialect.name not in ("postgresql", "sqlite"):
            return
        prep = dialect.identifier_preparer
        with contextlib.nullcontext(conn) if conn is not None else self.engine.begin() as conn:
            if dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA analysis_limit=1000")  # sampled, like PostgreSQL's
            for table in tables:
                columns = ""
                if dialect.name == "postgresql":
                    chosen = [c.name for c in table.primary_key.columns]
                    if not keys_only:
                        indexed = {c.name for index in table.indexes for c in index.columns}
                        chosen += [c.name for c in table.columns if c.name in indexed and c.name not in chosen]
                    columns = " (" + ", ".join(prep.quote(name) for name in chosen) + ")"
                conn.exec_driver_sql(f"ANALYZE {prep.format_table(table)}{columns}")

    def _count_written(self, counts: dict[str, int]) -> None:
        due = []
        with self._lock:  # several tasks' writing threads count here
            # A first fill looks nothing up, so its tables need no statistics until it ends (the
            # close analyses them): 12 ANALYZEs of 50,000 calls and their legs, ~0.3 s of the server.
            filling = self._filling(self._first_fill)
            for name, n in counts.items():
                written = self._written.get(name, 0) + n
                if written >= self._analyze_at.get(name, _FIRST_ANALYZE) and name not in filling:
                    due.append(self._table(name))
                    self._analyze_at[name] = max(_FIRST_ANALYZE, written * 2)
                self._written[name] = written
        if due:
            self._analyze(due)

    def close(self) -> None:
        if self._parts_pool is not None:
            self._parts_pool.shutdown(wait=True)
            self._parts_pool = None
        if self._sqlite_writer is not None:
            self._sqlite_writer.close()
            self._sqlite_writer = None
        deferred, self._deferred = self._deferred, []
        deferred_keys, self._deferred_keys = self._deferred_keys, []
        # Bulk-filled tables, and those of a first fill, which were not analysed while it lasted.
        filled = self._filling(self._first_fill)
        bulk = [self._table(name) for name, n in self._written.items() if n >= _FULL_ANALYZE or (n and name in filled)]
        self._first_fill = set()
        self._written.clear()
        if self._engine is not None:
            self._finish_tables(deferred, deferred_keys,
                                analyse=bulk if self._engine.dialect.name == "postgresql" else [])
            self._engine.dispose()
            self._engine = None

    def check(self) -> None:
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError as exc:
            message = errors.first_line(exc)
            denied = any(w in message.lower() for w in ("access denied", "password", "authentication", "login failed"))
            hint = (
                f"check the user {self.url.username!r} and its password in the sink's url "
                "(set it through an environment variable, e.g. url: \"${ARCHIVE_DB_URL}\")"
                if denied
                else "is the database server running and reachable from this machine?"
            )
            raise rcetl.RcetlError(f"sink {self.name!r} cannot connect to {self.where}: {message}", hint=hint) from None

    def _run(self, work, *, keys: Sequence[tuple[str, rcetl.Key]]) -> Any:
        """Run ``work(conn)`` in one transaction, turning driver errors into rcetl's."""
        try:
            with self.engine.begin() as conn:
                return work(conn)
        except sa.exc.SQLAlchemyError as exc:
            raise errors.translate(exc, where=self.where, keys=keys) from exc

    # --- writing -------------------------------------------------------------------------------

    def _table(self, name: str) -> sa.Table:
        return getattr(self.tables, name)

    def _upsert(self, name: str, conn: Connection) -> sa.Executable:
        if name not in self._statements:
            self._statements[name] = upsert_statement(self._table(name), conn.dialect)
        return self._statements[name]

    def write(self, records: Sequence[rcetl.ArchivedRecord]) -> int | None:
        """Upsert the batch; return how many records were new or changed where the database
        reports it exactly (SQLite, PostgreSQL), else None."""
        return self.write_prepared(self.prepare(records))

    def prepare(self, records: Sequence[rcetl.ArchivedRecord]) -> _Prepared:
        """The batch as rows and the driver's parameters, made here (see
        :meth:`rcetl.RecordSink.prepare`); :meth:`write_prepared` only runs the statements."""
        keys = [(ar.record.stream, ar.record.key) for ar in records]
        start = self.config.writer_process is True or len(records) >= _PROCESS_FROM
        if self._writer_process(start=start) is not None:
            batch = to_rows(records)  # the last version of a record in the batch wins
            # Pickled here too: the write only hands the bytes over (one system call, no GIL).
            from .sqlite_writer import pack

            return _Prepared(keys, {name: rows.count for name, rows in batch.tables.items()},
                             message=pack(self._writer_ops(batch)))
        # The last version of a record wins across the whole batch, before it is cut in parts.
        latest = list({(ar.record.stream, ar.record.account, ar.record.key): ar for ar in records}.values())
        fast = self.engine.dialect.name in _FAST
        n = self._connections() if len(latest) >= 2 * _MIN_PART else 1
        parts = [to_rows(latest[i * len(latest) // n:(i + 1) * len(latest) // n]) for i in range(n)]
        counts: dict[str, int] = {}
        for part in parts:
            for name, rows in part.tables.items():
                counts[name] = counts.get(name, 0) + rows.count
        return _Prepared(keys, counts, parts=[(part, self._prepare(part) if fast else None) for part in parts])

    def _connections(self) -> int:
        """Connections a batch is written through at once: a database server works on each in a
        process of its own; SQLite has one writer; SQL Server is not measured here (one)."""
        return self.config.connections if self.engine.dialect.name in ("postgresql", "mysql", "mariadb") else 1

    def write_prepared(self, prepared: _Prepared) -> int | None:
        """Run a prepared batch's statements (a SQLite file's through its writer process), each
        part in a transaction of its own, the parts at once; committed when this returns."""
        if not prepared.keys:
            return 0
        if prepared.message is not None:
            writer = self._writer_process()
            assert writer is not None  # prepared for a writer process, which this sink keeps
            changed: int | None = self._write_by_process(writer, prepared.message, prepared.keys)
        else:
            def write(part: tuple[TableRows, dict[str, list[Any]] | None]) -> int | None:
                return self._run(lambda conn: self._write_rows(conn, *part), keys=prepared.keys)

            first, *others = prepared.parts
            pending = []
            if others:
                with self._lock:  # several tasks may write through this sink at once
                    if self._parts_pool is None:
                        self._parts_pool = ThreadPoolExecutor(4 * len(others), thread_name_prefix=f"rcetl-sql-{self.name}")
                    pool = self._parts_pool
                pending = [pool.submit(write, part) for part in others]
            # Every part has ended before this returns, whatever happened; the first error is raised.
            results: list[int | None] = []
            error: BaseException | None = None
            runs: list[Callable[[], int | None]] = [functools.partial(write, first), *(f.result for f in pending)]
            for run in runs:
                try:
                    results.append(run())
                except BaseException as exc:  # noqa: BLE001 - raised once every part has ended
                    error = error or exc
            if error is not None:
                raise error
            changed = None if any(r is None for r in results) else sum(r or 0 for r in results)
        self._count_written(prepared.counts)  # after the commit: ANALYZE sees the rows
        return changed

    def _writer_process(self, start: bool = True) -> SqliteWriter | None:
        """The writer process of a SQLite file archive (see :mod:`.sqlite_writer`), started if
        ``start`` (see ``_PROCESS_FROM``), unless the pipeline turned it off; in-memory and URI
        databases are written in this process."""
        if self._sqlite_writer is None and start and self.config.writer_process \
                and self.url.get_backend_name() == "sqlite" and self.url.get_driver_name() == "pysqlite":
            database = self.url.database
            if database and database != ":memory:" and not database.startswith("file:") and not self.url.query:
                from .sqlite_writer import SqliteWriter

                with self._lock:  # several tasks prepare at once: one writer per file
                    if self._sqlite_writer is None:
                        self._sqlite_writer = SqliteWriter(database, list(_SQLITE_PRAGMAS), _SQLITE_TIMEOUT)
        return self._sqlite_writer

    def _write_by_process(self, writer: SqliteWriter, message: bytes, keys: list[tuple[str, rcetl.Key]]) -> int:
        """The batch (its ops, packed) through the writer process; one transaction, committed
        before this returns."""
        from .sqlite_writer import WriterFailed, WriterGone

        try:
            return writer.write([message])
        except WriterFailed as exc:
            import sqlite3

            failure = sa.exc.DBAPIError.instance(exc.sql, None, exc.error, sqlite3.Error)
            raise errors.translate(failure, where=self.where, keys=keys) from exc.error
        except WriterGone as exc:
            raise rcetl.TransientError(f"sink {self.name!r}: {exc}; the batch was not committed",
                                       hint="it is written again; if this repeats, set writer_process: false "
                                            "on the sink and report it") from exc

    def _writer_ops(self, batch: TableRows) -> list[tuple[Any, ...]]:
        """What the writer process runs for ``batch``, in :meth:`_write_rows`'s order: the parent
        tables' upserts (their changes counted), then per child table the children its parents no
        longer have go and the others are upserted."""
        prepared = self._prepare(batch)
        ops: list[tuple[Any, ...]] = [("upsert", self._compiled_of(name).sql, params, True)
                                      for name, params in prepared.items() if name not in CHILDREN]
        prep = self.engine.dialect.identifier_preparer
        for name, parents in batch.replaced_parents.items():
            parent_col, child_col = CHILDREN[name]
            table = prep.format_table(self._table(name))
            account, parent, child = (prep.quote(c) for c in ("account", parent_col, child_col))
            ops.append(("stale", f"SELECT {parent}, {child} FROM {table} WHERE {account} = ? AND {parent} IN",
                        f"DELETE FROM {table} WHERE {account} = ? AND {parent} = ? AND {child} = ?",
                        parents, _kept(name, batch.tables.get(name) or Rows())))
            if prepared.get(name):
                ops.append(("upsert", self._compiled_of(name).sql, prepared[name], False))
        return ops

    def _prepare(self, batch: TableRows) -> dict[str, list[Any]]:
        """The driver's parameter tuples of every table of ``batch`` (its JSON encoded here)."""
        out = {}
        for name, rows in batch.tables.items():
            out[name] = self._compiled_of(name).params(rows)
        return out

    def _write_rows(self, conn: Connection, batch: TableRows,
                    prepared: dict[str, list[Any]] | None = None) -> int | None:
        # With DO UPDATE ... WHERE IS DISTINCT FROM, these count only rows inserted or changed;
        # MySQL's driver counts found rows, so there the answer is unknown.
        exact = conn.dialect.name in ("sqlite", "postgresql")
        if batch.replaced_parents and self._first_fill.issuperset(_PARENT[c] for c in batch.replaced_parents):
            written = self._write_first_fill(conn, batch, prepared or {})
            if written is not None:
                return written
        # Only parents already archived can have children to remove; in a backfill there are none,
        # and finding them is one primary-key lookup per parent, never a scan of the child table.
        existed = {child: self._existing(conn, _PARENT[child], parents)
                   for child, parents in batch.replaced_parents.items()}
        # Tables whose rows are all new: the parents of a child table none of whose parents was
        # archived, and those children (the foreign key allows no child without its parent).
        new = {t for child in batch.replaced_parents if not existed[child] for t in (child, _PARENT[child])}
        changed = 0
        for name, rows in batch.tables.items():
            if name not in CHILDREN:
                changed += self._upsert_rows(conn, name, rows, (prepared or {}).get(name), new=name in new)
        for name in batch.replaced_parents:
            rows = batch.tables.get(name) or Rows()
            if existed[name]:
                self._delete_stale_children(conn, name, existed[name], rows)
            self._upsert_rows(conn, name, rows, (prepared or {}).get(name), new=name in new)
        return changed if exact else None

    def _write_first_fill(self, conn: Connection, batch: TableRows, prepared: dict[str, list[Any]]) -> int | None:
        """A first fill's batch (PostgreSQL), taken as new without looking a key up: every table's
        rows COPYed straight in under one savepoint. A key archived already (earlier in this run,
        or by another process) undoes it all and ends the first fill for the sink: None says to
        write the batch the usual way (its parents looked up, stale children removed, upserts).

        The lookup was a round trip per part and batch, and what kept the in-run ANALYZE of both
        tables necessary (see :meth:`_count_written`)."""
        filling = self._filling(self._first_fill)
        changed = 0
        savepoint = conn.begin_nested()
        try:
            # Parents before children (a foreign key made before this rcetl deferred them checks).
            for name in sorted(batch.tables, key=lambda name: name in CHILDREN):
                rows = batch.tables[name]
                if name not in filling:  # a table of no first fill (e.g. recordings): the upsert
                    written = self._upsert_rows(conn, name, rows, prepared.get(name))
                elif rows.count:
                    compiled = self._compiled_of(name)
                    assert compiled.staged is not None  # PostgreSQL's tables are all staged
                    _copy(conn, compiled.staged.direct, prepared.get(name) or compiled.params(rows))
                    written = rows.count
                else:
                    written = 0
                if name not in CHILDREN:
                    changed += written
        except sa.exc.IntegrityError as exc:
            savepoint.rollback()
            self._end_first_fill(conn, errors.first_line(exc))
            return None
        savepoint.commit()
        return changed

    def _end_first_fill(self, conn: Connection, why: str) -> None:
        """Keys are looked up from here on: the tables of the first fill are analysed first, in
        ``conn``'s transaction (their key columns), so that those lookups use the primary key (with
        no statistics PostgreSQL takes ``account = ...`` for selective and fetches every row of the
        account: tests/sinks_db/test_sql_sink.py), and the in-run schedule goes on from there."""
        with self._lock:
            ended, self._first_fill = self._first_fill, set()
            names = sorted(self._filling(ended))
            for name in names:
                self._analyze_at[name] = max(_FIRST_ANALYZE, self._written.get(name, 0) * 2)
        if ended:
            log.info("sink %r: a key of the first fill was archived already (%s): keys are looked up "
                     "from here on", self.name, why)
            self._analyze([self._table(name) for name in names], conn=conn)

    @staticmethod
    def _filling(parents: set[str]) -> set[str]:
        """The tables of a first fill of ``parents``: they and their children."""
        return parents | {child for child, parent in _PARENT.items() if parent in parents}

    def _upsert_rows(self, conn: Connection, name: str, rows: Rows, params: list[Any] | None = None,
                     new: bool = False) -> int:
        """Upsert ``rows`` into table ``name``; how many rows the database reports as written."""
        if not rows.count:
            return 0
        size = self.config.batch_size
        changed = 0
        if conn.dialect.name not in _FAST:
            for chunk in _chunks(rows.dicts(), size):
                result = conn.execute(self._upsert(name, conn), list(chunk))
                changed += max(result.rowcount or 0, 0)
            return changed
        compiled = self._compiled_of(name)
        if params is None:
            params = compiled.params(rows)
        if compiled.values_group is None:  # SQLite
            for chunk in _chunks(params, size):
                result = conn.exec_driver_sql(compiled.sql, list(chunk))
                changed += max(result.rowcount or 0, 0)
            return changed
        if compiled.staged is not None:  # PostgreSQL: COPY into the session's stage, upsert from it
            if new:
                inserted = self._copy_new(conn, compiled.staged, params)
                if inserted is not None:
                    return inserted
            return self._upsert_staged(conn, compiled.staged, params)
        if compiled.literal:  # PyMySQL: the rows' SQL text, made in params, up to ~4 MB a statement
            chunk_rows: list[str] = []
            length = 0
            for row_text in params:
                chunk_rows.append(row_text)
                length += len(row_text)
                if length >= _LITERAL_BYTES or len(chunk_rows) >= size:
                    changed += max(conn.exec_driver_sql(compiled.with_values(chunk_rows)).rowcount or 0, 0)
                    chunk_rows, length = [], 0
            if chunk_rows:
                changed += max(conn.exec_driver_sql(compiled.with_values(chunk_rows)).rowcount or 0, 0)
            return changed
        # One multi-row INSERT ... ON CONFLICT / ON DUPLICATE KEY per chunk, not a statement per row.
        per = max(1, min(size, _MAX_PARAMS // len(compiled.columns)))
        for chunk in _chunks(params, per):
            flat = [v for row in chunk for v in row]
            result = conn.exec_driver_sql(compiled.multi_row(len(chunk)), tuple(flat))
            changed += max(result.rowcount or 0, 0)
        return changed

    def _upsert_staged(self, conn: Connection, staged: _Staged, columns: list[list[Any]]) -> int:
        conn.exec_driver_sql(staged.create)
        _copy(conn, staged.copy, columns)
        changed = max(conn.exec_driver_sql(staged.upsert).rowcount or 0, 0)
        conn.exec_driver_sql(staged.empty)
        return changed

    def _copy_new(self, conn: Connection, staged: _Staged, columns: list[list[Any]]) -> int | None:
        """COPY rows known to be new straight into their table: no stage, no ``ON CONFLICT``
        (a backfill's batches are all new; a third of the server's work per record). Under a
        savepoint: if a row exists after all (another run archived it since the sink looked),
        its key's unique violation undoes only this, and None says to upsert the rows instead."""
        savepoint = conn.begin_nested()
        try:
            _copy(conn, staged.direct, columns)
        except sa.exc.IntegrityError as exc:
            savepoint.rollback()
            log.info("sink %r: rows taken for new were archived meanwhile (%s); upserting them",
                     self.name, errors.first_line(exc))
            return None
        savepoint.commit()
        return len(columns[0]) if columns else 0

    def _existing(self, conn: Connection, parent: str, keys: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
        """Which of ``keys`` (account, key) the parent table already holds."""
        table = self._table(parent)
        by_account: dict[str, list[Any]] = {}
        for account, key in keys:
            by_account.setdefault(account, []).append(key)
        found: list[tuple[str, Any]] = []
        if conn.dialect.name == "postgresql":
            # One array parameter: the statement's text never changes (SQLAlchemy's IN expands one
            # parameter per key, a new statement for psycopg and PostgreSQL at every part).
            prep = conn.dialect.identifier_preparer
            sql = (f"SELECT {prep.quote('id')} FROM {prep.format_table(table)} "
                   f"WHERE {prep.quote('account')} = %s AND {prep.quote('id')} = ANY(%s)")
            for account, account_keys in by_account.items():
                found += [(account, k) for (k,) in conn.exec_driver_sql(sql, (account, account_keys))]
            return found
        for account, account_keys in by_account.items():
            for chunk in _chunks(account_keys, _IN_CHUNK):
                found += [(account, k) for (k,) in conn.execute(
                    sa.select(table.c.id).where(table.c.account == account, table.c.id.in_(list(chunk))))]
        return found

    def _delete_stale_children(self, conn: Connection, name: str, parents: list[tuple[str, Any]],
                               rows: Rows) -> None:
        """Children the parent no longer has (a leg, an attachment) go; the others are upserted.

        Deleting only what is gone, instead of all and re-inserting, keeps a rewrite a no-op."""
        table = self._table(name)
        parent_col, child_col = CHILDREN[name]
        keep = _kept(name, rows)
        by_account: dict[str, list[Any]] = {}
        for account, key in parents:
            by_account.setdefault(account, []).append(key)
        stale = []
        for account, keys in by_account.items():
            for chunk in _chunks(keys, _IN_CHUNK):
                found = conn.execute(
                    sa.select(table.c[parent_col], table.c[child_col])
                    .where(table.c.account == account, table.c[parent_col].in_(list(chunk)))
                )
                stale += [{"a": account, "p": p, "c": c} for p, c in found if (account, p, c) not in keep]
        if stale:
            conn.execute(
                table.delete().where(table.c.account == sa.bindparam("a"),
                                     table.c[parent_col] == sa.bindparam("p"),
                                     table.c[child_col] == sa.bindparam("c")),
                stale,
            )

    # --- verification reads --------------------------------------------------------------------

    def _scoped(self, stream: str, account: str | None, build) -> tuple[sa.Select, Any, Any]:
        """``build(table, key_column)``'s query restricted to one stream (and account)."""
        layout = STREAMS.get(stream)
        table = self._table(layout.table) if layout else self.tables.records
        key_col = table.c[layout.key_column] if layout else table.c.record_key
        query = build(table, key_col)
        if not layout:
            query = query.where(table.c.stream == stream)
        if account is not None:
            query = query.where(table.c.account == account)
        return query, table, key_col

    def archived(self, stream: str, account: str | None = None) -> Iterator[rcetl.ArchivedEntry]:
        generic = stream not in STREAMS
        query, table, key_col = self._scoped(stream, account, lambda t, k: sa.select(
            k, t.c.account, t.c.archive, t.c.deleted, *([t.c.key_type] if generic else [])))
        try:
            with self.engine.connect() as conn:
                # Streamed in pages: verifying a million calls must not hold them all in memory.
                result = conn.execution_options(yield_per=1000).execute(query.order_by(table.c.account, key_col))
                for row in result:
                    key = int(row[0]) if generic and row.key_type == "int" else row[0]
                    yield rcetl.ArchivedEntry(stream=stream, key=key, account=row.account,
                                              archive=row.archive or [], deleted=bool(row.deleted))
        except sa.exc.SQLAlchemyError as exc:
            raise errors.translate(exc, where=self.where, keys=[(stream, "*")]) from exc

    def count(self, stream: str, account: str | None = None) -> int:
        """How many records of ``stream`` the archive holds (for one account, or all)."""
        query, _, _ = self._scoped(stream, account, lambda t, k: sa.select(sa.func.count()).select_from(t))
        return int(self._run(lambda conn: conn.execute(query).scalar_one(), keys=[(stream, "*")]))


def _kept(child_table: str, rows: Rows) -> set[tuple[Any, Any, Any]]:
    """(account, parent key, child key) of each of ``rows`` of a child table: the children kept."""
    parent_col, child_col = CHILDREN[child_table]
    return set(zip(*(rows.columns.get(c, ()) for c in ("account", parent_col, child_col)), strict=True))


#: Every connection to a SQLite archive, the writer process's too.
_SQLITE_PRAGMAS = (
    # A new archive's pages hold 16 KB, not 4: a call's row is ~2 KB (its raw JSON ~1.6 KB), so a
    # 4 KB page held under two rows and a batch's WAL frames, checkpoints and index builds took
    # four times the system calls (50,000 calls: the writer process's CPU 1.86-2.05 -> 1.56-1.62 s
    # with a memory map, the close's index build 0.40-0.45 -> 0.27-0.31 s, the file 151 -> 133 MB).
    # Only a new file takes it (before WAL fixes it); an existing archive keeps its own. No memory
    # map (mmap_size): it saved ~0.03 s more, but every page read through it counts in the resident
    # set of the process (the close's index build maps the whole archive), which users watch.
    "PRAGMA page_size=16384",
    # WAL lets `rcetl verify` read while a run writes. FULL, not NORMAL: in WAL mode NORMAL fsyncs
    # only at a checkpoint, so a power cut could lose rows committed since, while the state store (a
    # file of its own) keeps a checkpoint past them -- a gap. FULL fsyncs the WAL once per commit
    # (one per batch), so records are durable before the engine moves a checkpoint (invariant 2).
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    # Checkpoint the WAL into the database every ~40 MB (2,500 pages of 16 KB; 10 MB in an archive
    # made with 4 KB pages) instead of every 1,000 pages: a batch of calls dirties thousands of
    # index pages, so the default checkpointed (and fsynced) on almost every commit, half of the
    # commit's time. Readers are unaffected; the last close checkpoints.
    "PRAGMA wal_autocheckpoint=2500",
)
_SQLITE_TIMEOUT = 30  # seconds a connection waits for another's write lock


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    for pragma in _SQLITE_PRAGMAS:
        cur.execute(pragma)
    cur.close()
