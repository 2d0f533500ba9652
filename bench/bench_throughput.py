"""Throughput outside the API: rcetl against a bare `requests` loop (the ceiling) and against dlt's
`rest_api` source (a peer), on the same sandbox with no rate limits, in the same run.

* records: the call log (100,000 records in the full run, 50,000 in --quick) read page by page.
  The bare loop only fetches and parses the pages; rcetl archives them into SQLite, MariaDB and
  PostgreSQL (typed columns, legs, upserts, checkpoints) against a hand-written script into the
  same database, 3 pairs run alternately (script, rcetl, script, ...), the median pair's ratio the
  figure (one pair swings 2.5x on a busy machine); dlt's `rest_api` source loads the same pages
  into DuckDB.
* binaries: 10,000 recordings of a few KB (5,000 in --quick), and 1,000 of 1 MiB (200 in --quick).
  Plain loops list the recorded calls and download every content URI with 8 threads, rcetl's
  default `executor.downloads` (rcetl runs as configured by default: 8 download threads, of which
  its latency limit keeps as many downloading as shorten the run, 3-4 against this sandbox; see
  docs/pipeline-format.md, "Downloads at once"): the one the gated figure divides by writes each
  download into a file of its own in one folder (`open(path, 'wb')`, write the chunks, close: what a
  plain script does; no fsync, so none of its files is known to be on disk when it exits); a
  durable one also hashes each file on the way in and fsyncs it (informational: the least an
  archiver pays for durability and proof); one keeps nothing (informational: the ceiling of the
  transfer alone). rcetl streams each to a spool file, hashes it, checks its content, stores it in
  a folder with a JSON sidecar (fsynced before any record names it) and writes its row. Loops and
  rcetl run in alternating rounds (5; 3 with 1 MiB), the median round's ratio the figure. (A single-threaded loop
  is slower still: ~20 files/s here, so the threaded ones are the ceilings that count.) Their
  folders are made where the file system has room nobody just freed (see `_fresh_inode_group`).

Every contender is a subprocess of its own (rcetl via `rcetl run`), timed from start to exit.

    .venv/bin/python -m bench.bench_throughput [--quick] [--only records|binaries] [--calls N] [--db sqlite,postgres,mysql,dlt]

``--only``, ``--calls`` and ``--db`` are for working on one part (the runner never passes them).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
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
    Measured,
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
PAIRS = 3  # script/rcetl pairs per database on the record path (their median ratio is the figure)


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


def name_recordings(rec: dict[str, Any], names: dict[str, str]) -> None:
    """Add to ``names`` (content URI -> file name) the recordings of a call-log record and its legs."""
    for holder in [rec, *(rec.get("legs") or [])]:
        r = holder.get("recording")
        if r and r.get("contentUri"):
            names.setdefault(r["contentUri"], f"{r['id']}.mp3")


def child_bare(mode: str, threads: int, folder: str | None = None, durable: bool = False) -> dict[str, Any]:
    """The ceiling: fetch the same pages and binaries and keep nothing; or, with ``folder``, the
    plain download loop of the issue: each thread streams each download into a file of its own in
    ``folder`` (``open(path, 'wb')``, write the chunks, close; no fsync, as a plain script has).
    ``durable``: the same loop paying for what durability and proof cost at the least (each file's
    SHA-256 computed on the way in, the file fsynced before it is closed): the like-for-like
    baseline of the part of rcetl's cost that no archiver worth the name can skip."""
    import hashlib

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
    names: dict[str, str] = {}  # content URI -> the file it goes to (with ``folder``)
    for body, size in _pages(session, url, params):
        page_bytes += size
        for rec in body.get("records") or []:
            records += 1
            if mode == "binaries":
                name_recordings(rec, names)
    uris = list(names)
    binary_bytes = files = 0

    def fetch(uri: str) -> int:
        n = 0
        with session.get(uri, stream=True) as r:
            if r.status_code == 404:
                return -1
            r.raise_for_status()
            if folder is None:
                for chunk in r.iter_content(1 << 20):
                    n += len(chunk)
            else:
                sha = hashlib.sha256() if durable else None
                with open(os.path.join(folder, names[uri]), "wb") as fh:
                    for chunk in r.iter_content(1 << 20):
                        fh.write(chunk)
                        if sha is not None:
                            sha.update(chunk)
                        n += len(chunk)
                    if durable:
                        fh.flush()
                        os.fsync(fh.fileno())
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


