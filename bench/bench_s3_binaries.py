"""Recordings into S3: rcetl against a plain 8-thread download loop into a bucket (issue #17's
"binary path at >= 0.8 of a plain 8-thread download loop into a folder (and S3 on moto)").

* the S3 server is moto's (``moto_server``), a process of its own, one per sandbox, a bucket per
  contender (made before the contender starts); both contenders reach it through boto3 with the same
  credentials (``AWS_*`` variables).
* the plain loop (a subprocess, what someone writes in an afternoon): list the call log with
  recordings (the same paging and dated windows as rcetl), then 8 threads each download a recording
  (``requests``, the body in memory) and ``put_object`` it into the bucket under ``<id>.mp3``
  (botocore's defaults; no checksum of its own, no create-only, no sidecar, no record kept).
* rcetl (``rcetl run``): source ``recording``, sinks SQLite (the call records) + ``s3`` with its
  defaults (each download spooled, hashed, content-checked, uploaded create-only with S3's SHA-256
  compared to the download's: one PUT; one JSON Lines manifest per batch describing its recordings
  and their records (``sidecar: batch``); the rows written after). Informational: the same with
  ``sidecar: true`` (a JSON sidecar beside each recording: two PUTs per recording), into a bucket
  of its own.

10,000 recordings (5,000 in --quick), each contender also run on the same account without
recordings: the gated figure is the steady files/s ratio rcetl / loop, each side's wall minus its
own empty-run wall (start-up, listing windows, shut-down: `bench_startup`'s subject). rcetl's peak
RSS (children included) is gated too. Each contender's CPU (user + sys, from the benchmark's
``RUSAGE_CHILDREN``) and moto's CPU during its run are in the raw results and the note: moto serves
both, so it is the shared cost of every request.

    .venv/bin/python -m bench.bench_s3_binaries [--quick] [--recordings N]
"""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .common import UNLIMITED, Figure, cli, mb, measure, rcetl_run, sandbox_env, write_pipeline

DOWNLOADS = 8  # rcetl's default executor.downloads
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}


# --- the plain loop ------------------------------------------------------------------------------


def child_loop(endpoint: str, bucket: str, threads: int) -> dict[str, Any]:
    """List the call log with recordings, then ``threads`` threads each download a recording and
    ``put_object`` it into ``bucket``."""
    import boto3
    import requests
    from botocore.config import Config

    from .bench_throughput import _pages, _token, name_recordings

    env = dict(os.environ)
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=threads))
    session.headers["Authorization"] = f"Bearer {_token(session, env)}"
    s3 = boto3.client("s3", endpoint_url=endpoint,
                      config=Config(s3={"addressing_style": "path"}, max_pool_connections=threads))
    params = {"view": "Detailed", "perPage": 1000, "showDeleted": "true", "withRecording": "true"}
    names: dict[str, str] = {}  # content URI -> key
    records = 0
    for body, _size in _pages(session, env["RC_SERVER"] + "/restapi/v1.0/account/~/call-log", params):
        for rec in body.get("records") or []:
            records += 1
            name_recordings(rec, names)

    def copy(uri: str) -> int:
        r = session.get(uri)
        if r.status_code == 404:
            return -1
        r.raise_for_status()
        s3.put_object(Bucket=bucket, Key=names[uri], Body=r.content, ContentType="audio/mpeg")
        return len(r.content)

    sizes: list[int] = []
    if names:
        with ThreadPoolExecutor(threads) as pool:
            sizes = list(pool.map(copy, names))
    return {"records": records, "files": sum(1 for s in sizes if s >= 0), "bytes": sum(s for s in sizes if s > 0)}


# --- moto ----------------------------------------------------------------------------------------


class Moto:
    """``moto_server`` in a process of its own on a free port."""

    def __init__(self, work: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{port}"
        self.log = open(work / "moto.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1",
                                      "-p", str(port)], stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **CREDENTIALS})
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto_server did not start (see {self.log.name})")
            time.sleep(0.1)
        import boto3
        from botocore.config import Config

        self.client = boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                                   aws_access_key_id="bench", aws_secret_access_key="bench",
                                   config=Config(s3={"addressing_style": "path"}))

    def cpu(self) -> float:
        import psutil

        t = psutil.Process(self.proc.pid).cpu_times()
        return t.user + t.system

    def bucket(self, name: str) -> str:
        self.client.create_bucket(Bucket=name)
        return name

    def count(self, bucket: str) -> int:
        n = 0
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            n += len(page.get("Contents") or [])
        return n

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


