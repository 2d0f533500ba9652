"""Sort database failures into what the engine can act on.

A lost connection, a restarted server, a deadlock or a lock timeout is ``TransientError``: the
batch is retried later, unchanged. A row the database refuses is ``PermanentError`` naming the
record keys; the engine then writes the batch record by record, so a single-record write names
the one bad record and the rest of the batch is archived.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

import rcetl

# MySQL/MariaDB error numbers that mean "try again", whatever class PyMySQL gives them: too many
# connections, server shutting down, lock wait timeout, deadlock, connection killed, can't connect,
# server gone away, lost connection, read-only failover, out of resources.
_MYSQL_TRANSIENT = {1040, 1053, 1205, 1213, 1290, 1927, 2002, 2003, 2005, 2006, 2013, 2055, 1041, 1037}


def first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return rcetl.redact(text[0] if text else type(orig).__name__)[:300]


def mysql_errno(exc: sa.exc.DBAPIError) -> int | None:
    args = getattr(exc.orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (sa.exc.DisconnectionError, sa.exc.TimeoutError)):
        return True
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    errno = mysql_errno(exc)
    if errno is not None and type(exc.orig).__module__.startswith("pymysql"):
        return errno in _MYSQL_TRANSIENT
    return isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError))


def describe_keys(keys: Sequence[tuple[str, rcetl.Key]]) -> str:
    if len(keys) == 1:
        stream, key = keys[0]
        return f"record {stream}/{key!r}"
    shown = ", ".join(f"{s}/{k!r}" for s, k in keys[:5])
    return f"a batch of {len(keys)} records ({shown}{', ...' if len(keys) > 5 else ''})"


def translate(exc: BaseException, *, where: str, keys: Sequence[tuple[str, rcetl.Key]]) -> rcetl.RcetlError:
    """The rcetl error to raise for a database failure while writing ``keys``."""
    if is_transient(exc):
        return rcetl.TransientError(
            f"lost the database at {where} while writing {describe_keys(keys)}: {first_line(exc)}",
            hint="the batch will be retried; check that the server is up if this persists",
        )
    return rcetl.PermanentError(
        f"the database at {where} rejected {describe_keys(keys)}: {first_line(exc)}",
        hint="the record stays in the failed-item queue; its raw JSON is in the error log",
    )
