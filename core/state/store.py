"""The state store: checkpoints, run history, the failed-item queue and the purge log.

Every write is its own short transaction, so a crash loses at most the write in progress, and a
checkpoint is durable once ``put_checkpoint`` returns (invariant 1 relies on that). Upserts are
written as update-then-insert, retried when another writer inserts the same row in between:
portable to every database SQLAlchemy speaks, with no dialect-specific upsert syntax.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from ..records import Key
from .backoff import Backoff
from .database import READ_ONLY, create_state_engine, reported, safe_url, schema_lock
from .rows import CheckpointRow, FailedItem, ProofRow, PurgeRow, RunRow
from .schema import MIGRATIONS, Migration, current_version, define_tables, migrate

# Attempts at a write that raced another writer's insert of the same row, or at the first-use
# migration that raced another process's.
_RACE_ATTEMPTS = 5

DEFAULT_BACKOFF = Backoff()


def _dt(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, tz=timezone.utc)


def _at(seconds: float) -> datetime:
    """A moment from a NOT NULL column of seconds since the epoch."""
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def _seconds(moment: datetime | float | None) -> float:
    if moment is None:
        return time.time()
    if isinstance(moment, datetime):
        return moment.timestamp() if moment.tzinfo else moment.replace(tzinfo=timezone.utc).timestamp()
    return float(moment)


def _lost_migration_race(exc: sa.exc.DBAPIError) -> bool:
    """Another process created the same table or version row a moment earlier."""
    text = str(exc.orig).lower()
    return isinstance(exc, sa.exc.IntegrityError) or "already exists" in text or "duplicate" in text


def encode_key(key: Key) -> str:
    """A natural key as stored: JSON, so 42 and "42" stay distinct and 2**63-1 stays exact."""
    if isinstance(key, bool) or not isinstance(key, (str, int)):
        raise TypeError(
            f"a record key must be a str or an int, not {type(key).__name__} (ids never pass through a float)"
        )
    return json.dumps(key)


def decode_key(text: str) -> Key:
    return json.loads(text)


class StateStore:
    """Where a pipeline remembers how far it got. Thread-safe; share one per process."""

    def __init__(
        self,
        url: str,
        *,
        table_prefix: str = "rcetl_",
        backoff: Callable[[int], float] = DEFAULT_BACKOFF,
        migrations: list[Migration] | None = None,
    ) -> None:
        self._url = url
        self.backoff = backoff
        self._migrations = migrations if migrations is not None else MIGRATIONS
        self._engine = create_state_engine(url)
        self.tables = define_tables(table_prefix, self._engine.dialect.name)
        # An in-memory SQLite database is one shared connection: transactions must take turns.
        self._serial = threading.RLock() if self._engine.pool.__class__.__name__ == "StaticPool" else None
        self._pid = os.getpid()
        self._ready = False
        self._ready_lock = threading.Lock()

    @property
    def url(self) -> str:
        """The database URL with its password masked (safe to print)."""
        return safe_url(self._url)

    def __repr__(self) -> str:
        return f"StateStore({self.url!r})"

    def close(self) -> None:
        self._engine.dispose()

    # -- plumbing -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _begin(self, *, read_only: bool = False) -> Iterator[sa.Connection]:
        if os.getpid() != self._pid:
            # A forked child must not reuse its parent's pooled connections.
            self._engine.dispose(close=False)
            self._pid = os.getpid()
        with self._serial or contextlib.nullcontext(), self._engine.connect() as conn:
            if read_only:  # SQLite: a plain BEGIN, no write lock taken
                conn.execution_options(**READ_ONLY)
            with conn.begin():
                yield conn

    @contextlib.contextmanager
    def _tx(self, action: str) -> Iterator[sa.Connection]:
        """A transaction on a migrated schema, with errors reported without the password."""
        self._ensure_schema()
        with reported(self._url, action), self._begin() as conn:
            yield conn

    def _ensure_schema(self) -> None:
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            # Every run but a store's first finds the schema current: one read says so, without the
            # server-wide lock and the transaction per migration that bringing it up to date takes.
            current = self._current_version()
            if current is not None and current >= max((m.version for m in self._migrations), default=0):
                self.schema_version = current
                self._ready = True
                return
            lock_name = f"rcetl-schema-{self.tables.version.name}"
            with (
                reported(self._url, "creating or upgrading the tables"),
                schema_lock(self._engine, lock_name),
            ):
                for attempt in range(_RACE_ATTEMPTS):
                    try:
                        self.schema_version = migrate(self._begin, self.tables, self._migrations)
                        break
                    except sa.exc.DBAPIError as exc:
                        if not _lost_migration_race(exc) or attempt == _RACE_ATTEMPTS - 1:
                            raise
                        time.sleep(0.05 * (attempt + 1))  # another process was migrating: look again
            self._ready = True

    def _current_version(self) -> int | None:
        """The schema's version, or None when it cannot be read (no tables yet)."""
        try:
            with self._begin(read_only=True) as conn:
                return current_version(conn, self.tables)
        except sa.exc.DBAPIError:
            return None  # a missing table, or a database error the migration then reports

    def _write(self, action: str, work: Callable[[sa.Connection], Any]) -> Any:
        """Run ``work`` in its own transaction, again if it lost an insert race."""
        self._ensure_schema()
        with reported(self._url, action):
            for attempt in range(_RACE_ATTEMPTS):
                try:
                    with self._begin() as conn:
                        return work(conn)
                except sa.exc.IntegrityError:
                    if attempt == _RACE_ATTEMPTS - 1:
                        raise
        raise AssertionError("unreachable")

    def _read(self, action: str, statement: sa.Executable) -> list[sa.Row]:
        with self._tx(action) as conn:
            return list(conn.execute(statement))

    @staticmethod
    def _upsert(conn: sa.Connection, table: sa.Table, where: dict[str, Any], values: dict[str, Any]) -> None:
        condition = sa.and_(*(table.c[name] == value for name, value in where.items()))
        if conn.execute(sa.update(table).where(condition).values(**values)).rowcount == 0:
            conn.execute(sa.insert(table).values(**where, **values))

    # -- checkpoints ----------------------------------------------------------------------------

    def get_checkpoint(self, pipeline: str, source: str, stream: str, partition: str = "") -> Any | None:
        t = self.tables.checkpoints
        rows = self._read(
            "reading a checkpoint",
            sa.select(t.c.value).where(
                t.c.pipeline == pipeline, t.c.source == source, t.c.stream == stream, t.c.part == partition
            ),
        )
        return json.loads(rows[0].value) if rows else None

    def put_checkpoint(self, pipeline: str, source: str, stream: str, partition: str, value: Any) -> None:
        t = self.tables.checkpoints
        where = {"pipeline": pipeline, "source": source, "stream": stream, "part": partition}
        values = {"value": json.dumps(value), "updated_at": time.time()}
        self._write("saving a checkpoint", lambda conn: self._upsert(conn, t, where, values))

    def checkpoints(self, pipeline: str) -> list[CheckpointRow]:
        t = self.tables.checkpoints
        rows = self._read(
            "listing checkpoints",
            sa.select(t).where(t.c.pipeline == pipeline).order_by(t.c.source, t.c.stream, t.c.part),
        )
        return [
            CheckpointRow(r.pipeline, r.source, r.stream, r.part, json.loads(r.value), _at(r.updated_at))
            for r in rows
        ]

    def reset(self, pipeline: str, stream: str | None = None, *, include_failed: bool = False) -> int:
        """Forget where ``pipeline`` (or one of its streams) got to; return how many checkpoints
        were deleted. Failed items stay queued unless ``include_failed``: they are still missing
        from the archive, whatever the checkpoint says."""

        def work(conn: sa.Connection) -> int:
            cp, failed = self.tables.checkpoints, self.tables.failed
            where = [cp.c.pipeline == pipeline] + ([cp.c.stream == stream] if stream is not None else [])
            deleted = conn.execute(sa.delete(cp).where(*where)).rowcount
            if include_failed:
                fwhere = [failed.c.pipeline == pipeline] + (
                    [failed.c.stream == stream] if stream is not None else []
                )
                conn.execute(sa.delete(failed).where(*fwhere))
            return int(deleted)

        return self._write("resetting checkpoints", work)

    # -- runs -----------------------------------------------------------------------------------

    def start_run(self, pipeline: str, info: dict[str, Any]) -> str:
        run_id = uuid.uuid4().hex
        values = {
            "run_id": run_id,
            "pipeline": pipeline,
            "status": "running",
            "info": json.dumps(info),
            "started_at": time.time(),
        }
        self._write(
            "recording a run", lambda conn: conn.execute(sa.insert(self.tables.runs).values(**values))
        )
        return run_id

    def finish_run(self, run_id: str, status: str, summary: dict[str, Any]) -> None:
        t = self.tables.runs
        statement = (
            sa.update(t)
            .where(t.c.run_id == run_id)
            .values(status=status, summary=json.dumps(summary), finished_at=time.time())
        )
        self._write("finishing a run", lambda conn: conn.execute(statement))

    def runs(self, pipeline: str, limit: int = 20) -> list[RunRow]:
        t = self.tables.runs
        rows = self._read(
            "listing runs",
            sa.select(t)
            .where(t.c.pipeline == pipeline)
            .order_by(t.c.started_at.desc(), t.c.run_id)
            .limit(limit),
        )
        return [
            RunRow(
                run_id=r.run_id,
                pipeline=r.pipeline,
                status=r.status,
                info=json.loads(r.info),
                summary=json.loads(r.summary) if r.summary is not None else None,
                started_at=_at(r.started_at),
                finished_at=_dt(r.finished_at),
            )
            for r in rows
        ]

    # -- failed-item queue ----------------------------------------------------------------------

    def add_failed(
        self, pipeline: str, stream: str, account: str, key: Key, record: dict[str, Any], error: str
    ) -> FailedItem:
        """Queue (or re-queue) an item that failed; its next attempt waits ``backoff(attempts)``."""
        t = self.tables.failed
        item_key = encode_key(key)
        ident = {"pipeline": pipeline, "stream": stream, "account": account, "item_key": item_key}

        def work(conn: sa.Connection) -> FailedItem:
            now = time.time()
            select = sa.select(t.c.attempts, t.c.first_failed_at).where(
                *(t.c[k] == v for k, v in ident.items())
            )
            if conn.dialect.name != "sqlite":  # SQLite's BEGIN IMMEDIATE already serialises writers
                select = select.with_for_update()
            previous = conn.execute(select).first()
            attempts = (previous.attempts if previous else 0) + 1
            values = {
                "record": json.dumps(record),
                "error": error,
                "attempts": attempts,
                "last_failed_at": now,
                "next_attempt_at": now + float(self.backoff(attempts)),
            }
            if previous:
                conn.execute(sa.update(t).where(*(t.c[k] == v for k, v in ident.items())).values(**values))
                first = previous.first_failed_at
            else:
                conn.execute(sa.insert(t).values(**ident, first_failed_at=now, **values))
                first = now
            return self._failed_item({**ident, **values, "first_failed_at": first})

        return self._write("queueing a failed item", work)

    @staticmethod
    def _failed_item(r: Any) -> FailedItem:
        get = r.__getitem__ if isinstance(r, dict) else r._mapping.__getitem__
        return FailedItem(
            pipeline=get("pipeline"),
            stream=get("stream"),
            account=get("account"),
            key=decode_key(get("item_key")),
            record=json.loads(get("record")),
            error=get("error"),
            attempts=int(get("attempts")),
            first_failed_at=_at(get("first_failed_at")),
            last_failed_at=_at(get("last_failed_at")),
            next_attempt_at=_at(get("next_attempt_at")),
        )

    def due_failed(
        self, pipeline: str, stream: str, now: datetime | float | None = None, include_not_due: bool = False
    ) -> list[FailedItem]:
        """The items of a stream whose backoff has passed (all of them with ``include_not_due``),
        the longest-waiting first."""
        t = self.tables.failed
        where = [t.c.pipeline == pipeline, t.c.stream == stream]
        if not include_not_due:
            where.append(t.c.next_attempt_at <= _seconds(now))
        rows = self._read(
            "reading due failed items",
            sa.select(t).where(*where).order_by(t.c.next_attempt_at, t.c.account, t.c.item_key),
        )
        return [self._failed_item(r) for r in rows]

    def resolve_failed(self, pipeline: str, stream: str, account: str, key: Key) -> bool:
        """Drop an item from the queue (archived at last, or gone for good); False if absent."""
        t = self.tables.failed
        statement = sa.delete(t).where(
            t.c.pipeline == pipeline,
            t.c.stream == stream,
            t.c.account == account,
            t.c.item_key == encode_key(key),
        )
        return bool(self._write("resolving a failed item", lambda conn: conn.execute(statement).rowcount))

    def failed(self, pipeline: str) -> list[FailedItem]:
        t = self.tables.failed
        rows = self._read(
            "listing failed items",
            sa.select(t)
            .where(t.c.pipeline == pipeline)
            .order_by(t.c.stream, t.c.first_failed_at, t.c.item_key),
        )
        return [self._failed_item(r) for r in rows]

    def count_failed(self, pipeline: str) -> int:
        t = self.tables.failed
        rows = self._read(
            "counting failed items", sa.select(sa.func.count()).select_from(t).where(t.c.pipeline == pipeline)
        )
        return int(rows[0][0])

    # -- purge log ------------------------------------------------------------------------------

    def record_purge(self, pipeline: str, stream: str, account: str, key: Key, action: str) -> None:
        values = {
            "pipeline": pipeline,
            "stream": stream,
            "account": account,
            "item_key": encode_key(key),
            "action": action,
            "at": time.time(),
        }
        self._write(
            "logging a purge", lambda conn: conn.execute(sa.insert(self.tables.purges).values(**values))
        )

    def purges(self, pipeline: str) -> list[PurgeRow]:
        t = self.tables.purges
        rows = self._read("listing purges", sa.select(t).where(t.c.pipeline == pipeline).order_by(t.c.id))
        return [
            PurgeRow(r.pipeline, r.stream, r.account, decode_key(r.item_key), r.action, _at(r.at))
            for r in rows
        ]

    # -- proofs of verification -----------------------------------------------------------------

    def record_proofs(self, pipeline: str, proven: list[tuple[str, str, Key, str, str]],
                      disproven: Iterable[tuple[str, str, Key]] = ()) -> None:
        """Store ``(stream, account, key, digest, how)`` as proven now; forget the proofs of
        ``disproven`` items (a problem found today voids yesterday's proof)."""
        t = self.tables.proofs
        now = time.time()

        def work(conn: sa.Connection) -> None:
            for stream, account, key in disproven:
                conn.execute(sa.delete(t).where(t.c.pipeline == pipeline, t.c.stream == stream,
                                                t.c.account == account, t.c.item_key == encode_key(key)))
            for stream, account, key, digest, how in proven:
                self._upsert(conn, t, {"pipeline": pipeline, "stream": stream, "account": account,
                                       "item_key": encode_key(key)}, {"digest": digest, "how": how, "at": now})

        self._write("recording proofs", work)

    def proofs(self, pipeline: str) -> dict[tuple[str, str, Key], ProofRow]:
        t = self.tables.proofs
        rows = self._read("listing proofs", sa.select(t).where(t.c.pipeline == pipeline))
        out = {}
        for r in rows:
            key = decode_key(r.item_key)
            out[(r.stream, r.account, key)] = ProofRow(r.stream, r.account, key, r.digest, r.how, _at(r.at))
        return out
