"""The example third-party package (examples/rcetl-parquet-sink) passes its own tests: the contract
suite and DuckDB reading a sandbox run's lake with the ground truth's counts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.services import require_module

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "rcetl-parquet-sink"


def test_the_parquet_example_passes_its_tests() -> None:
    # Installed by `make install-test`; missing, it is a skip on a laptop and a failure on CI.
    for module in ("rcetl_parquet_sink", "duckdb"):
        require_module(module, "pip install --no-deps --no-build-isolation -e examples/rcetl-parquet-sink pyarrow duckdb")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE)],
                            cwd=EXAMPLE, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout
