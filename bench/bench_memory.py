"""Memory: peak resident set of the `rcetl run` process while it archives one 1 GB recording
(streamed from the sandbox, spooled, hashed, stored in a folder) and while it archives 100,000
call-log records into SQLite. Both must stay flat, under 200 MB: no file and no result set is held.

RSS is sampled with psutil every 20 ms from outside the process (children included).

    .venv/bin/python -m bench.bench_memory [--quick]
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from .common import UNLIMITED, Figure, cli, fmt, mb, rcetl_run, sandbox_env, streams_count, write_pipeline

LIMIT_MB = 200


def big_recording(size: int) -> dict[str, Any]:
    from rcetl.sandbox import Sandbox

    with Sandbox(seed=41, size="tiny", calls=5, recordings=1, messages=0, recording_bytes=size, **UNLIMITED) as sb:
        with tempfile.TemporaryDirectory(prefix="rcetl-bench-") as tmp:
            pipe = write_pipeline(Path(tmp), time_scale=1, sources={"recording": {}},
                                  sinks={"db": {"plugin": "sqlite", "url": "sqlite:///archive.db"},
                                         "files": {"plugin": "filesystem", "path": "files"}})
            m = rcetl_run(pipe, sandbox_env(sb), interval=0.02)
            stored = sum(p.stat().st_size for p in (Path(tmp) / "files").rglob("*") if p.is_file())
    s = (m.summary or {}).get("streams", {}).get("recording", {})
    if int(s.get("bytes", 0)) < size:
        raise RuntimeError(f"the {size:,}-byte recording was not archived: {s}")
    return {"bytes": int(s.get("bytes", 0)), "stored_bytes": stored, "seconds": m.wall, "peak_rss_mb": mb(m.peak_rss),
            "baseline_rss_mb": mb(m.rss_samples[len(m.rss_samples) // 20][1]) if m.rss_samples else None}


def many_records(calls: int) -> dict[str, Any]:
    from rcetl.sandbox import Sandbox

    with Sandbox(seed=42, size="tiny", calls=calls, recordings=0, messages=0, **UNLIMITED) as sb:
        with tempfile.TemporaryDirectory(prefix="rcetl-bench-") as tmp:
            pipe = write_pipeline(Path(tmp), time_scale=1, sources={"call-log": {}},
                                  sinks={"db": {"plugin": "sqlite", "url": "sqlite:///archive.db"}})
            m = rcetl_run(pipe, sandbox_env(sb), interval=0.02)
    return {"records": streams_count(m.summary or {}, "call-log"), "seconds": m.wall, "peak_rss_mb": mb(m.peak_rss)}


def run(quick: bool, records_point: dict[str, Any] | None = None) -> tuple[list[Figure], dict[str, Any]]:
    """``records_point``: a 100k-call run another benchmark of this run already measured (its peak)."""
    size = (64 << 20) if quick else (1 << 30)
    rec = big_recording(size)
    many = records_point or many_records(10_000 if quick else 100_000)
    n = many.get("records") or many.get("calls")
    b = "memory"
    figures = [
        Figure(b, f"peak RSS archiving one {fmt(size / 2**20)} MB recording", round(rec["peak_rss_mb"]), LIMIT_MB, "<=",
               "MB", margin=50,
               note=f"{rec['bytes'] / 2**20:,.0f} MB streamed in {rec['seconds']:.1f} s "
                    f"({rec['bytes'] / 2**20 / rec['seconds']:.0f} MB/s incl. start-up); stored {rec['stored_bytes'] / 2**20:,.0f} MB"),
        Figure(b, f"peak RSS archiving {n:,} records", round(many["peak_rss_mb"]), LIMIT_MB, "<=", "MB",
               margin=50, note=(f"{many['calls']:,} calls + {many['files']:,} recordings into SQLite + a folder "
                                if "files" in many else "call-log records into SQLite ") + f"in {many['seconds']:.1f} s"),
    ]
    return figures, {"recording": rec, "records": many}


def main() -> None:
    cli("memory", __doc__, run)

if __name__ == "__main__":
    main()