# --- the benchmark -------------------------------------------------------------------------------


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _timed(moto: Moto, run: Any) -> tuple[Any, float, float]:
    """Run a contender: (its result, its CPU seconds incl. its children, moto's CPU seconds meanwhile)."""
    cpu, moto_cpu = _children_cpu(), moto.cpu()
    out = run()
    return out, _children_cpu() - cpu, moto.cpu() - moto_cpu


def _once(calls: int, recordings: int, work: Path) -> dict[str, Any]:
    """One sandbox with ``recordings`` recorded calls and one moto server: the loop, rcetl, then
    rcetl with ``sidecar: true``."""
    from rcetl.sandbox import Sandbox

    work.mkdir(parents=True, exist_ok=True)
    moto = Moto(work)
    try:
        with Sandbox(seed=21, size="tiny", calls=calls, recordings=recordings, messages=0, **UNLIMITED) as sb:
            env = {**sandbox_env(sb), **CREDENTIALS}
            loop_bucket, rc_bucket, beside_bucket = moto.bucket("loop"), moto.bucket("rcetl"), moto.bucket("rcetl-beside")

            def pipeline(name: str, bucket: str, **options: Any) -> Path:
                return write_pipeline(work / name, time_scale=1, sources={"recording": {}},
                                      sinks={"db": {"plugin": "sqlite", "url": "sqlite:///archive.db"},
                                             "files": {"plugin": "s3", "bucket": bucket, "endpoint_url": moto.endpoint,
                                                       "region": "us-east-1", "addressing_style": "path", **options}})

            def loop() -> Any:
                m = measure([sys.executable, "-m", "bench.bench_s3_binaries", "child", moto.endpoint, loop_bucket,
                             str(DOWNLOADS)], env=env, cwd=Path(__file__).resolve().parents[1], interval=0.1)
                if m.rc != 0:
                    raise RuntimeError(f"the loop exited {m.rc}: {m.stderr[-1500:]}")
                return m

            lm, loop_cpu, loop_moto = _timed(moto, loop)
            rm, rc_cpu, rc_moto = _timed(moto, lambda: rcetl_run(pipeline("rcetl", rc_bucket), env, interval=0.1))
            bm, beside_cpu, beside_moto = _timed(
                moto, lambda: rcetl_run(pipeline("rcetl-beside", beside_bucket, sidecar=True), env, interval=0.1))
            objects = {"loop": moto.count(loop_bucket), "rcetl": moto.count(rc_bucket),
                       "rcetl_sidecar_beside": moto.count(beside_bucket)}
    finally:
        moto.stop()
    out = json.loads(lm.stdout.strip().splitlines()[-1])

    def of_rcetl(m: Any, cpu: float, moto_cpu: float, objects: int) -> dict[str, Any]:
        s = (m.summary or {}).get("streams", {}).get("recording", {})
        return {"files": int(s.get("files", 0)), "bytes": int(s.get("bytes", 0)), "seconds": m.wall,
                "cpu_s": cpu, "moto_cpu_s": moto_cpu, "peak_rss_mb": mb(m.peak_rss), "objects": objects}

    return {"loop": {**out, "seconds": lm.wall, "cpu_s": loop_cpu, "moto_cpu_s": loop_moto,
                     "peak_rss_mb": mb(lm.peak_rss), "objects": objects["loop"]},
            "rcetl": of_rcetl(rm, rc_cpu, rc_moto, objects["rcetl"]),
            "rcetl_sidecar_beside": of_rcetl(bm, beside_cpu, beside_moto, objects["rcetl_sidecar_beside"])}


_RECORDINGS: int | None = None  # --recordings N: a smaller run while working on it (the runner never passes it)


