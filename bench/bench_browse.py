"""How fast `rcetl browse` answers a search on a big archive, against a bare indexed SQL query.

For SQLite and PostgreSQL: an archive of N calls (1,000,000 in the full run, 100,000 with --quick)
in the sql sink's own tables (created by the sink, so its indexes are the ones measured), then
searches by phone number written the way people write them ("(650) 555-0123"):

- browse: a full page request through the browse WSGI app (parse, normalise, query, render HTML);
- bare:   the plainest indexed query for the same rows (``WHERE from_e164 = ? OR to_e164 = ?
          ORDER BY start_time DESC LIMIT 51``) on the same connection pool.

Figures: the median browse time (target < 200 ms) and browse / bare as a ratio of medians.

    .venv/bin/python -m bench.bench_browse [--quick] [--calls N] [--postgres URL]

Writes bench/results/browse.json. A database that cannot be reached is reported as skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

import rcetl

from .common import RESULTS, Figure

NUMBERS = 50_000  # distinct external numbers: ~20 calls each per 1M
QUERIES = 60
CHUNK = 20_000


def number(i: int) -> str:
    return f"+1650{2000000 + i:07d}"


def written(e164: str) -> str:
    d = e164[2:]
    return f"({d[:3]}) {d[3:6]}-{d[6:]}"


def open_sink(url: str, prefix: str, tmp: Path) -> Any:
    from rcetl.registry import get_plugin_manager

    sink = get_plugin_manager().sinks()["sql"].build("archive", {"url": url, "table_prefix": prefix},
                                                    rcetl.RunContext.standalone(tmp, "bench"))
    sink.open()
    return sink


def fill(sink: Any, calls: int, seed: int = 7) -> None:
    """N call rows through the sink's own tables (typed columns and a small raw JSON)."""
    rng = random.Random(seed)
    table = sink.tables.call_log
    start = datetime(2026, 1, 1)
    postgres = sink.engine.dialect.name == "postgresql"
    with sink.engine.begin() as conn:
        for base in range(0, calls, CHUNK):
            rows = []
            for i in range(base, min(base + CHUNK, calls)):
                ext, other = f"+1650555{i % 1000:04d}", number(rng.randrange(NUMBERS))
                inbound = i % 2 == 0
                src, dst = (other, ext) if inbound else (ext, other)
                rows.append({"account": "1", "id": f"C{i:09d}", "start_time": start + timedelta(seconds=20 * i),
                             "duration": i % 600, "type": "Voice", "direction": "Inbound" if inbound else "Outbound",
                             "result": "Accepted", "from_number": src, "from_e164": src, "to_number": dst,
                             "to_e164": dst, "from_name": f"Caller {i % 977}", "extension_id": 1000 + i % 50,
                             "deleted": False, "raw": {"id": f"C{i:09d}"}})
            if postgres:  # COPY: a million rows in seconds (the fill is set-up, not what is measured)
                cols = list(rows[0])
                with conn.connection.cursor() as cur, cur.copy(
                        f"COPY {table.name} ({', '.join(cols)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row([json.dumps(row[k]) if k == "raw" else row[k] for k in cols])
            else:
                conn.execute(sa.insert(table), rows)
    if postgres:
        with sink.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql(f"ANALYZE {table.name}")
    else:
        with sink.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")


def measure(sink: Any, queries: int, seed: int = 11) -> dict[str, float]:
    from werkzeug.test import Client

    from rcetl.plugins.browse.sql_index import SqlArchiveIndex
    from rcetl.plugins.browse.web import BrowseApp

    client = Client(BrowseApp(name="bench", index=SqlArchiveIndex(sink), blob_sinks={}))
    c = sink.tables.call_log.c
    rng = random.Random(seed)
    picks = [number(rng.randrange(NUMBERS)) for _ in range(queries)]
    bare_times, browse_times, found = [], [], 0
    for e164 in picks:
        stmt = (sa.select(c.account, c.id, c.start_time).where(sa.or_(c.from_e164 == e164, c.to_e164 == e164))
                .order_by(c.start_time.desc(), c.id.desc()).limit(51))
        t0 = time.perf_counter()
        with sink.engine.connect() as conn:
            found += len(conn.execute(stmt).all())
        bare_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        response = client.get("/", query_string={"phone": written(e164), "kind": "call"})
        browse_times.append(time.perf_counter() - t0)
        assert response.status_code == 200, response.text[:300]
    bare, browse = statistics.median(bare_times), statistics.median(browse_times)
    return {"browse_ms": round(browse * 1000, 2), "bare_ms": round(bare * 1000, 3),
            "ratio": round(browse / bare, 1), "rows_found": found, "queries": queries}


def run_one(name: str, url: str, calls: int, tmp: Path) -> dict[str, Any]:
    prefix = f"bb{uuid.uuid4().hex[:6]}_"
    sink = open_sink(url, prefix, tmp)
    try:
        t0 = time.perf_counter()
        fill(sink, calls)
        filled = time.perf_counter() - t0
        out = {"database": name, "calls": calls, "fill_s": round(filled, 1), **measure(sink, QUERIES)}
    finally:
        if name != "sqlite":
            sink.tables.metadata.drop_all(sink.engine)
        sink.close()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100,000 calls instead of 1,000,000")
    ap.add_argument("--calls", type=int, default=None)
    ap.add_argument("--postgres", default=os.environ.get("RCETL_TEST_POSTGRES_URL",
                                                         "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    args = ap.parse_args(argv)
    calls = args.calls or (100_000 if args.quick else 1_000_000)
    rows, skipped = [], {}
    with tempfile.TemporaryDirectory(prefix="rcetl-bench-browse-") as tmp:
        for name, url in (("sqlite", f"sqlite:///{tmp}/archive.db"), ("postgresql", args.postgres)):
            try:
                rows.append(run_one(name, url, calls, Path(tmp)))
            except sa.exc.OperationalError as exc:
                skipped[name] = str(exc).splitlines()[0][:200]
                continue
            r = rows[-1]
            print(f"{name}: {calls:,} calls, browse median {r['browse_ms']} ms, bare indexed query "
                  f"{r['bare_ms']} ms (x{r['ratio']}), filled in {r['fill_s']} s", flush=True)
    figures = []
    for r in rows:
        figures.append(Figure("browse", f"search {r['calls']:,} calls by phone, median ({r['database']})",
                              r["browse_ms"], 200, "<=", "ms", note=f"bare indexed query {r['bare_ms']} ms"))
        figures.append(Figure("browse", f"browse page / bare indexed query ({r['database']})", r["ratio"],
                              None, unit="x", gate=False, note="parse, normalise, query, render vs the query"))
    for f in figures:
        verdict = "" if f.met is None else ("met" if f.met else "MISSED")
        print(f"   {f.name}: {f.value} {f.unit} {verdict}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "browse.json").write_text(json.dumps(
        {"figures": [vars(f) for f in figures], "databases": rows, "skipped": skipped}, indent=2, default=str))
    return 0 if all(f.met is not False for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
