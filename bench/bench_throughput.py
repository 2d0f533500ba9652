"""Throughput outside the API: rcetl against a bare `requests` loop (the ceiling) and against dlt's
`rest_api` source (a peer), on the same sandbox with no rate limits, in the same run.

* records: the call log (100,000 records in the full run) read page by page. The bare loop only
  fetches and parses the pages; rcetl archives them into SQLite (typed columns, legs, upserts,
  checkpoints); dlt's `rest_api` source loads the same pages into DuckDB.
* binaries: 10,000 recordings. The bare loop lists the recorded calls and downloads every content
  URI with the same number of threads as rcetl's `executor.downloads` (8), discarding the bytes;
  rcetl streams each to a spool file, hashes it, stores it in a folder with a JSON sidecar and
  writes its row. (A single-threaded loop is slower still: ~20 files/s here, so the threaded one is
  the ceiling that counts.)

Every contender is a subprocess of its own (rcetl via `rcetl run`), timed from start to exit.

    .venv/bin/python -m bench.bench_throughput [--quick]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from .common import (
    UNLIMITED,
    Figure,
    cli,
    mb,
    measure,
    rcetl_run,
    sandbox_env,
    streams_count,
    write_pipeline,
)

DOWNLOADS = 8  # rcetl's default executor.downloads
BACKFILL_DAYS = 395  # rcetl's default first-run reach (13 months)
WINDOW_DAYS = 30


# --- the children -------------------------------------------------------------------------------


def _token(session: Any, env: dict[str, str]) -> str:
    r = session.post(env["RC_SERVER"] + "/restapi/oauth/token", auth=(env["RC_CLIENT_ID"], env["RC_CLIENT_SECRET"]),
                     data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": env["RC_JWT"]})
    r.raise_for_status()
    return r.json()["access_token"]


def _windows() -> list[tuple[str, str]]:
    now = datetime.now(timezone.utc)
    start = now - timedelta(days=BACKFILL_DAYS)
    out = []
    while start < now:
        end = min(start + timedelta(days=WINDOW_DAYS), now)
        out.append((start.strftime("%Y-%m-%dT%H:%M:%S.000Z"), end.strftime("%Y-%m-%dT%H:%M:%S.000Z")))
        start = end
    return out


def _pages(session: Any, url: str, params: dict[str, Any]):
    """The call log, page by page (nextPage until there is none), in rcetl's dated windows."""
    for date_from, date_to in _windows():
        next_url: str | None = url
        p: dict[str, Any] | None = {**params, "dateFrom": date_from, "dateTo": date_to}
        while next_url:
            r = session.get(next_url, params=p)
            r.raise_for_status()
            body = json.loads(r.content)
            yield body, len(r.content)
            next_url = ((body.get("navigation") or {}).get("nextPage") or {}).get("uri")
            p = None


def child_bare(mode: str, threads: int) -> dict[str, Any]:
    """The ceiling: fetch the same pages and binaries, keep nothing."""
    import requests

    env = os.environ
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_maxsize=max(threads, 1))
    session.mount("http://", adapter)
    session.headers["Authorization"] = f"Bearer {_token(session, env)}"
    url = env["RC_SERVER"] + "/restapi/v1.0/account/~/call-log"
    params = {"view": "Detailed", "perPage": 1000, "showDeleted": "true",
              "withRecording": "true" if mode == "binaries" else "false"}
    records = page_bytes = 0
    uris: list[str] = []
    for body, size in _pages(session, url, params):
        page_bytes += size
        for rec in body.get("records") or []:
            records += 1
            if mode == "binaries":
                for holder in [rec, *(rec.get("legs") or [])]:
                    r = holder.get("recording")
                    if r and r.get("contentUri"):
                        uris.append(r["contentUri"])
    uris = list(dict.fromkeys(uris))
    binary_bytes = files = 0

    def fetch(uri: str) -> int:
        n = 0
        with session.get(uri, stream=True) as r:
            if r.status_code == 404:
                return -1
            r.raise_for_status()
            for chunk in r.iter_content(1 << 20):
                n += len(chunk)
        return n

    if uris:
        if threads <= 1:
            sizes = [fetch(u) for u in uris]
        else:
            with ThreadPoolExecutor(threads) as pool:
                sizes = list(pool.map(fetch, uris))
        files = sum(1 for s in sizes if s >= 0)
        binary_bytes = sum(s for s in sizes if s > 0)
    return {"records": records, "page_bytes": page_bytes, "files": files, "binary_bytes": binary_bytes}


