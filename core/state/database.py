"""Opening the state database: a private SQLite file by default, any SQLAlchemy URL for sharing.

SQLite is set up so that several threads and processes can share one file: WAL lets readers run
beside a writer, ``busy_timeout`` makes a writer wait for the lock instead of failing, and every
transaction starts with ``BEGIN IMMEDIATE`` -- a transaction that read before it writes would
otherwise fail at once (SQLITE_BUSY_SNAPSHOT) when another process wrote in between, and no
timeout helps with that.
"""

from __future__ import annotations

import contextlib
import os
import zlib
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import StaticPool

from ..errors import RcetlError
from ..secrets import redact, register_secret

SQLITE_BUSY_TIMEOUT_MS = 30_000


class StateStoreError(RcetlError):
    """The state database could not be opened or written; the message never holds a password."""


def safe_url(url: str | URL) -> str:
    """The URL as it may appear in messages: the password masked."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"


def _prepare_sqlite_file(url: URL) -> None:
    """Create the folder (0700) and the file (0600) before SQLite does it with looser modes."""
    if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
        return
    path = Path(url.database).expanduser()
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    if not path.exists():
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)


def _on_sqlite_connect(dbapi_connection, _record) -> None:
    # The driver's own transaction handling would defer BEGIN; we issue BEGIN IMMEDIATE ourselves.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    # NORMAL is crash-safe in WAL mode; a power cut may lose the last commits, which only moves a
    # checkpoint back (items are archived again, idempotently) -- never forward.
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


#: Execution option of a connection that only reads: its transaction takes no write lock, so in WAL
#: mode it neither waits for writers nor makes them wait (``conn.execution_options(**READ_ONLY)``).
READ_ONLY = {"rcetl_read_only": True}


def _on_sqlite_begin(conn: sa.Connection) -> None:
    # Writers take the lock up front (no deadlock between two readers upgrading); readers do not.
    read_only = conn.get_execution_options().get("rcetl_read_only", False)
    conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def create_state_engine(url: str) -> sa.Engine:
    """An engine for ``url``; SQLite files get private permissions, WAL and immediate transactions."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise StateStoreError(
            f"state store URL is not a database URL: {type(exc).__name__}",
            hint="use sqlite:///path/state.db or a SQLAlchemy URL such as postgresql+psycopg://user@host/db",
        ) from None
    register_secret(parsed.password)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(parsed, pool_pre_ping=True)
    in_memory = not parsed.database or parsed.database == ":memory:"
    if in_memory:
        # One shared connection, or every thread would see its own empty database.
        engine = sa.create_engine(parsed, poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        _prepare_sqlite_file(parsed)
        engine = sa.create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
    sa.event.listen(engine, "connect", _on_sqlite_connect)
    sa.event.listen(engine, "begin", _on_sqlite_begin)
    return engine


@contextlib.contextmanager
def schema_lock(engine: sa.Engine, name: str) -> Iterator[None]:
    """Let one process at a time create or upgrade the tables on a database server.

    Concurrent DDL fails in varied ways (PostgreSQL: a duplicate catalog row; MariaDB: "skipped
    since its definition is being modified by concurrent DDL"), so servers take a named lock;
    SQLite needs none, its BEGIN IMMEDIATE already admits one writer at a time.
    """
    dialect = engine.dialect.name
    key: int | str
    if dialect == "postgresql":
        key = zlib.crc32(name.encode())  # advisory locks are named by a number
        take, give = sa.text("SELECT pg_advisory_lock(:k)"), sa.text("SELECT pg_advisory_unlock(:k)")
    elif dialect in ("mysql", "mariadb"):
        key = name[:64]  # MySQL's limit on lock names
        take, give = sa.text("SELECT GET_LOCK(:k, 60)"), sa.text("SELECT RELEASE_LOCK(:k)")
    else:
        yield
        return
    with engine.connect() as conn:
        conn.execute(take, {"k": key})
        try:
            yield
        finally:
            conn.execute(give, {"k": key})
            conn.commit()


@contextlib.contextmanager
def reported(url: str | URL, action: str) -> Iterator[None]:
    """Turn a database error into a :class:`StateStoreError` that names the store, not its password.

    The driver's exception is not chained: some drivers echo connection strings in theirs.
    """
    try:
        yield
    except sa.exc.SQLAlchemyError as exc:
        detail = redact(str(getattr(exc, "orig", None) or exc)).strip().splitlines()
        raise StateStoreError(
            f"state store {safe_url(url)}: {action} failed: {type(exc).__name__}: {detail[0] if detail else ''}",
            hint="check that the database is reachable and the user may create and write tables",
        ) from None
