"""The ``lake`` record sink: one Parquet file per (stream, day), merged on write.

Idempotency by **merge-on-write**: a batch's rows for a partition are merged by natural key
(account, key) into the partition's current rows (the batch wins) and the partition is rewritten as
one file, ``part-0.parquet``. Nothing is written when every row is already equal, so a re-run adds no
file and no row, and a partition never holds a key twice: plain ``SELECT count(*)`` in DuckDB, Spark
or Athena is right without a dedupe view. The cost: a write rewrites the whole day it touches
(O(rows of that day) per batch); days are small next to an archive, and an incremental run touches
one or two. Per-partition compaction of append-only files was the alternative: cheaper writes, but
every reader would need the dedupe view until the next compaction.

Crash safety: the new file is written aside under a hidden name (``.pending-<uuid>.parquet``, which
Spark, Hive and ``*.parquet`` globs skip), closed, then moved over ``part-0.parquet`` in one step (a
rename locally, one object copy on S3/GCS): readers see the old file or the new one, never half of
one. Leftover pending files of a killed run are removed before the partition is next written.
Writers of one partition serialise on the run's coordinator lock (threads, processes and workers).
"""

from __future__ import annotations

import contextlib
import json
import posixpath
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

import rcetl

from . import LakeConfig
from .schema import IDENTITY, partition_date, row_date, row_of, schema_for, table_of, text, write_options

PART = "part-0.parquet"
#: Partitions whose last written table a sink keeps (``_recent``): a day spans at most a few batches.
_RECENT = 4
_local_locks: dict[str, threading.Lock] = {}
_local_guard = threading.Lock()


def open_filesystem(path: str, options: dict[str, Any], resolve: Any) -> tuple[pafs.FileSystem, str]:
    """pyarrow's own file system for the path's scheme, and the root inside it."""
    if "://" not in path or path.startswith("file://"):
        local = path.removeprefix("file://")
        return pafs.LocalFileSystem(), str(resolve(local) if resolve else local)
    scheme, rest = path.split("://", 1)
    if scheme == "s3":
        return pafs.S3FileSystem(**options), rest
    if scheme in ("gs", "gcs"):
        return pafs.GcsFileSystem(**options), rest
    # hdfs://namenode:port/path: libhdfs and a Hadoop client are needed where it runs (docs/sinks/lake.md).
    host_port, _, root = rest.partition("/")
    host, _, port = host_port.partition(":")
    return pafs.HadoopFileSystem(host or "default", int(port or 8020), **options), "/" + root


