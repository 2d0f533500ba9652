"""How fast the SQL sink archives, against the plainest bulk insert of the same rows.

For SQLite, MariaDB/MySQL and PostgreSQL: rows per second through ``SqlSink.write`` (mapping the
API JSON to typed rows, native upserts, replacing children, one transaction per batch) and through
a plain ``executemany`` of one INSERT with the same, already mapped rows into identical tables. The
ratio is the figure (aim: >= 0.8). Re-archiving the same batch (all conflicts, nothing changes) is
reported too.

    .venv/bin/python bench/bench_db_sinks.py [--quick] [--mysql URL] [--postgres URL]

Prints a Markdown table and writes bench/results/db_sinks.json. A database that cannot be reached
is reported as skipped, not failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for tests/sinks_db/dataset.py, the realistic record builder

import sqlalchemy as sa  # noqa: E402

import rcetl  # noqa: E402
from rcetl.plugins.sinks.sql import plugin  # noqa: E402
from rcetl.plugins.sinks.sql.rows import to_rows  # noqa: E402
from tests.sinks_db.dataset import make_dataset  # noqa: E402

BATCH = 1000


def records(n_calls: int, n_messages: int) -> list[rcetl.ArchivedRecord]:
    return make_dataset(calls=n_calls, messages=n_messages).records


def row_count(batch: list[rcetl.ArchivedRecord]) -> int:
    return sum(len(rows) for rows in to_rows(batch).rows.values())


def make_sink(name: str, url: str, prefix: str, tmp: Path):
    spec = {s.name: s for s in plugin.rcetl_sinks()}[name]
    ctx = rcetl.RunContext(pipeline="bench", budgets=None, coordinator=None, spool_dir=tmp, base_dir=tmp)  # type: ignore[arg-type]
    sink = spec.factory("bench", spec.config.model_validate({"url": url, "table_prefix": prefix}), ctx)
    sink.open()
    return sink


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_backend(name: str, url: str, data: list[rcetl.ArchivedRecord], tmp: Path) -> dict:
    tag = uuid.uuid4().hex[:8]
    sink = make_sink(name, url, f"b{tag}_", tmp)
    plain = make_sink(name, url, f"p{tag}_", tmp)  # identical tables for the baseline
    batches = [data[i : i + BATCH] for i in range(0, len(data), BATCH)]
    rows = row_count(data)
    try:
        sink_s = timed(lambda: [sink.write(b) for b in batches])
        rewrite_s = timed(lambda: [sink.write(b) for b in batches])
        mapped = [to_rows(b) for b in batches]  # the baseline gets its rows for free

        def plain_insert() -> None:
            for batch in mapped:
                with plain.engine.begin() as conn:
                    for table, table_rows in batch.rows.items():
                        conn.execute(getattr(plain.tables, table).insert(), table_rows)

        plain_s = timed(plain_insert)
    finally:
        for s in (sink, plain):
            with s.engine.begin() as conn:
                for table in reversed(s.tables.metadata.sorted_tables):
                    table.drop(conn, checkfirst=True)
            s.close()
    return {
        "database": name,
        "records": len(data),
        "rows": rows,
        "sink_rows_per_s": round(rows / sink_s),
        "executemany_rows_per_s": round(rows / plain_s),
        "ratio": round(plain_s / sink_s, 2),
        "rewrite_rows_per_s": round(rows / rewrite_s),
    }


def reachable(url: str) -> str | None:
    try:
        with sa.create_engine(url).connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "skip this database"
        return str(exc).splitlines()[0][:120]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small data set (seconds, for CI)")
    parser.add_argument("--mysql", default=os.environ.get("RCETL_TEST_MYSQL_URL",
                                                          "mysql+pymysql://root@127.0.0.1:3306/test"))
    parser.add_argument("--postgres", default=os.environ.get("RCETL_TEST_POSTGRES_URL",
                                                             "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()
    n_calls, n_messages = (600, 400) if args.quick else (6000, 4000)
    data = records(n_calls, n_messages)
    results, skipped = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        targets = [("sqlite", str(Path(tmp) / "bench.sqlite")), ("mysql", args.mysql), ("postgres", args.postgres)]
        for name, url in targets:
            why = None if name == "sqlite" else reachable(url)
            if why:
                skipped[name] = why
                continue
            results.append(bench_backend(name, url, data, Path(tmp)))

    print(f"\n{len(data)} records ({n_calls} calls with legs, recordings, {n_messages} messages with attachments)\n")
    print("| database | rows | sink rows/s | executemany rows/s | ratio | re-archive rows/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['database']} | {r['rows']} | {r['sink_rows_per_s']} | {r['executemany_rows_per_s']} | "
              f"{r['ratio']} | {r['rewrite_rows_per_s']} |")
    for name, why in skipped.items():
        print(f"| {name} | skipped: {why} | | | | |")
    out = ROOT / "bench" / "results" / "db_sinks.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"quick": args.quick, "batch": BATCH, "results": results, "skipped": skipped},
                              indent=2) + "\n")
    print(f"\nwritten {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