def child_dlt(workdir: str) -> dict[str, Any]:
    """The peer: dlt's rest_api source, the same call-log pages, into DuckDB."""
    import dlt
    import requests
    from dlt.sources.rest_api import rest_api_source

    env = os.environ
    token = _token(requests.Session(), env)
    windows = _windows()
    source = rest_api_source({
        "client": {
            "base_url": env["RC_SERVER"] + "/restapi/v1.0/account/~/",
            "auth": {"type": "bearer", "token": token},
            "paginator": {"type": "json_link", "next_url_path": "navigation.nextPage.uri"},
        },
        "resource_defaults": {"write_disposition": "merge", "primary_key": "id"},
        "resources": [{
            "name": "call_log",
            "endpoint": {"path": "call-log", "data_selector": "records",
                         "params": {"view": "Detailed", "perPage": 1000, "showDeleted": "true",
                                    "withRecording": "false", "dateFrom": windows[0][0], "dateTo": windows[-1][1]}},
        }],
    })
    pipeline = dlt.pipeline(pipeline_name="bench_call_log", pipelines_dir=str(Path(workdir) / "dlt"),
                            destination=dlt.destinations.duckdb(str(Path(workdir) / "calls.duckdb")),
                            dataset_name="ringcentral", progress=None)
    pipeline.run(source)
    with pipeline.sql_client() as client:
        rows = client.execute_sql("SELECT count(*) FROM call_log")[0][0]
    return {"records": int(rows)}


# --- the benchmark -------------------------------------------------------------------------------


def _child(args: list[str], env: dict[str, str]) -> tuple[dict[str, Any], float, int]:
    m = measure([sys.executable, "-m", "bench.bench_throughput", "child", *args], env=env,
                cwd=Path(__file__).resolve().parents[1], interval=0.1)
    if m.rc != 0:
        raise RuntimeError(f"child {args} exited {m.rc}: {m.stderr[-1500:]}")
    return json.loads(m.stdout.strip().splitlines()[-1]), m.wall, m.peak_rss


def dlt_available() -> str | None:
    try:
        import dlt  # noqa: F401
        import duckdb  # noqa: F401
    except ImportError as exc:
        return f"dlt[duckdb] is not installed ({exc}); `pip install 'dlt[duckdb]'` or `pip install -e '.[bench]'`"
    return None


