"""The ``parquet`` record sink: an append-only data lake made idempotent.

Parquet files cannot be updated in place, so the sink never updates: every batch becomes new files,
and "the archive" is a *view* that keeps the latest write of each natural key.

- **Content-addressed files.** A batch's rows for one (stream, date) partition go to
  ``part-<sha256 of the rows>.parquet``. Re-delivering the same batch (at-least-once delivery
  after a crash) produces the same name, which already exists: nothing is written twice.
- **Latest write wins, in the query.** Each row carries ``written_at`` (ns); readers keep, per
  (stream, account, key), the row with the greatest ``written_at`` (:data:`DEDUPE_SQL`). A
  changed record (deleted, new archive locations) is a new row that wins.
- **Compaction** (``rcetl parquet compact``) rewrites a partition as one file holding only the
  latest rows, then deletes the files it replaced, for lakes that grow from many small runs.
- **Durable on return.** A file is written under a temporary name and moved into place (an atomic
  rename locally; a single PUT on object stores), so readers never see half a file.

Ids stay exact: ``key`` is a string with ``key_type`` (``int``/``str``) beside it, and the record's
JSON is kept verbatim in ``data`` (JSON keeps 64-bit integers exact; Parquet doubles would not).
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

import rcetl

from .config import ParquetConfig

SCHEMA = pa.schema([
    pa.field("account", pa.string()),
    pa.field("key", pa.string()),
    pa.field("key_type", pa.string()),
    pa.field("occurred_at", pa.timestamp("us", tz="UTC")),
    pa.field("deleted", pa.bool_()),
    pa.field("data", pa.string()),        # the API's JSON, verbatim
    pa.field("archive", pa.string()),     # where the binaries went, with their SHA-256 (JSON)
    pa.field("written_at", pa.int64()),   # ns since the epoch: the latest write of a key wins
])

#: The dedupe view over a lake (DuckDB syntax; Spark and Athena have the same window function).
DEDUPE_SQL = """\
SELECT * EXCLUDE (rn) FROM (
  SELECT *, row_number() OVER (PARTITION BY stream, account, key ORDER BY written_at DESC) AS rn
  FROM read_parquet('{root}/stream=*/date=*/*.parquet', hive_partitioning = true)
) WHERE rn = 1"""


def open_filesystem(path: str, options: dict[str, Any], resolve: Any = None) -> tuple[pafs.FileSystem, str]:
    """A pyarrow file system and the root inside it, for a folder or any URL pyarrow or fsspec knows."""
    if "://" not in path:
        local = resolve(path) if resolve else path
        return pafs.LocalFileSystem(), str(local)
    try:
        if options:
            raise pa.ArrowInvalid("options given: build the file system explicitly")
        return pafs.FileSystem.from_uri(path)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError):
        scheme = path.split("://", 1)[0]
        if scheme == "s3" and not _needs_fsspec(options):
            bucket_path = path.split("://", 1)[1]
            return pafs.S3FileSystem(**options), bucket_path
        import fsspec  # any other scheme (or options pyarrow does not take): through fsspec

        fs, root = fsspec.core.url_to_fs(path, **options)
        return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), root


def _needs_fsspec(options: dict[str, Any]) -> bool:
    import inspect

    accepted = set(inspect.signature(pafs.S3FileSystem).parameters)
    return not set(options) <= accepted


def _partition_date(record: rcetl.Record) -> str:
    return record.occurred_at.strftime("%Y-%m-%d") if record.occurred_at else "unknown"


class ParquetSink(rcetl.RecordSink):
    config_model = ParquetConfig
    description = "Records as Parquet files partitioned by stream and date (local, S3, GCS, HDFS)"
    config: ParquetConfig

    def __init__(self, name: str, config: ParquetConfig, ctx: rcetl.RunContext) -> None:
        super().__init__(name, config, ctx)
        self.fs, self.root = open_filesystem(config.path, config.filesystem_options, ctx.resolve)

    def open(self) -> None:
        try:
            self.fs.create_dir(self.root, recursive=True)
        except OSError as exc:
            raise rcetl.ConfigError(f"{self.name}: cannot create {self.config.path}: {exc}",
                                    hint="check the path and the credentials of its file system") from exc

    def check(self) -> None:
        self.open()
        probe = posixpath.join(self.root, f"_rcetl-check-{uuid.uuid4().hex}")
        try:
            with self.fs.open_output_stream(probe) as out:
                out.write(b"ok")
            self.fs.delete_file(probe)
        except OSError as exc:
            raise rcetl.ConfigError(f"{self.name}: cannot write to {self.config.path}: {exc}",
                                    hint="check permissions on the folder or bucket") from exc

    # --- writing ------------------------------------------------------------------------------

    def partition_dir(self, stream: str, date: str) -> str:
        return posixpath.join(self.root, f"stream={rcetl.sanitize_component(stream)}", f"date={date}")

    def write(self, records: Sequence[rcetl.ArchivedRecord]) -> None:
        # Every row is built before anything is written: an interrupted batch leaves no file.
        partitions: dict[tuple[str, str], dict[tuple[str, str], dict[str, Any]]] = {}
        for item in records:
            rec = item.record
            rows = partitions.setdefault((rec.stream, _partition_date(rec)), {})
            rows[(rec.account, json.dumps(rec.key))] = {  # the last version of a key in a batch wins
                "account": rec.account,
                "key": str(rec.key),
                "key_type": "int" if isinstance(rec.key, int) else "str",
                "occurred_at": rec.occurred_at,
                "deleted": rec.deleted,
                "data": json.dumps(rec.data, ensure_ascii=False, sort_keys=True, separators=(",", ":")),
                "archive": json.dumps(item.archive_json(), sort_keys=True, separators=(",", ":")),
            }
        written_at = time.time_ns()
        for (stream, date), rows in partitions.items():
            self._write_file(stream, date, list(rows.values()), written_at)

    def _write_file(self, stream: str, date: str, rows: list[dict[str, Any]], written_at: int) -> None:
        digest = hashlib.sha256(json.dumps(rows, default=str, sort_keys=True).encode()).hexdigest()[:32]
        folder = self.partition_dir(stream, date)
        final = posixpath.join(folder, f"part-{digest}.parquet")
        if self.fs.get_file_info(final).type != pafs.FileType.NotFound:
            return  # the same rows are already in the lake: re-delivery writes nothing
        table = pa.Table.from_pylist([{**r, "written_at": written_at} for r in rows], schema=SCHEMA)
        self.fs.create_dir(folder, recursive=True)
        tmp = posixpath.join(folder, f".part-{digest}-{uuid.uuid4().hex[:8]}.tmp")
        pq.write_table(table, tmp, filesystem=self.fs,
                       compression=None if self.config.compression == "none" else self.config.compression)
        self.fs.move(tmp, final)

    # --- reading back -------------------------------------------------------------------------

    def files(self, stream: str) -> list[str]:
        base = posixpath.join(self.root, f"stream={rcetl.sanitize_component(stream)}")
        if self.fs.get_file_info(base).type == pafs.FileType.NotFound:
            return []
        infos = self.fs.get_file_info(pafs.FileSelector(base, recursive=True))
        return sorted(i.path for i in infos if i.type == pafs.FileType.File and i.base_name.startswith("part-")
                      and i.base_name.endswith(".parquet"))

    def latest(self, stream: str) -> dict[tuple[str, str], dict[str, Any]]:
        """The dedupe view of one stream: the latest row per (account, key)."""
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for path in self.files(stream):
            for row in pq.read_table(path, filesystem=self.fs, schema=SCHEMA).to_pylist():
                k = (row["account"], row["key_type"] + ":" + row["key"])
                if k not in out or row["written_at"] >= out[k]["written_at"]:
                    out[k] = row
        return out

    def archived(self, stream: str, account: str | None = None) -> Iterator[rcetl.ArchivedEntry]:
        for row in self.latest(stream).values():
            if account is not None and row["account"] != account:
                continue
            key: rcetl.Key = int(row["key"]) if row["key_type"] == "int" else row["key"]
            yield rcetl.ArchivedEntry(stream=stream, key=key, account=row["account"],
                                      archive=json.loads(row["archive"]), deleted=bool(row["deleted"]))

    def compact(self, stream: str) -> tuple[int, int]:
        """Rewrite each date partition of ``stream`` as one file of its latest rows; returns
        (files before, files after). Safe to interrupt: old files go only after the new one exists."""
        before = self.files(stream)
        by_date: dict[str, list[dict[str, Any]]] = {}
        for row in self.latest(stream).values():
            by_date.setdefault(row["occurred_at"].strftime("%Y-%m-%d") if row["occurred_at"] else "unknown",
                               []).append(row)
        kept = set()
        for date, rows in by_date.items():
            newest = max(r["written_at"] for r in rows)
            stripped = [{k: v for k, v in r.items() if k != "written_at"} for r in rows]
            self._write_file(stream, date, stripped, newest)
            digest = hashlib.sha256(json.dumps(stripped, default=str, sort_keys=True).encode()).hexdigest()[:32]
            kept.add(posixpath.join(self.partition_dir(stream, date), f"part-{digest}.parquet"))
        for path in before:
            if path not in kept:
                self.fs.delete_file(path)
        return len(before), len(self.files(stream))
