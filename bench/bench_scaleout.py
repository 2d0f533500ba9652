"""Scale-out: four sandbox accounts archived by two Celery workers vs one after another.

Each account's speed is its own rate budget (Heavy 10 per 60 s window on the standard plan, on a
clock ``time_scale`` times faster), not the CPU. So archiving four accounts one after another
takes four times one account, and two workers with two task slots each archive the four at once:
the ratio of wall times should be about 0.25-0.35 (a little above 0.25 for the run's fixed costs).

Setup: one sandbox with four accounts in this process; PostgreSQL for checkpoints and records,
Redis for budgets and tokens, RabbitMQ for tasks (the services of reference/test-services.md);
``rcetl worker`` subprocesses. Credentials reach every process through ``${RC_JWT_n}``.

* sequential: ``rcetl run`` (local executor) of a one-account pipeline, four times, summed.
* scaled out: one ``rcetl run --executor celery`` of the four-account pipeline, two workers already
  up with the pipeline preloaded (``rcetl worker -c 2 --preload FILE``, the documented setting:
  starting workers and opening their sinks is a deployment cost, not a run cost).

Both runs must archive every available recording of every account byte-exact (checked against the
sandbox's ground truth) with zero 429 responses.

    .venv/bin/python -m bench.bench_scaleout [--quick]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from .common import BIN, Figure, RequestLog, fmt, machine, measure, results_dir

RCETL = str(BIN / "rcetl")
ACCOUNTS = 4
WORKERS, CONCURRENCY = 2, 2
SERVICES = {
    "amqp": os.environ.get("RCETL_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//"),
    "redis": os.environ.get("RCETL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
    "postgres": os.environ.get("RCETL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
}


def pipeline_doc(name: str, accounts: list[int], files: Path, tag: str, time_scale: float, queue: str) -> dict:
    return {
        "pipeline": name,
        "connections": {
            f"acct{i}": {"plugin": "ringcentral", "server": "${RC_SERVER}", "media_server": "${RC_MEDIA}",
                         "client_id": "${RC_CLIENT_ID}", "client_secret": "${RC_CLIENT_SECRET}",
                         "jwt": f"${{RC_JWT_{i}}}", "time_scale": time_scale}
            for i in accounts},
        "state": SERVICES["postgres"],
        "budgets": {"backend": "redis", "url": SERVICES["redis"]},
        "executor": {"broker": SERVICES["amqp"], "backend": SERVICES["redis"], "queue": queue},
        "sources": {"call-log": {"level": "account", "view": "Detailed"}, "recording": {}},
        "sinks": {
            "db": {"plugin": "postgres", "url": SERVICES["postgres"], "table_prefix": f"b{tag}_"},
            "files": {"plugin": "filesystem", "path": str(files), "key": "{account}/{kind}/{id}.{ext}",
                      "fsync": False},
        },
    }


def write(path: Path, doc: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2))  # JSON is YAML
    return path


def expected(sb: Any) -> dict[str, dict[str, str]]:
    """account id -> {recording id: sha256} of every recording the sandbox still serves."""
    truth = sb.ground_truth()
    return {a["account_id"]: {str(r["id"]): r["sha256"] for r in a["recordings"] if r["available"]}
            for a in truth["accounts"]}


def archived(files: Path) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for p in files.rglob("*"):
        if p.is_file() and not p.name.endswith(".json"):
            account = p.relative_to(files).parts[0]
            out.setdefault(account, {})[p.stem] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def complete(files: Path, want: dict[str, dict[str, str]]) -> bool:
    got = archived(files)
    # the sink's {account} is the API's account id; compare the sets of (id, sha256) per account
    return sorted(sorted(v.items()) for v in got.values()) == sorted(sorted(v.items()) for v in want.values())


def start_workers(env: dict[str, str], queue: str, logdir: Path, preload: Path | None = None) -> list[subprocess.Popen]:
    procs = []
    for i in range(WORKERS):
        log = open(logdir / f"worker{i}.log", "wb")
        procs.append(subprocess.Popen(
            [RCETL, "worker", "-c", str(CONCURRENCY), "--queue", queue, "--broker", SERVICES["amqp"],
             "--backend", SERVICES["redis"], "--hostname", f"bench{i}-{queue}@bench", "--loglevel", "WARNING",
             *(["--preload", str(preload)] if preload else [])],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        log.close()
    from rcetl.executors.celery_app import make_app

    app = make_app(SERVICES["amqp"], "disabled://", queue)
    names = {f"bench{i}-{queue}@bench" for i in range(WORKERS)}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if {k for r in app.control.ping(destination=sorted(names), timeout=0.5) for k in r} >= names:
            break
    else:
        raise RuntimeError("workers did not start; see " + str(logdir))
    app.close()
    return procs


def heavy_windows(entries: list[tuple[float, str, str, bool]], window: float) -> dict[str, list[int]]:
    """Per account, its Heavy requests in each whole window while it had work (consecutive windows
    from its first Heavy request; the last, partial one is left out)."""
    by_user: dict[str, list[float]] = {}
    for t, user, group, ok in entries:
        if group.lower() == "heavy" and ok:
            by_user.setdefault(user, []).append(t)
    out = {}
    for user, times in by_user.items():
        times.sort()
        start, end = times[0], times[-1]
        whole = int((end - start) // window)
        out[user] = [sum(1 for t in times if start + k * window <= t < start + (k + 1) * window)
                     for k in range(whole)]
    return out


def heavy_use(entries: list[tuple[float, str, str, bool]], window: float, limit: int) -> dict[str, float]:
    """Per account, the lowest share of its Heavy limit used in any whole window while it had work."""
    return {user: min(counts) / limit if counts else 1.0 for user, counts in heavy_windows(entries, window).items()}


def stop_workers(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)


def cleanup(tag: str) -> None:
    import redis
    import sqlalchemy as sa

    engine = sa.create_engine(SERVICES["postgres"])
    with engine.begin() as conn:
        for t in conn.execute(sa.text("select tablename from pg_tables where tablename like :p"),
                              {"p": f"b{tag}_%"}).scalars().all():
            conn.execute(sa.text(f'drop table if exists "{t}" cascade'))
    engine.dispose()
    r = redis.Redis.from_url(SERVICES["redis"])
    keys = list(r.scan_iter(match=f"*{tag}*", count=500))
    if keys:
        r.delete(*keys)
    r.close()


def run(quick: bool) -> tuple[list[Figure], dict[str, Any]]:
    from rcetl.sandbox import Sandbox

    # The slower the clock, the more a run is its budget's waits and the less its CPU: on a small
    # machine (the sandbox, the workers and the submitter share its cores) a fast clock makes four
    # accounts at once CPU-bound, which is not what production looks like.
    size, time_scale = ("small", 60.0) if quick else ("small", 15.0)
    tag = uuid.uuid4().hex[:8]
    queue = f"rcetl-bench-{tag}"
    raw: dict[str, Any] = {"size": size, "time_scale": time_scale, "accounts": ACCOUNTS, "workers": WORKERS,
                           "concurrency": CONCURRENCY, "machine": machine()}
    with tempfile.TemporaryDirectory(prefix="rcetl-bench-scaleout-") as tmp, \
            Sandbox(seed=5, size=size, time_scale=time_scale, accounts=ACCOUNTS) as sb:
        work = Path(tmp)
        log = RequestLog(sb)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "RC_SERVER": sb.server, "RC_MEDIA": sb.media_server,
               "RC_CLIENT_ID": sb.client_id, "RC_CLIENT_SECRET": sb.client_secret,
               **{f"RC_JWT_{i}": a["jwt"] for i, a in enumerate(sb.accounts)}}
        want = expected(sb)
        raw["recordings"] = {k: len(v) for k, v in want.items()}
        try:
            # one after another: what one machine does with the local executor
            seq_files = work / "seq-files"
            seq_wall, seq_requests = 0.0, 0
            for i in range(ACCOUNTS):
                p = write(work / f"seq{i}" / "pipeline.yaml",
                          pipeline_doc(f"bench-seq{i}-{tag}", [i], seq_files, tag, time_scale, queue))
                m = measure([RCETL, "run", str(p), "--json"], env=env, cwd=p.parent)
                if m.rc != 0 or not m.summary:
                    raise RuntimeError(f"sequential run {i} exited {m.rc}:\n{(m.stderr or m.stdout)[-2000:]}")
                seq_wall += m.wall
                seq_requests += sum(sum(g.values()) for g in m.summary["requests"].values())
            seq_refused = log.refused()
            seq_complete = complete(seq_files, want)

            # scaled out: the four accounts at once on two workers
            # scaled out as documented: workers up and the pipeline preloaded (`rcetl worker --preload`)
            par_files = work / "par-files"
            p = write(work / "par" / "pipeline.yaml",
                      pipeline_doc(f"bench-par-{tag}", list(range(ACCOUNTS)), par_files, tag, time_scale, queue))
            workers = start_workers(env, queue, work, preload=p)
            mark = log.mark()
            try:
                began = time.monotonic()
                m = measure([RCETL, "run", str(p), "--json", "--executor", "celery"], env=env, cwd=p.parent)
                ended = time.monotonic()
                if m.rc != 0 or not m.summary:
                    raise RuntimeError(f"celery run exited {m.rc}:\n{(m.stderr or m.stdout)[-2000:]}")
            finally:
                stop_workers(workers)
            par_wall = m.wall
            par_refused = log.refused() - seq_refused
            par_complete = complete(par_files, want)
            par_requests = sum(sum(g.values()) for g in m.summary["requests"].values())
            par_entries = log.since(mark)
            # where the scaled-out run's time goes besides the budget: before each account's first
            # request and after its last one (the same clock as RequestLog's)
            ramps = {}
            for t, user, _, _ in par_entries:
                lo, hi = ramps.get(user, (t, t))
                ramps[user] = (min(lo, t), max(hi, t))
            raw["ramp_s"] = {u: {"before_first_request": round(lo - began, 2), "after_last_request": round(ended - hi, 2)}
                             for u, (lo, hi) in ramps.items()}
            par_counted = len(par_entries)
            use = heavy_use(par_entries, 60.0 / time_scale, sb.app.limiter.plan["Heavy"])
            # where a window fell short: its index (0: the one with the account's first Heavy request)
            raw["heavy_per_window"] = {u[:14]: c for u, c in heavy_windows(par_entries, 60.0 / time_scale).items()}
            raw["heavy_times_s"] = {u[:14]: [round(t - began, 3) for t, uu, g, ok in par_entries
                                             if uu == u and g.lower() == "heavy" and ok] for u in use}
        finally:
            cleanup(tag)
    speedup = seq_wall / par_wall
    lowest_use = min(use.values()) if use else 0.0
    raw.update({"speedup": round(speedup, 3), "heavy_use_lowest_per_account": {k: round(v, 3) for k, v in use.items()},
                "sandbox_counted_requests": par_counted, "downloads_per_credential": "from the budget", "worker_concurrency": CONCURRENCY})
    raw.update({"sequential_wall_s": round(seq_wall, 2), "scaled_out_wall_s": round(par_wall, 2),
                "sequential_requests": seq_requests, "scaled_out_requests": par_requests,
                "sequential_429": seq_refused, "scaled_out_429": par_refused,
                "sequential_complete": seq_complete, "scaled_out_complete": par_complete})
    figures = [
        Figure("scaleout", "speed-up, 4 accounts on 2 workers (-c 2, --preload, pools sized from each budget) vs one by one",
               round(speedup, 3), 3.6, ">=", margin=0.4 if quick else 0.2,
               note=f"{par_wall:.1f}s vs {seq_wall:.1f}s on {os.cpu_count()} cores"),
        Figure("scaleout", "lowest Heavy use of any account in any whole window with work (share of limit)",
               round(lowest_use, 3), 0.95, ">=", margin=0.1 if quick else 0.05),
        Figure("scaleout", "celery summary requests minus requests the sandbox counted", abs(par_requests - par_counted),
               0, "<="),
        Figure("scaleout", "429 responses with two workers", par_refused, 0, "<="),
        Figure("scaleout", "every account complete and byte-exact (1 = yes)", float(par_complete and seq_complete),
               1.0, ">="),
    ]
    return figures, raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a faster clock (about a minute in all)")
    args = parser.parse_args()
    figures, raw = run(args.quick)
    print("| figure | value | target | met |\n|---|---|---|---|")
    for f in figures:
        print(f"| {f.name} | {fmt(f.value)} | {f.op} {f.target} | {'yes' if f.met else 'NO'} |")
    print()
    print(f"speed-up {raw['speedup']}x (goal 3.6x: {'met' if raw['speedup'] >= 3.6 else 'missed'}); lowest Heavy use "
          f"per account {raw['heavy_use_lowest_per_account']}; summary {raw['scaled_out_requests']} requests, "
          f"sandbox counted {raw['sandbox_counted_requests']}")
    print(f"scaled-out run: seconds before each account's first request / after its last: "
          f"{ {u[:14]: (r['before_first_request'], r['after_last_request']) for u, r in raw.get('ramp_s', {}).items()} }")
    print(f"Heavy requests per whole window, per account: {raw.get('heavy_per_window')}")
    print(f"sequential {raw['sequential_wall_s']}s, two workers {raw['scaled_out_wall_s']}s; "
          f"recordings per account {raw['recordings']}; 429s {raw['sequential_429']} / {raw['scaled_out_429']}")
    # a quick run (a developer's check) never changes the tracked results of a full one
    folder = results_dir(args.quick)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"scaleout{'-quick' if args.quick else ''}.json").write_text(json.dumps({"figures": [f.to_json() for f in figures], "raw": raw},
                                                      indent=2, default=str) + "\n")
    if args.quick and any(f.clearly_missed for f in figures):
        sys.exit(1)


if __name__ == "__main__":
    main()