def run(quick: bool) -> tuple[list[Figure], dict[str, Any]]:
    from rcetl.sandbox import Sandbox

    calls, recordings = (5_000, 500) if quick else (100_000, 10_000)
    raw: dict[str, Any] = {"calls": calls, "recordings": recordings}
    figures: list[Figure] = []
    b = "throughput"
    with Sandbox(seed=21, size="tiny", calls=calls, recordings=recordings, messages=0, **UNLIMITED) as sb:
        env = sandbox_env(sb)
        with tempfile.TemporaryDirectory(prefix="rcetl-bench-") as tmp:
            # records: call log -> SQLite
            pipe = write_pipeline(Path(tmp) / "records", time_scale=1, sources={"call-log": {}},
                                  sinks={"db": {"plugin": "sqlite", "url": "sqlite:///archive.db"}})
            bare, bare_s, _ = _child(["bare", "records", "1"], env)
            m = rcetl_run(pipe, env, interval=0.1)
            rc_records = streams_count(m.summary or {}, "call-log")
            raw["records"] = {"bare": {**bare, "seconds": bare_s}, "rcetl": {"records": rc_records, "seconds": m.wall,
                                                                              "peak_rss_mb": mb(m.peak_rss)}}
            page_mb = mb(bare["page_bytes"])
            bare_rps, rc_rps = bare["records"] / bare_s, rc_records / m.wall
            figures.append(Figure(b, "call-log records/s, rcetl (into SQLite) / bare requests loop", round(rc_rps / bare_rps, 3),
                                  0.7, ">=", "x", margin=0.15,
                                  note=f"rcetl {rc_rps:,.0f} rec/s ({page_mb * rc_records / max(1, bare['records']) / m.wall:.1f} MB/s "
                                       f"of JSON); bare loop {bare_rps:,.0f} rec/s ({page_mb / bare_s:.1f} MB/s); "
                                       f"{rc_records:,} records"))
            why = dlt_available()
            if quick:
                why = why or "dlt runs in --full only (its start-up alone is longer than the quick budget)"
                raw["records"]["dlt"] = {"skipped": why}
            elif why is None:
                dlt_out, dlt_s, dlt_rss = _child(["dlt", str(Path(tmp) / "dlt")], env)
                dlt_rps = dlt_out["records"] / dlt_s
                raw["records"]["dlt"] = {**dlt_out, "seconds": dlt_s, "peak_rss_mb": mb(dlt_rss)}
                figures.append(Figure(b, "call-log records/s, rcetl (SQLite) / dlt rest_api (DuckDB)",
                                      round(rc_rps / dlt_rps, 2), 2.0, ">=", "x", margin=0.5,
                                      note=f"dlt {dlt_rps:,.0f} rec/s ({page_mb * dlt_out['records'] / max(1, bare['records']) / dlt_s:.1f} MB/s), "
                                           f"{dlt_out['records']:,} rows, peak RSS {mb(dlt_rss):.0f} MB; "
                                           f"rcetl peak RSS {mb(m.peak_rss):.0f} MB"))
            else:
                raw["records"]["dlt"] = {"skipped": why}
                figures.append(Figure(b, "call-log records/s, rcetl / dlt rest_api", None, 2.0, ">=", "x", note=why))
            if quick:
                figures.append(Figure(b, "call-log records/s, rcetl / dlt rest_api", None, 2.0, ">=", "x", note=why))

            # binaries: recordings -> folder (+ their rows in SQLite)
            pipe = write_pipeline(Path(tmp) / "binaries", time_scale=1, sources={"recording": {}},
                                  sinks={"db": {"plugin": "sqlite", "url": "sqlite:///archive.db"},
                                         "files": {"plugin": "filesystem", "path": "files"}})
            bare_t, bare_t_s, _ = _child(["bare", "binaries", str(DOWNLOADS)], env)
            m = rcetl_run(pipe, env, interval=0.1)
            s = (m.summary or {}).get("streams", {}).get("recording", {})
            rc_files, rc_bytes = int(s.get("files", 0)), int(s.get("bytes", 0))
            raw["binaries"] = {"bare_threads": {**bare_t, "seconds": bare_t_s},
                               "rcetl": {"files": rc_files, "bytes": rc_bytes, "seconds": m.wall, "peak_rss_mb": mb(m.peak_rss)}}
            ceiling_fps = bare_t["files"] / bare_t_s
            rc_fps = rc_files / m.wall
            figures.append(Figure(b, "recordings/s, rcetl (folder + SQLite) / bare requests loop", round(rc_fps / ceiling_fps, 3),
                                  0.7, ">=", "x", margin=0.15,
                                  note=f"rcetl {rc_fps:,.0f} files/s, {mb(rc_bytes) / m.wall:.1f} MB/s; bare loop "
                                       f"{bare_t['files'] / bare_t_s:,.0f} files/s with {DOWNLOADS} threads "
                                       f"({mb(bare_t['binary_bytes']) / bare_t_s:.1f} MB/s); "
                                       f"{rc_files:,} files"))
    return figures, raw


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        kind = sys.argv[2]
        start = time.perf_counter()
        out = child_bare(sys.argv[3], int(sys.argv[4])) if kind == "bare" else child_dlt(sys.argv[3])
        out["inner_seconds"] = time.perf_counter() - start
        print(json.dumps(out))
        return
    cli("throughput", __doc__, run)

if __name__ == "__main__":
    main()