class LakeSink(rcetl.RecordSink):
    config_model = LakeConfig
    description = "Records as Hive-partitioned Parquet (stream=/date=), local, S3, GCS or HDFS; DuckDB/Spark-ready"
    config: LakeConfig

    def __init__(self, name: str, config: rcetl.PluginConfig, ctx: rcetl.RunContext) -> None:
        super().__init__(name, config, ctx)
        try:
            self.fs, self.root = open_filesystem(self.config.path, self.config.filesystem_options, ctx.resolve)
        except (TypeError, ValueError, OSError, pa.ArrowException) as exc:
            raise rcetl.ConfigError(f"sink {name!r}: cannot open {self.config.path}: {rcetl.redact(str(exc))[:300]}",
                                    hint="check the path's scheme and filesystem_options") from None
        # The last few partitions this sink wrote, with the (mtime_ns, size) of the file it left: a
        # backfill writes each day in two or three consecutive batches, and the second need not read
        # back the file the first wrote. Local folders only, where mtime_ns tells a file that another
        # writer replaced since; object stores' second-resolution times could not.
        self._recent: OrderedDict[str, tuple[tuple[int | None, int | None], pa.Table]] = OrderedDict()
        self._recent_guard = threading.Lock()

    def _guard(self, what: str, fn: Any) -> Any:
        try:
            return fn()
        except (OSError, pa.ArrowException) as exc:
            message = f"sink {self.name!r}: {what} {self.config.path} failed: {rcetl.redact(str(exc))[:300]}"
            if isinstance(exc, PermissionError) or "denied" in str(exc).lower() or "read-only" in str(exc).lower():
                raise rcetl.ConfigError(message, hint="check the folder's or bucket's permissions") from None
            raise rcetl.TransientError(message, hint="the batch is retried") from None

    def open(self) -> None:
        self._guard("creating", lambda: self.fs.create_dir(self.root, recursive=True))

    def check(self) -> None:
        self.open()
        probe = posixpath.join(self.root, f".rcetl-check-{uuid.uuid4().hex}")

        def write_probe() -> None:
            with self.fs.open_output_stream(probe) as out:
                out.write(b"ok")
            self.fs.delete_file(probe)

        self._guard("writing to", write_probe)

    # --- layout -------------------------------------------------------------------------------

    def partition_dir(self, stream: str, date: str) -> str:
        return posixpath.join(self.root, f"stream={rcetl.sanitize_component(stream)}", f"date={date}")

    @contextlib.contextmanager
    def _locked(self, folder: str) -> Iterator[None]:
        name = f"lake:{self.config.path}:{folder[len(self.root):]}"
        coordinator = getattr(self.ctx, "coordinator", None)
        if coordinator is not None:
            with coordinator.lock(name, timeout=self.config.lock_timeout):
                yield
            return
        with _local_guard:
            lock = _local_locks.setdefault(name, threading.Lock())
        with lock:
            yield

    # --- writing ------------------------------------------------------------------------------

    def write(self, records: Sequence[rcetl.ArchivedRecord]) -> int:
        partitions: dict[tuple[str, str], dict[tuple[str, str], tuple[Any, ...]]] = {}
        for ar in records:  # every row is built first: an interrupted batch writes nothing
            rec = ar.record
            if isinstance(rec.key, bool) or not isinstance(rec.key, (int, str)):
                raise rcetl.PermanentError(f"record {rec.stream}/{rec.key!r}: a key must be an int or a str")
            row = row_of(ar)
            partitions.setdefault((rec.stream, row_date(row)), {})[(row[0], row[2])] = row
        return sum(self._merge(stream, date, rows) for (stream, date), rows in sorted(partitions.items()))

    def _merge(self, stream: str, date: str, rows: dict[tuple[str, str], tuple[Any, ...]]) -> int:
        folder = self.partition_dir(stream, date)
        schema = schema_for(stream)
        with self._locked(folder):
            current = self._guard("reading", lambda: self._read_partition(folder, schema))
            if current is None:
                changed, kept = rows, None
            else:
                # Compare what determines a row (the typed columns derive from raw) without
                # converting the nested columns to Python: a re-run of unchanged data stays cheap.
                index = {k: i for i, k in enumerate(zip(current["account"].to_pylist(),
                                                        current["key_json"].to_pylist(), strict=True))}
                # Only keys already stored need comparing (a backfill's next batch of a day has none).
                stored = [k for k in rows if k in index]
                cols = [(current[c].to_pylist(), at) for c, at in IDENTITY.items()] if stored else []
                changed = {k: r for k, r in rows.items()
                           if k not in index or any(col[index[k]] != r[at] for col, at in cols)}
                if not changed:
                    return 0
                replaced = any(k in changed for k in stored)
                kept = current.filter(pa.array([k not in changed for k in index])) if replaced else current
            # A batch's rows in (account, key_json) order, after the rows kept in their stored order: a
            # day up to 1M rows is one row group, so sorting it again (an Arrow take of every nested
            # column) would buy no reader anything.
            table = table_of(schema, [changed[k] for k in sorted(changed)])
            if kept is not None and kept.num_rows:
                table = pa.concat_tables([kept, table])
            self._guard("writing", lambda: self._replace(folder, table, stream))
            self._guard("reading", lambda: self._remember(folder, table))
            return len(changed)

    def _read_partition(self, folder: str, schema: pa.Schema) -> pa.Table | None:
        path = posixpath.join(folder, PART)
        info = self.fs.get_file_info(path)
        if info.type == pafs.FileType.NotFound:
            return None
        with self._recent_guard:
            recent = self._recent.get(folder)
        if recent is not None and recent[0] == (info.mtime_ns, info.size) and recent[1].schema.equals(schema):
            return recent[1]
        # ``schema``: a file written before a column was added reads with that column null.
        return pq.read_table(path, filesystem=self.fs, schema=schema)

    def _remember(self, folder: str, table: pa.Table) -> None:
        if not isinstance(self.fs, pafs.LocalFileSystem):
            return
        info = self.fs.get_file_info(posixpath.join(folder, PART))
        with self._recent_guard:
            self._recent[folder] = ((info.mtime_ns, info.size), table)
            self._recent.move_to_end(folder)
            while len(self._recent) > _RECENT:
                self._recent.popitem(last=False)

    def _replace(self, folder: str, table: pa.Table, stream: str) -> None:
        self.fs.create_dir(folder, recursive=True)
        self._clear_pending(folder)
        pending = posixpath.join(folder, f".pending-{uuid.uuid4().hex}.parquet")
        try:
            pq.write_table(table, pending, filesystem=self.fs, **write_options(stream),
                           compression=None if self.config.compression == "none" else self.config.compression)
            if isinstance(self.fs, pafs.HadoopFileSystem):
                # HDFS rename does not replace: the old file goes first (readers may miss the day briefly).
                with contextlib.suppress(FileNotFoundError, OSError):
                    self.fs.delete_file(posixpath.join(folder, PART))
            self.fs.move(pending, posixpath.join(folder, PART))
        except BaseException:
            with contextlib.suppress(Exception):
                self.fs.delete_file(pending)
            raise

    def _clear_pending(self, folder: str) -> None:
        """Pending files are a killed writer's (this partition's lock is held): never visible, removed."""
        for info in self.fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True)):
            if info.base_name.startswith(".pending-"):
                with contextlib.suppress(FileNotFoundError, OSError):
                    self.fs.delete_file(info.path)

    # --- reading back -------------------------------------------------------------------------

    def files(self, stream: str) -> list[str]:
        base = posixpath.join(self.root, f"stream={rcetl.sanitize_component(stream)}")
        infos = self.fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
        return sorted(i.path for i in infos if i.type == pafs.FileType.File and i.base_name == PART)

    def archived(self, stream: str, account: str | None = None) -> Iterator[rcetl.ArchivedEntry]:
        columns = ["account", "key_json", "deleted", "archive"]
        for path in self._guard("listing", lambda: self.files(stream)):
            table = self._guard("reading", lambda p=path: pq.read_table(p, filesystem=self.fs, columns=columns))
            for row in table.to_pylist():
                if account is None or row["account"] == account:
                    yield rcetl.ArchivedEntry(stream=stream, key=json.loads(row["key_json"]), account=row["account"],
                                              archive=rcetl.json_loads(row["archive"]), deleted=bool(row["deleted"]))

    def count(self, stream: str, account: str | None = None) -> int:
        if account is not None:
            return super().count(stream, account)
        return sum(pq.ParquetFile(p, filesystem=self.fs).metadata.num_rows for p in self.files(stream))

    def stored_json(self, record: rcetl.Record) -> dict[str, Any] | None:
        """The API's JSON as stored for ``record`` (None: not stored)."""
        table = self._read_partition(self.partition_dir(record.stream, partition_date(record)),
                                     schema_for(record.stream))
        if table is None:
            return None
        account, key_json = text(record.account) or "", json.dumps(record.key)
        for acc, key, raw in zip(*(table[c].to_pylist() for c in ("account", "key_json", "raw")), strict=True):
            if (acc, key) == (account, key_json):
                return rcetl.json_loads(raw)
        return None
