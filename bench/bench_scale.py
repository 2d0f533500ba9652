"""Scale with work: wall time and peak RSS of `rcetl run` at 1k, 10k and 100k calls (one in twenty
recorded), call log + recordings into SQLite + a folder, no rate limits. The cost per record must
stay flat: a hidden quadratic step (paging, state, upserts, dedupe sets) shows as a ratio > 1.

The fixed cost of a run (interpreter, imports, token, opening sinks) is not per-record work, so the
per-record cost is (wall - wall of an empty run) / records, the empty run measured in the same run.

    .venv/bin/python -m bench.bench_scale [--quick]
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from .common import UNLIMITED, Figure, cli, mb, rcetl_run, sandbox_env, streams_count, write_pipeline

# SQLite's writer process from the first batch at every size: left to start by itself (`auto`), it
# started at 5,000 calls (a batch of 500 records) and not at 1,000 (the windows' batches are smaller),
# a fixed 16-19 MB step that the peak RSS ratio took for growth with the data (1.53-1.59 for 1.32).
SINKS = {"db": {"plugin": "sqlite", "url": "sqlite:///archive.db", "writer_process": True},
         "files": {"plugin": "filesystem", "path": "files"}}


def one(calls: int, seed: int = 31) -> dict[str, Any]:
    from rcetl.sandbox import Sandbox

    with Sandbox(seed=seed, size="tiny", calls=calls, recordings=calls // 20, messages=0, **UNLIMITED) as sb:
        with tempfile.TemporaryDirectory(prefix="rcetl-bench-") as tmp:
            pipe = write_pipeline(Path(tmp), time_scale=1, sources={"call-log": {}, "recording": {}}, sinks=SINKS)
            m = rcetl_run(pipe, sandbox_env(sb), interval=0.05)
    summary = m.summary or {}
    records = streams_count(summary, "call-log") + streams_count(summary, "recording")
    return {"calls": calls, "records": records, "files": streams_count(summary, "recording", "files"),
            "seconds": m.wall, "peak_rss_mb": mb(m.peak_rss)}


def run(quick: bool) -> tuple[list[Figure], dict[str, Any]]:
    sizes = [1_000, 5_000] if quick else [1_000, 10_000, 100_000]
    empty = one(0)
    points = [one(n) for n in sizes]
    base = empty["seconds"]
    for p in points:
        p["per_record_ms"] = max(p["seconds"] - base, 1e-9) / max(1, p["records"]) * 1000
    small, big = points[0], points[-1]
    # 1k records run for well under a second above the fixed cost: the smallest point is the noisiest,
    # so the ratio is taken against the 10k point as well.
    ratio = big["per_record_ms"] / small["per_record_ms"]
    mid_ratio = big["per_record_ms"] / points[1]["per_record_ms"] if len(points) > 2 else ratio
    b = "scale"
    label = f"{big['calls'] // 1000}k/{small['calls'] // 1000}k"
    figures = [
        Figure(b, f"cost per record {label} calls", round(ratio, 2), 1.25, "<=", "x", margin=0.5,
               gate=len(points) <= 2,  # with a 10k point, 100k/10k is gated: 1k is mostly fixed-cost noise
               note=" ; ".join(f"{p['calls']:,} calls: {p['records']:,} records in {p['seconds']:.1f} s, "
                               f"{p['per_record_ms']:.3f} ms/record, peak {p['peak_rss_mb']:.0f} MB" for p in points)
               + f" ; empty run {base:.2f} s (fixed cost, subtracted)"),
    ]
    if len(points) > 2:
        figures.append(Figure(b, "cost per record 100k/10k calls", round(mid_ratio, 2), 1.25, "<=", "x", margin=0.5))
    figures.append(Figure(b, f"peak RSS {label} calls", round(big["peak_rss_mb"] / small["peak_rss_mb"], 2), 1.5, "<=",
                          "x", margin=0.5, note=f"{small['peak_rss_mb']:.0f} MB -> {big['peak_rss_mb']:.0f} MB"))
    return figures, {"empty": empty, "points": points}


def main() -> None:
    cli("scale", __doc__, run)

if __name__ == "__main__":
    main()
