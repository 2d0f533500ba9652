"""The ``parquet`` record sink: small on purpose, to show how a third-party sink is written.

What it teaches (see the README): a sink is one class with its options (``config_model``) and a
description declared on it; ``write`` must be idempotent because rcetl delivers at least once, and
durable on return; ``archived`` lets ``rcetl verify`` and the contract suite read the sink back.

How this one gets there on an append-only format: a batch's rows of one (stream, date) partition go
to ``part-<sha256 of the rows>.parquet``, so a re-delivered batch has the same name, which exists:
nothing is written twice. A changed record is a new row with a later ``written_at``; readers keep
the latest row per key (:data:`DEDUPE_SQL`). A file is written under a hidden name and moved into
place, so readers never see half of one. For a production lake (typed schema, one row per key,
S3/GCS/HDFS), use rcetl's built-in ``lake`` sink.
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
    pa.field("key_type", pa.string()),    # "int" or "str": 64-bit ids come back exact
    pa.field("occurred_at", pa.timestamp("us", tz="UTC")),
    pa.field("deleted", pa.bool_()),
    pa.field("data", pa.string()),        # the API's JSON, verbatim
    pa.field("archive", pa.string()),     # where the binaries went, with their SHA-256 (JSON)
    pa.field("written_at", pa.int64()),   # ns since the epoch: the latest write of a key wins
])

#: The dedupe view over the files (DuckDB syntax; Spark and Athena have the same window function).
DEDUPE_SQL = """\
SELECT * EXCLUDE (rn) FROM (
  SELECT *, row_number() OVER (PARTITION BY stream, account, key ORDER BY written_at DESC) AS rn
  FROM read_parquet('{root}/stream=*/date=*/*.parquet', hive_partitioning = true)
) WHERE rn = 1"""


class ParquetSink(rcetl.RecordSink):
    config_model = ParquetConfig
    description = "Example third-party sink: records as append-only Parquet files (use the built-in lake in production)"
    config: ParquetConfig

    def open(self) -> None:
        # The file system is resolved when the sink opens (a URI's credentials are read then).
        if "://" in self.config.path:
            self.fs, self.root = pafs.FileSystem.from_uri(self.config.path)
        else:
            self.fs, self.root = pafs.LocalFileSystem(), str(self.ctx.resolve(self.config.path))
        try:
            self.fs.create_dir(self.root, recursive=True)
        except OSError as exc:
            raise rcetl.ConfigError(f"{self.name}: cannot create {self.config.path}: {exc}",
                                    hint="check the path and the credentials of its file system") from exc

    def partition_dir(self, stream: str, date: str) -> str:
        return posixpath.join(self.root, f"stream={rcetl.sanitize_component(stream)}", f"date={date}")

    def write(self, records: Sequence[rcetl.ArchivedRecord]) -> None:
        # Every row is built before anything is written: an interrupted batch leaves no file.
        partitions: dict[tuple[str, str], dict[tuple[str, str], dict[str, Any]]] = {}
        for item in records:
            rec = item.record
            date = rec.occurred_at.strftime("%Y-%m-%d") if rec.occurred_at else "unknown"
            partitions.setdefault((rec.stream, date), {})[(rec.account, json.dumps(rec.key))] = {
                "account": rec.account, "key": str(rec.key),
                "key_type": "int" if isinstance(rec.key, int) else "str",
                "occurred_at": rec.occurred_at, "deleted": rec.deleted,
                "data": json.dumps(rec.data, sort_keys=True, separators=(",", ":")),
                "archive": json.dumps(item.archive_json(), sort_keys=True, separators=(",", ":")),
            }  # the last version of a key in a batch wins
        written_at = time.time_ns()
        for (stream, date), rows in partitions.items():
            self._write_file(stream, date, list(rows.values()), written_at)

    def _write_file(self, stream: str, date: str, rows: list[dict[str, Any]], written_at: int) -> None:
        digest = hashlib.sha256(json.dumps(rows, default=str, sort_keys=True).encode()).hexdigest()[:32]
        folder = self.partition_dir(stream, date)
        final = posixpath.join(folder, f"part-{digest}.parquet")
        if self.fs.get_file_info(final).type != pafs.FileType.NotFound:
            return  # the same rows are already there: a re-delivered batch writes nothing
        table = pa.Table.from_pylist([{**r, "written_at": written_at} for r in rows], schema=SCHEMA)
        self.fs.create_dir(folder, recursive=True)
        tmp = posixpath.join(folder, f".part-{digest}-{uuid.uuid4().hex[:8]}.tmp")
        pq.write_table(table, tmp, filesystem=self.fs, compression=self.config.compression)
        self.fs.move(tmp, final)

    def archived(self, stream: str, account: str | None = None) -> Iterator[rcetl.ArchivedEntry]:
        base = posixpath.join(self.root, f"stream={rcetl.sanitize_component(stream)}")
        infos = self.fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
        latest: dict[tuple[str, str, str], dict[str, Any]] = {}
        for info in infos:
            if info.base_name.startswith("part-") and info.base_name.endswith(".parquet"):
                for row in pq.read_table(info.path, filesystem=self.fs, schema=SCHEMA).to_pylist():
                    k = (row["account"], row["key_type"], row["key"])
                    if k not in latest or row["written_at"] >= latest[k]["written_at"]:
                        latest[k] = row
        for row in latest.values():
            if account is None or row["account"] == account:
                key: rcetl.Key = int(row["key"]) if row["key_type"] == "int" else row["key"]
                yield rcetl.ArchivedEntry(stream=stream, key=key, account=row["account"],
                                          archive=json.loads(row["archive"]), deleted=bool(row["deleted"]))
