"""The blob ledger: what this pipeline archived of each binary, so it is never downloaded twice.

The overlap window of an incremental run and ``--full-refresh`` re-read records on purpose (late
changes, deletions); their binaries do not change. Each recording download is a Heavy request,
the scarcest thing a run has, so before a binary is downloaded the engine looks here: when every
blob sink of the record still holds it at the recorded location with the recorded size and
SHA-256 (asked of the sink itself, not taken on trust), the download is skipped and the archive
entry reused. ``rcetl run --redownload`` downloads anyway.

A table of the state database, one row per (pipeline, account, blob id); binaries archived before
the ledger existed have no row and are downloaded once more, after which they do.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa

from ..errors import RcetlError
from ..interfaces import BlobSink
from ..records import BlobRef, BlobResult, StoredBlob
from ..state.schema import keyed_table


def ledger_table(metadata: sa.MetaData, prefix: str = "rcetl_") -> sa.Table:
    return keyed_table(
        f"{prefix}blob_ledger",
        metadata,
        {"pipeline": sa.String(200), "account": sa.String(64), "blob_id": sa.String(200)},
        sa.Column("status", sa.String(16), nullable=False),  # "stored" | "gone"
        sa.Column("size", sa.BigInteger, nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("content_type", sa.String(200), nullable=True),
        sa.Column("locations", sa.Text, nullable=False),  # JSON: sink name -> location
        sa.Column("updated_at", sa.Float, nullable=False),
    )


@dataclass(frozen=True)
class LedgerEntry:
    status: str
    size: int | None
    sha256: str | None
    content_type: str | None
    locations: dict[str, str]


class BlobLedger:
    """Thread-safe; one per opened pipeline."""

    def __init__(self, state_url: str, pipeline: str, *, prefix: str = "rcetl_") -> None:
        from ..state.database import create_state_engine

        self._url = state_url
        self.pipeline = pipeline
        # Its own engine, made where the run is (a Celery worker makes it after the fork).
        self._engine = create_state_engine(state_url)
        self.table = ledger_table(sa.MetaData(), prefix)
        self._ready = False
        self._lock = threading.Lock()
        # An in-memory SQLite database is one shared connection: transactions must take turns.
        self._serial = threading.RLock() if self._engine.pool.__class__.__name__ == "StaticPool" else None

    def close(self) -> None:
        self._engine.dispose()

    def _ensure_table(self) -> None:
        if self._ready:
            return
        from ..state.database import schema_lock

        with self._lock:
            if not self._ready:
                with schema_lock(self._engine, "rcetl-blob-ledger"):  # one creator at a time per server
                    self.table.create(self._engine, checkfirst=True)
                self._ready = True

    def _run(self, work: Any, *, read_only: bool = False) -> Any:
        from ..state.database import READ_ONLY, reported

        self._ensure_table()
        options = READ_ONLY if read_only else {}
        with reported(self._url, "using the blob ledger"):
            if self._serial is None:
                with self._engine.connect().execution_options(**options) as conn, conn.begin():
                    return work(conn)
            with self._serial, self._engine.connect().execution_options(**options) as conn, conn.begin():
                return work(conn)

    def lookup(self, account: str, blob_ids: Sequence[str]) -> dict[str, LedgerEntry]:
        """What was archived of these binaries of ``account`` (missing ids: nothing known)."""
        ids = list(dict.fromkeys(blob_ids))
        if not ids:
            return {}

        def work(conn: sa.Connection) -> dict[str, LedgerEntry]:
            found: dict[str, LedgerEntry] = {}
            for chunk in _chunks(ids):
                rows = conn.execute(self._select, {"pipeline": self.pipeline, "account": account, "ids": chunk})
                found.update((r.blob_id, LedgerEntry(r.status, r.size, r.sha256, r.content_type,
                                                     json.loads(r.locations))) for r in rows)
            return found

        return self._run(work, read_only=True)

    def record(self, account: str, results: Iterable[BlobResult]) -> None:
        """Remember binaries every sink now holds (or the source no longer has)."""
        rows = {
            r.ref.blob_id: {"pipeline": self.pipeline, "account": account, "blob_id": r.ref.blob_id,
                            "status": r.status, "size": r.size, "sha256": r.sha256,
                            "content_type": r.ref.content_type,
                            "locations": json.dumps({s.sink: s.location for s in r.stored}, sort_keys=True),
                            "updated_at": time.time()}
            for r in results if r.status in ("stored", "gone") and not r.error
        }
        if not rows:
            return
        ids = list(rows)

        def work(conn: sa.Connection) -> None:
            # Delete then insert: the same statements on every database the state store supports;
            # one DELETE per chunk of ids and one executemany INSERT, not a statement per binary.
            for chunk in _chunks(ids):
                conn.execute(self._delete, {"pipeline": self.pipeline, "account": account, "ids": chunk})
            conn.execute(self.table.insert(), list(rows.values()))

        self._run(work)

    @functools.cached_property
    def _select(self) -> sa.Select[Any]:
        t = self.table
        return (sa.select(t.c.blob_id, t.c.status, t.c.size, t.c.sha256, t.c.content_type, t.c.locations)
                .where(t.c.pipeline == sa.bindparam("pipeline"), t.c.account == sa.bindparam("account"),
                       t.c.blob_id.in_(sa.bindparam("ids", expanding=True))))

    @functools.cached_property
    def _delete(self) -> sa.Delete:
        t = self.table
        return t.delete().where(t.c.pipeline == sa.bindparam("pipeline"), t.c.account == sa.bindparam("account"),
                                t.c.blob_id.in_(sa.bindparam("ids", expanding=True)))


#: Ids per IN list: well under every supported database's limit of bound parameters (SQLite's is 999
#: in old builds).
_CHUNK = 500


def _chunks(ids: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start:start + _CHUNK]


class _Query:
    """One ledger query for the ids of an account that were started together."""

    def __init__(self, account: str) -> None:
        self.account = account
        self.ids: list[str] = []
        self.taken = False
        self.done = threading.Event()
        self.answers: dict[str, LedgerEntry] = {}
        self.error: BaseException | None = None


class LedgerLookups:
    """Ledger look-ups of binaries on their way, asked many at a time.

    A lookup per binary is a database round trip (and a transaction) per download. Instead every
    binary is announced with :meth:`expect` when it is sent on its way, and the first download
    thread that needs an answer asks the ledger once for every id announced since the previous
    query; the other threads find their answer there (or wait for that query to finish).
    """

    #: At most this many ids in one query: a thread does not wait long for a large one.
    MAX_IDS = 500

    def __init__(self, ledger: BlobLedger) -> None:
        self.ledger = ledger
        self._lock = threading.Lock()
        self._open: dict[str, _Query] = {}  # account -> the query still gathering ids
        self._by_key: dict[tuple[str, str], _Query] = {}

    def expect(self, account: str, blob_id: str) -> None:
        """``blob_id`` of ``account`` will be looked up soon (by :meth:`get`)."""
        with self._lock:
            key = (account, blob_id)
            if key in self._by_key:
                return
            query = self._open.get(account)
            if query is None or len(query.ids) >= self.MAX_IDS:
                query = self._open[account] = _Query(account)
            query.ids.append(blob_id)
            self._by_key[key] = query

    def get(self, account: str, blob_id: str) -> LedgerEntry | None:
        """What the ledger holds for ``blob_id`` of ``account`` (expected or not)."""
        key = (account, blob_id)
        with self._lock:
            query = self._by_key.pop(key, None)
            if query is None:  # not announced: asked alone
                query = _Query(account)
                query.ids.append(blob_id)
            run = not query.taken
            if run:
                query.taken = True
                if self._open.get(account) is query:
                    del self._open[account]
        if run:
            try:
                query.answers = self.ledger.lookup(account, query.ids)
            except BaseException as exc:  # noqa: BLE001 - every thread waiting on it raises it
                query.error = exc
            finally:
                query.done.set()
        else:
            query.done.wait()
        if query.error is not None:
            raise query.error
        return query.answers.get(blob_id)

    def forget(self, account: str, blob_id: str) -> None:
        """``blob_id`` will not be looked up after all (its download was cancelled)."""
        with self._lock:
            self._by_key.pop((account, blob_id), None)


def reuse(ref: BlobRef, entry: LedgerEntry | None, sinks: Sequence[tuple[str, BlobSink]]) -> BlobResult | None:
    """The archived outcome of ``ref`` when downloading it again would add nothing, else None.

    Gone stays gone (RingCentral does not bring a deleted binary back). A stored binary is reused
    only when *every* blob sink of the record holds it at the recorded location with the recorded
    size and SHA-256, as the sink reports it now (a file deleted or replaced since is downloaded).
    """
    if entry is None:
        return None
    if entry.status == "gone":
        return BlobResult(ref=ref, status="gone")
    if entry.status != "stored" or not entry.sha256:
        return None
    stored: list[StoredBlob] = []
    for name, sink in sinks:
        location = entry.locations.get(name)
        if not location:
            return None
        try:
            held = sink.stat_location(location)
        except (NotImplementedError, RcetlError):  # cannot tell: download, as without a ledger
            return None
        if held is None or held.sha256 != entry.sha256 or held.size != entry.size:
            return None
        stored.append(StoredBlob(sink=name, location=location, size=held.size, sha256=held.sha256,
                                 content_type=held.content_type or entry.content_type, skipped=True))
    if entry.content_type and entry.content_type != ref.content_type:
        # As the spool does when the server names the type: the archive says what the bytes are.
        ref = replace(ref, content_type=entry.content_type,
                      variables={k: v for k, v in ref.variables.items() if k != "ext"})
    return BlobResult(ref=ref, status="stored", size=entry.size, sha256=entry.sha256, stored=stored)
