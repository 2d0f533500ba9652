"""Start-up: wall time of `rcetl --help` and `rcetl validate pipelines/demo.yaml` as subprocesses
(median of several), against a bare `python -c pass` on the same interpreter in the same run.

    .venv/bin/python -m bench.bench_startup [--quick]

Heavy SDKs (boto3, google-cloud, pymongo, celery, dlt) must be imported lazily, only by the plugin
that needs them, so the CLI answers fast whatever is installed.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

from .common import RCETL, ROOT, Figure, cli

TARGET_SECONDS = 0.5  # `rcetl --help`
# `rcetl validate`: issue #18. Validation imports only the sink classes a file names (registered by
# dotted path), so the figure is the core, pydantic, the YAML loader and the named plugins' modules.
VALIDATE_TARGET_SECONDS = 0.3


def wall(cmd: list[str], repeats: int) -> tuple[float, list[float]]:
    times = []
    # Warm the page cache and the .pyc files, as an installed rcetl has them (pip compiles them): a
    # PYTHONDONTWRITEBYTECODE=1 shell would otherwise have every run compile rcetl's own modules.
    warm = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(cmd, cwd=ROOT, capture_output=True, check=False, env=warm)
    for _ in range(repeats):
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.decode()[-500:]}")
    return statistics.median(times), times


def heavy_modules() -> list[str]:
    """Modules of heavy SDKs that `rcetl validate` imported (should be none)."""
    probe = ("import sys, runpy; sys.argv=['rcetl','validate','pipelines/demo.yaml']\n"
             "try:\n    runpy.run_module('rcetl.cli.main', run_name='__main__')\nexcept SystemExit:\n    pass\n"
             "heavy=('boto3','botocore','google.cloud','pymongo','celery','dlt','dropbox','psycopg','pymysql',"
             "'pandas','numpy','redis','kombu','pyarrow','alembic','sqlalchemy')\n"
             "print(','.join(sorted({m.split('.')[0] for m in sys.modules if m.startswith(heavy)})))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=False)
    last = (out.stdout.strip().splitlines() or [""])[-1]
    return [m for m in last.split(",") if m and " " not in m]


def run(quick: bool) -> tuple[list[Figure], dict]:
    repeats = 3 if quick else 11
    bare, bare_all = wall([sys.executable, "-c", "pass"], repeats)
    help_s, help_all = wall([RCETL, "--help"], repeats)
    validate_s, validate_all = wall([RCETL, "validate", "pipelines/demo.yaml"], repeats)
    heavy = heavy_modules()
    figures = [
        Figure("startup", "`rcetl --help` wall time (median)", round(help_s, 3), TARGET_SECONDS, "<=", "s",
               margin=0.25, gate=False,
               note=f"{help_s / bare:.1f}x a bare `python -c pass` ({bare * 1000:.0f} ms) on this machine"),
        Figure("startup", "`rcetl validate pipelines/demo.yaml` wall time (median)", round(validate_s, 3),
               VALIDATE_TARGET_SECONDS, "<=", "s", margin=0.25, gate=False,
               note=f"{validate_s / bare:.1f}x a bare `python -c pass`; "
                    f"{'met' if validate_s <= VALIDATE_TARGET_SECONDS else 'MISSED'} "
                    f"(target {VALIDATE_TARGET_SECONDS} s)"),
        # CI gates on ratios: the CLI may cost at most ~20 bare interpreter start-ups (0.5 s / 25 ms).
        Figure("startup", "`rcetl --help` / `python -c pass`", round(help_s / bare, 1), 20, "<=", "x", margin=5),
        # validate's own target is 0.3 s: 12 start-ups of a ~25 ms interpreter.
        Figure("startup", "`rcetl validate` / `python -c pass`", round(validate_s / bare, 1), 12, "<=", "x",
               margin=3),
        Figure("startup", "heavy SDK modules imported by `rcetl validate`", len(heavy), 0, "<=", "",
               note=", ".join(heavy) or "none"),
    ]
    raw = {"bare_python_s": bare_all, "help_s": help_all, "validate_s": validate_all, "heavy_modules": heavy}
    return figures, raw


def main() -> None:
    cli("startup", __doc__, run)

if __name__ == "__main__":
    main()