def child_script(url: str, table: str) -> dict[str, Any]:
    """The hand-written script: the same page loop, then per page `json.dumps` each record and one
    `executemany` of (id, JSON) through the database's own driver, and a commit. What someone writes
    in an afternoon; rcetl must stay within 0.8 of it while keeping typed columns, legs and upserts."""
    import requests
    import sqlalchemy as sa

    env = os.environ
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {_token(session, env)}"
    engine = sa.create_engine(url)
    backend = engine.dialect.name
    mark = "?" if backend == "sqlite" else "%s"
    raw_type = {"postgresql": "JSONB", "sqlite": "TEXT"}.get(backend, "JSON")
    conn = engine.raw_connection()
    cur = conn.cursor()
    cur.execute(f"CREATE TABLE {table} (id VARCHAR(64) PRIMARY KEY, raw {raw_type})")
    conn.commit()
    sql = f"INSERT INTO {table} (id, raw) VALUES ({mark}, {mark})"
    params = {"view": "Detailed", "perPage": 1000, "showDeleted": "true", "withRecording": "false"}
    records = 0
    for body, _size in _pages(session, env["RC_SERVER"] + "/restapi/v1.0/account/~/call-log", params):
        rows = [(rec["id"], json.dumps(rec)) for rec in body.get("records") or []]
        cur.executemany(sql, rows)
        conn.commit()
        records += len(rows)
    cur.close()
    conn.close()
    return {"records": records}


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
    out, m = _child_measured(args, env)
    return out, m.wall, m.peak_rss


def _child_measured(args: list[str], env: dict[str, str]) -> tuple[dict[str, Any], Measured]:
    m = measure([sys.executable, "-m", "bench.bench_throughput", "child", *args], env=env,
                cwd=Path(__file__).resolve().parents[1], interval=0.1)
    if m.rc != 0:
        raise RuntimeError(f"child {args} exited {m.rc}: {m.stderr[-1500:]}")
    return json.loads(m.stdout.strip().splitlines()[-1]), m


def _cpu(m: Measured) -> dict[str, float]:
    """The CPU seconds a contender's process spent (user space, kernel), from wait4(2)."""
    return {"user_s": m.user_s or 0.0, "sys_s": m.sys_s or 0.0}