def run(quick: bool) -> tuple[list[Figure], dict[str, Any]]:
    recordings = _RECORDINGS or (5_000 if quick else 10_000)
    calls = 2 * recordings
    with tempfile.TemporaryDirectory(prefix="rcetl-bench-") as tmp:
        full = _once(calls, recordings, Path(tmp) / "recordings")
        empty = _once(calls, 0, Path(tmp) / "empty")
    raw: dict[str, Any] = {"recordings": recordings, "calls": calls, "full": full, "empty": empty}
    for who in ("loop", "rcetl", "rcetl_sidecar_beside"):
        if full[who]["files"] < recordings * 0.9:
            raise RuntimeError(f"{who} stored {full[who]['files']} of {recordings} recordings")

    def steady(who: str) -> float:
        return full[who]["files"] / max(full[who]["seconds"] - empty[who]["seconds"], 1e-3)

    def per_file(who: str, what: str) -> float:  # ms of CPU per file, empty run taken off
        return 1000 * (full[who][what] - empty[who][what]) / max(full[who]["files"], 1)

    rc, loop = full["rcetl"], full["loop"]
    rc_steady, loop_steady = steady("rcetl"), steady("loop")
    b = "s3_binaries"
    into = f"{DOWNLOADS}-thread loop into S3 (moto)"
    figures = [
        Figure(b, f"recordings/s, rcetl (S3 + SQLite) / bare {into}, steady (minus empty-run walls)",
               round(rc_steady / loop_steady, 3), 0.8, ">=", "x", margin=0.15,
               note=f"rcetl {rc_steady:,.0f} files/s (spooled, hashed, content-checked, create-only PUT with "
                    f"S3's SHA-256 compared, a manifest line per recording ({rc['objects'] - rc['files']} "
                    f"manifests), row in SQLite), loop {loop_steady:,.0f} files/s "
                    f"(download into memory, put_object; nothing else), once each one's empty run (rcetl "
                    f"{empty['rcetl']['seconds']:.2f} s, loop {empty['loop']['seconds']:.2f} s) is taken off; "
                    f"CPU per file: rcetl {per_file('rcetl', 'cpu_s'):.2f} ms + moto "
                    f"{per_file('rcetl', 'moto_cpu_s'):.2f} ms, loop {per_file('loop', 'cpu_s'):.2f} ms + moto "
                    f"{per_file('loop', 'moto_cpu_s'):.2f} ms; {rc['files']:,} files"),
        Figure(b, f"recordings/s, rcetl (S3 with sidecar: true + SQLite) / bare {into}, steady",
               round(steady("rcetl_sidecar_beside") / loop_steady, 3), 0.8, ">=", "x", margin=0.15, gate=False,
               note=f"a JSON sidecar beside each recording, two PUTs per recording: rcetl "
                    f"{steady('rcetl_sidecar_beside'):,.0f} files/s (empty run "
                    f"{empty['rcetl_sidecar_beside']['seconds']:.2f} s); CPU per file: rcetl "
                    f"{per_file('rcetl_sidecar_beside', 'cpu_s'):.2f} ms + moto "
                    f"{per_file('rcetl_sidecar_beside', 'moto_cpu_s'):.2f} ms: what a sidecar's own PUT costs "
                    f"against the gated figure"),
        Figure(b, f"recordings/s, rcetl (S3 + SQLite) / bare {into}, wall",
               round((rc["files"] / rc["seconds"]) / (loop["files"] / loop["seconds"]), 3), 0.7, ">=", "x",
               margin=0.15, gate=False,
               note=f"start to exit: rcetl {rc['files'] / rc['seconds']:,.0f} files/s, loop "
                    f"{loop['files'] / loop['seconds']:,.0f} files/s"),
        Figure(b, "peak RSS of rcetl archiving recordings (S3 + SQLite)", round(rc["peak_rss_mb"]), 150, "<=", "MB",
               margin=15, note=f"the loop {loop['peak_rss_mb']:.0f} MB; {rc['files']:,} files"),
    ]
    return figures, raw


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        start = time.perf_counter()
        out = child_loop(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        out["inner_seconds"] = time.perf_counter() - start
        print(json.dumps(out))
        return
    global _RECORDINGS
    if "--recordings" in sys.argv:
        i = sys.argv.index("--recordings")
        _RECORDINGS = int(sys.argv[i + 1])
        del sys.argv[i : i + 2]
    cli("s3_binaries", __doc__, run)


if __name__ == "__main__":
    main()