def _databases(tmp: Path) -> list[tuple[str, str]]:
    """(sink plugin, URL) of each database the record path is compared on."""
    return [("sqlite", f"sqlite:///{tmp / 'script.db'}"),
            ("mysql", os.environ.get("RCETL_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")),
            ("postgres", os.environ.get("RCETL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))]


def _reachable(url: str) -> str | None:
    import sqlalchemy as sa

    try:
        with sa.create_engine(url).connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "skip this database", said in the table
        return str(exc).splitlines()[0][:120]


def _drop(url: str, prefix: str) -> None:
    """Drop the tables of one comparison (the script's and rcetl's share a prefix)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        md = sa.MetaData()
        md.reflect(conn, only=lambda name, _: name.startswith(prefix))
        md.drop_all(conn)
    engine.dispose()


def dlt_available() -> str | None:
    try:
        import dlt  # noqa: F401
        import duckdb  # noqa: F401
    except ImportError as exc:
        return f"dlt[duckdb] is not installed ({exc}); `pip install 'dlt[duckdb]'` or `pip install -e '.[bench]'`"
    return None


# Set by main() from --only / --calls / --db when one part is run alone.
_ONLY: str | None = None
_CALLS: int | None = None
_DBS: set[str] | None = None


def run(quick: bool) -> tuple[list[Figure], dict[str, Any]]:
    figures: list[Figure] = []
    raw: dict[str, Any] = {}
    if _ONLY in (None, "records"):
        f, r = _run_records(quick)
        figures += f
        raw.update(r)
    if _ONLY in (None, "binaries"):
        f, r = _run_binaries(quick)
        figures += f
        raw.update(r)
    return figures, raw


def _records_pair(name: str, url: str, tmp: Path, env: dict[str, str], i: int) -> dict[str, Any]:
    """The script, then rcetl, on fresh tables of ``url``: one pair's figures."""
    tag = f"bt{os.getpid()}_{i}_"
    try:
        script, script_s, _ = _child(["script", url, f"{tag}script"], env)
        sink = {"plugin": name, "url": url if name != "sqlite" else "sqlite:///archive.db"}
        if name != "sqlite":
            sink["table_prefix"] = tag
        pipe = write_pipeline(tmp / f"records-{name}-{i}", time_scale=1, sources={"call-log": {}}, sinks={"db": sink})
        run_m = rcetl_run(pipe, env, interval=0.1)
    finally:
        _drop(url, tag)
    n = streams_count(run_m.summary or {}, "call-log")
    rc_rps, script_rps = n / run_m.wall, script["records"] / script_s
    return {"ratio": rc_rps / script_rps, "rc_rps": rc_rps, "script_rps": script_rps, "records": n, "measured": run_m,
            "raw": {"rcetl": {"records": n, "seconds": run_m.wall, "peak_rss_mb": mb(run_m.peak_rss)},
                    "script": {**script, "seconds": script_s}}}


def _run_records(quick: bool) -> tuple[list[Figure], dict[str, Any]]:
    from rcetl.sandbox import Sandbox

    # Each database's figure is the median of PAIRS pairs run alternately (script, rcetl, script,
    # rcetl, ...): on a busy 2-core machine one pair's ratio swings 2.5x with what else runs.
    # 50,000 calls a pair in --quick keeps the part's time near one pair of 100,000.
    calls, recordings = (50_000, 500) if quick else (100_000, 10_000)
    calls = _CALLS or calls
    raw: dict[str, Any] = {"calls": calls, "recordings": recordings, "pairs": PAIRS}
    figures: list[Figure] = []
    b = "throughput"
    with Sandbox(seed=21, size="tiny", calls=calls, recordings=recordings, messages=0, **UNLIMITED) as sb:
        env = sandbox_env(sb)
        with tempfile.TemporaryDirectory(prefix="rcetl-bench-") as tmp:
            bare, bare_s, _ = _child(["bare", "records", "1"], env)
            raw["records"] = {"bare": {**bare, "seconds": bare_s}}
            m = None
            for name, url in _databases(Path(tmp)):
                if _DBS is not None and name not in _DBS | {"sqlite"}:
                    continue
                why = _reachable(url)
                if why:
                    raw["records"][name] = {"skipped": why}
                    figures.append(Figure(b, f"call-log records/s, rcetl / hand-written script ({name})", None,
                                          0.8, ">=", "x", note=f"skipped: {why}"))
                    continue
                pairs = [_records_pair(name, url, Path(tmp), env, i) for i in range(PAIRS)]
                mid = sorted(pairs, key=lambda p: p["ratio"])[len(pairs) // 2]  # the median pair
                raw["records"][name] = {**mid["raw"], "pairs": [p["raw"] for p in pairs]}
                all_ratios = " / ".join(f"{p['ratio']:.3f}" for p in pairs)
                figures.append(Figure(b, f"call-log records/s, rcetl / hand-written script ({name})",
                                      round(mid["ratio"], 3), 0.8, ">=", "x", margin=0.15,
                                      note=f"median of {PAIRS} pairs run alternately "
                                           f"({all_ratios}); median pair: "
                                           f"rcetl {mid['rc_rps']:,.0f} rec/s (typed columns, legs, upserts, "
                                           f"checkpoints); script {mid['script_rps']:,.0f} rec/s (json.dumps + "
                                           f"executemany of id + JSON); {mid['records']:,} records"))
                if name == "sqlite":
                    m, rc_records = mid["measured"], mid["records"]
            if m is None:
                raise RuntimeError("the SQLite run is the reference of the other figures and did not run")
            raw["records"]["rcetl"] = raw["records"]["sqlite"]["rcetl"]
            page_mb = mb(bare["page_bytes"])
            bare_rps, rc_rps = bare["records"] / bare_s, rc_records / m.wall
            figures.append(Figure(b, "call-log records/s, rcetl (into SQLite) / bare requests loop", round(rc_rps / bare_rps, 3),
                                  0.7, ">=", "x", margin=0.15,
                                  note=f"rcetl {rc_rps:,.0f} rec/s ({page_mb * rc_records / max(1, bare['records']) / m.wall:.1f} MB/s "
                                       f"of JSON); bare loop {bare_rps:,.0f} rec/s ({page_mb / bare_s:.1f} MB/s); "
                                       f"{rc_records:,} records"))
            why = dlt_available()  # the `bench` extra installs it (`make bench-quick` / `make bench` do)
            if _DBS is not None and "dlt" not in _DBS:
                why = "not asked for (--db)"
            if why is None:
                dlt_out, dlt_s, dlt_rss = _child(["dlt", str(Path(tmp) / "dlt")], env)
                dlt_rps = dlt_out["records"] / dlt_s
                raw["records"]["dlt"] = {**dlt_out, "seconds": dlt_s, "peak_rss_mb": mb(dlt_rss)}
                figures.append(Figure(b, "call-log records/s, rcetl (SQLite) / dlt rest_api (DuckDB)",
                                      round(rc_rps / dlt_rps, 2), 5.0, ">=", "x", margin=0.5,
                                      note=f"dlt {dlt_rps:,.0f} rec/s ({page_mb * dlt_out['records'] / max(1, bare['records']) / dlt_s:.1f} MB/s), "
                                           f"{dlt_out['records']:,} rows, peak RSS {mb(dlt_rss):.0f} MB; "
                                           f"rcetl peak RSS {mb(m.peak_rss):.0f} MB"))
            else:
                raw["records"]["dlt"] = {"skipped": why}
                figures.append(Figure(b, "call-log records/s, rcetl / dlt rest_api", None, 5.0, ">=", "x", note=why))
    return figures, raw


#: Rounds of (loop into a folder, durable loop, rcetl) on the binary path; the median round's
#: ratio is the figure (one round swings by a third on this machine: 0.68-1.06 in one run, the
#: sandbox sharing the two cores with every contender; five rounds instead of three since the ninth
#: session, for a median that moves less between runs).
BINARY_ROUNDS = 5
#: Rounds with recordings of 1 MiB (informational).
LARGE_ROUNDS = 3
#: Recordings of this size for the second binary figure: the issue's own measurement (1 MiB each).
LARGE_RECORDING = 1 << 20


def _served_cpu() -> float:
    """CPU seconds of this process so far: the sandbox serving the contenders runs in it."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _rcetl_binaries(work: Path, env: dict[str, str]) -> dict[str, Any]:
    _nothing_dirty()
    served = _served_cpu()
    pipe = write_pipeline(work, time_scale=1, sources={"recording": {}},
                          sinks={"db": {"plugin": "sqlite", "url": "sqlite:///archive.db"},
                                 "files": {"plugin": "filesystem", "path": "files"}})
    m = rcetl_run(pipe, env, interval=0.1)
    s = (m.summary or {}).get("streams", {}).get("recording", {})
    return {"files": int(s.get("files", 0)), "bytes": int(s.get("bytes", 0)), "seconds": m.wall,
            "peak_rss_mb": mb(m.peak_rss), **_cpu(m), "served_cpu_s": _served_cpu() - served}


def _loop_binaries(work: Path, env: dict[str, str], kind: str) -> dict[str, Any]:
    """``kind``: "bare" (keeps nothing), "folder" (the plain loop) or "durable" (hashes, fsyncs)."""
    _nothing_dirty()
    served = _served_cpu()
    args = ["bare", "binaries", str(DOWNLOADS)]
    if kind != "bare":
        work.mkdir(parents=True)
        args += [str(work), *(["durable"] if kind == "durable" else [])]
    out, m = _child_measured(args, env)
    return {**out, "seconds": m.wall, "peak_rss_mb": mb(m.peak_rss), **_cpu(m), "served_cpu_s": _served_cpu() - served}


def _nothing_dirty() -> None:
    """Write out what earlier contenders left unwritten before the next one starts (untimed).

    The plain loop never fsyncs: the kernel writes its few thousand files back some 30 s later
    (dirty_expire), in the middle of whichever contender runs then, which paid for the loop's disk
    writes with its own CPU (two cores, shared with the sandbox). Every contender starts clean."""
    os.sync()


def _binaries_once(calls: int, recordings: int, work: Path, rounds: int,
                   recording_bytes: int | None = None) -> dict[str, Any]:
    """One sandbox with ``recordings`` recorded calls: the loop keeping nothing once, then
    ``rounds`` rounds of the loop into a folder, the durable loop and rcetl (folder + SQLite), each
    into a folder of its own. Every folder is on the same file system (``work``), and none is
    removed before the last contender ran: removed inodes make the next ones slower to create on
    ext4, which would tax whoever comes after."""
    from rcetl.sandbox import Sandbox

    with Sandbox(seed=21, size="tiny", calls=calls, recordings=recordings, messages=0,
                 recording_bytes=recording_bytes, **UNLIMITED) as sb:
        env = sandbox_env(sb)
        out: dict[str, Any] = {"bare": _loop_binaries(work / "bare", env, "bare"), "rounds": []}
        for i in range(rounds):
            one = {"folder": _loop_binaries(work / f"loop-{i}", env, "folder"),
                   "durable": _loop_binaries(work / f"durable-{i}", env, "durable")}
            one["rcetl"] = _rcetl_binaries(work / f"rcetl-{i}", env)
            out["rounds"].append(one)
    return out


def _fresh_inode_group(folder: Path) -> bool:
    """Mark ``folder`` so that ext4 places each folder made in it in a block group of its own
    choosing (Orlov's rule for top-level folders: free inodes and blocks above average, few
    folders), not beside ``folder`` (``chattr +T``). Returns whether it took.

    Why: on an ext4 without a journal (these VMs' disks), creating a file scans past every inode of
    its block group freed in the last 5 s, or in the last 5 minutes while the inode's table block
    is unwritten (``recently_deleted`` in fs/ext4/ialloc.c), each a buffer-cache lookup. Right after
    the test suite or another benchmark removed thousands of files under /tmp, a new file there
    cost 350-420 us of CPU instead of 50-55 (rcetl's spool files, `perf` and per-phase thread times,
    5,000 recordings): a tax of the disk's recent history on every file created, paid twice per
    recording by anything that keeps a sidecar beside it and once by the plain loop, and absent on
    a journaled ext4 (where that scan is off). Every contender's folders are in the same fresh
    place, so the ratios compare the programs, not whoever created files after a clean-up."""
    try:
        done = subprocess.run(["chattr", "+T", str(folder)], capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def _median_round(rounds: list[dict[str, float]], key: str = "ratio") -> dict[str, float]:
    """The round whose ``key`` (by default the rcetl/loop ratio) is the median (its figures
    reported together)."""
    ordered = sorted(rounds, key=lambda r: r[key])
    return ordered[len(ordered) // 2]


def _listed(rounds: list[dict[str, float]], key: str) -> str:
    return ", ".join(f"{r[key]:.3f}" for r in rounds)


def _run_binaries(quick: bool) -> tuple[list[Figure], dict[str, Any]]:
    """Recordings -> folder (+ their rows in SQLite) against plain 8-thread download loops, each on
    a sandbox whose call log is as short as the recordings allow (the record path's figures measure
    listings).

    The gated figure is the issue's: rcetl against the plain loop that downloads into a folder (a
    file per download, opened, written, closed; never fsynced), in rounds run alternately, the
    median round's ratio. It is a steady per-file rate: each contender's wall minus its own wall on
    the same account without recordings (an empty run: start-up, listing windows, shut-down), files
    over what is left. Informational: the same against the loop that also hashes and fsyncs each
    file (what durability and proof cost at the least), against the loop that keeps nothing (the
    transfer alone), the wall-time ratio, and the same rounds with recordings of 1 MiB (the issue's
    own measurement; the sandbox's recordings are a few KB, where per-file costs rule), against
    both the plain and the hashing, fsyncing loop."""
    recordings = 5_000 if quick else 10_000
    large = 200 if quick else 1_000
    calls = 2 * recordings
    raw: dict[str, Any] = {"recordings": recordings, "binary_calls": calls, "large_recordings": large,
                           "large_recording_bytes": LARGE_RECORDING}
    figures: list[Figure] = []
    b = "throughput"
    with tempfile.TemporaryDirectory(prefix="rcetl-bench-") as tmp:
        raw["fresh_inode_group"] = _fresh_inode_group(Path(tmp))
        full = _binaries_once(calls, recordings, Path(tmp) / "binaries", BINARY_ROUNDS)
        big = _binaries_once(2 * large, large, Path(tmp) / "large", LARGE_ROUNDS, LARGE_RECORDING)
        empty = _binaries_once(calls, 0, Path(tmp) / "empty", 1)
    e = {"bare": empty["bare"], **empty["rounds"][0]}
    raw["binaries"] = {"bare_threads": full["bare"], "rounds": full["rounds"], "large": big, "empty": e}

    def steady(run: dict[str, Any], who: str) -> float:
        return run["files"] / max(run["seconds"] - e[who]["seconds"], 1e-3)

    def cpu_ms(run: dict[str, Any], who: str, key: str) -> float:
        """CPU milliseconds per file over the empty run's (``key``: user_s, sys_s or served_cpu_s)."""
        return 1000 * (run.get(key, 0.0) - e[who].get(key, 0.0)) / max(run["files"], 1)

    rounds = []
    for one in full["rounds"]:
        rc, loop, durable = steady(one["rcetl"], "rcetl"), steady(one["folder"], "folder"), steady(one["durable"], "durable")
        cpu = {f"{who}_{part}": cpu_ms(one[run], run, f"{part}_s")
               for who, run in (("rcetl", "rcetl"), ("loop", "folder")) for part in ("user", "sys", "served_cpu")}
        rounds.append({"ratio": rc / loop, "durable_ratio": rc / durable, "rcetl": rc, "loop": loop, "durable": durable,
                       "wall_ratio": (one["rcetl"]["files"] / one["rcetl"]["seconds"])
                       / (one["folder"]["files"] / one["folder"]["seconds"]),
                       **cpu, "cpu_ratio": sum(cpu[f"rcetl_{p}"] for p in ("user", "sys", "served_cpu"))
                       / max(sum(cpu[f"loop_{p}"] for p in ("user", "sys", "served_cpu")), 1e-9)})
    mid = _median_round(rounds)
    by_durable = _median_round(rounds, "durable_ratio")["durable_ratio"]
    by_wall = _median_round(rounds, "wall_ratio")["wall_ratio"]
    raw["binaries"]["ratios"] = rounds
    files = full["rounds"][0]["rcetl"]["files"]
    bare_steady = steady(full["bare"], "bare")
    into = f"{DOWNLOADS}-thread loop into a folder"
    nothing = f"{DOWNLOADS}-thread loop keeping nothing"
    each = _listed(rounds, "ratio")
    figures.append(Figure(b, f"recordings/s, rcetl (folder + SQLite) / bare {into}, steady (minus empty-run walls)",
                          round(mid["ratio"], 3), 0.8, ">=", "x", margin=0.15,
                          note=f"median of {len(rounds)} rounds ({each}): rcetl {mid['rcetl']:,.0f} files/s (durable, "
                               f"hashed, checked, sidecars), loop {mid['loop']:,.0f} files/s (open/write/close a file "
                               f"per download, no fsync), once each one's empty run (rcetl {e['rcetl']['seconds']:.2f} s, "
                               f"loop {e['folder']['seconds']:.2f} s) is taken off; {files:,} files"))
    figures.append(Figure(b, f"recordings/s, rcetl (folder + SQLite) / {DOWNLOADS}-thread loop that hashes and fsyncs each file, steady",
                          round(by_durable, 3), 0.8, ">=", "x", gate=False,
                          note=f"median of {len(rounds)} rounds ({_listed(rounds, 'durable_ratio')}): "
                               f"the loop with SHA-256 on the way in and an fsync per file, the least an archiver "
                               f"must pay for durability and proof ({mid['durable']:,.0f} files/s in the median round)"))
    figures.append(Figure(b, f"CPU per recording, rcetl (folder + SQLite) / {into} (each with the sandbox serving it)",
                          round(mid["cpu_ratio"], 3), round(1 / 0.8, 3), "<=", "x", gate=False,
                          note=f"the median round's, over each one's empty run: rcetl {mid['rcetl_user']:.2f} ms user + "
                               f"{mid['rcetl_sys']:.2f} ms kernel, its sandbox {mid['rcetl_served_cpu']:.2f} ms; loop "
                               f"{mid['loop_user']:.2f} + {mid['loop_sys']:.2f} ms, its sandbox {mid['loop_served_cpu']:.2f} ms "
                               f"(wait4 and getrusage). Neither fills the two cores; where CPU sets the pace, files/s "
                               f"follow CPU per file and 1/0.8 is the most that meets the 0.8 target (an interpreter "
                               f"lock handed among threads can slow a contender beyond its CPU)"))
    figures.append(Figure(b, f"recordings/s, rcetl (folder + SQLite) / bare {nothing}, steady (minus empty-run walls)",
                          round(mid["rcetl"] / bare_steady, 3), 0.8, ">=", "x", margin=0.15, gate=False,
                          note=f"the transfer alone: {nothing} {bare_steady:,.0f} files/s (empty run "
                               f"{e['bare']['seconds']:.2f} s); rcetl {mid['rcetl']:,.0f} files/s in the median round"))
    figures.append(Figure(b, f"recordings/s, rcetl (folder + SQLite) / bare {into}, wall", round(by_wall, 3),
                          0.7, ">=", "x", margin=0.15, gate=False,
                          note=f"start to exit, median of {len(rounds)} rounds "
                               f"({_listed(rounds, 'wall_ratio')}); {files:,} files"))
    large_rounds = []
    for one in big["rounds"]:
        rc, loop = steady(one["rcetl"], "rcetl"), steady(one["folder"], "folder")
        durable = steady(one["durable"], "durable")
        mbps = mb(one["rcetl"]["bytes"]) / max(one["rcetl"]["seconds"] - e["rcetl"]["seconds"], 1e-3)
        large_rounds.append({"ratio": rc / loop, "durable_ratio": rc / durable, "rcetl": rc, "loop": loop,
                             "durable": durable, "rcetl_mb_s": mbps})
    raw["binaries"]["large_ratios"] = large_rounds
    lmid = _median_round(large_rounds)
    figures.append(Figure(b, f"recordings/s, 1 MiB each, rcetl (folder + SQLite) / {into}, steady",
                          round(lmid["ratio"], 3), 0.8, ">=", "x", gate=False,
                          note=f"median of {len(large_rounds)} rounds ({_listed(large_rounds, 'ratio')}): "
                               f"{large:,} recordings of 1 MiB; rcetl {lmid['rcetl']:,.0f} files/s ({lmid['rcetl_mb_s']:.0f} MB/s, "
                               f"every byte hashed twice and made durable), loop {lmid['loop']:,.0f} files/s"))
    figures.append(Figure(b, f"recordings/s, 1 MiB each, rcetl (folder + SQLite) / {DOWNLOADS}-thread loop that hashes "
                             "and fsyncs each file, steady",
                          round(_median_round(large_rounds, "durable_ratio")["durable_ratio"], 3),
                          0.8, ">=", "x", gate=False,
                          note=f"median of {len(large_rounds)} rounds ({_listed(large_rounds, 'durable_ratio')}): the "
                               f"same recordings against the least an archiver pays for them (SHA-256 on the way in, "
                               f"an fsync per file: {lmid['durable']:,.0f} files/s in the median round)"))
    peak = max(one["rcetl"]["peak_rss_mb"] for one in full["rounds"] + big["rounds"])
    loop_peak = max(one["folder"]["peak_rss_mb"] for one in full["rounds"])
    figures.append(Figure(b, "peak RSS of rcetl archiving recordings (folder + SQLite)", round(peak),
                          150, "<=", "MB", margin=15,
                          note=f"the highest of {len(full['rounds']) + len(big['rounds'])} runs (recordings of a few KB "
                               f"and of 1 MiB); loop into a folder {loop_peak:.0f} MB, keeping nothing "
                               f"{full['bare']['peak_rss_mb']:.0f} MB"))
    return figures, raw


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        kind = sys.argv[2]
        start = time.perf_counter()
        if kind == "bare":
            out = child_bare(sys.argv[3], int(sys.argv[4]), sys.argv[5] if len(sys.argv) > 5 else None,
                             durable=len(sys.argv) > 6 and sys.argv[6] == "durable")
        elif kind == "script":
            out = child_script(sys.argv[3], sys.argv[4])
        else:
            out = child_dlt(sys.argv[3])
        out["inner_seconds"] = time.perf_counter() - start
        print(json.dumps(out))
        return
    global _ONLY, _CALLS, _DBS
    args = sys.argv[1:]
    for flag in ("--only", "--calls", "--db"):
        if flag in args:
            i = args.index(flag)
            value = args[i + 1]
            del args[i : i + 2]
            if flag == "--only":
                _ONLY = value
            elif flag == "--calls":
                _CALLS = int(value)
            else:
                _DBS = set(value.split(","))
    sys.argv[1:] = args
    cli("throughput", __doc__, run)

if __name__ == "__main__":
    main()
