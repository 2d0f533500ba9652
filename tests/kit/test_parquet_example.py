"""The example third-party package (examples/rcetl-parquet-sink) passes its own tests: the contract
suite, DuckDB reading a sandbox run with the ground truth's counts, its plugin-contributed commands.
It stays an example: small, and pointing production users to the built-in ``lake`` sink."""

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
    # every test of the contract suite ran, plus the pipeline and command tests
    import re

    from rcetl.testing import RecordSinkContract

    contract = [n for n in dir(RecordSinkContract) if n.startswith("test_")]
    passed = int(re.search(r"(\d+) passed", result.stdout).group(1))
    assert passed >= len(contract) + 2, result.stdout[-2000:]


def test_the_example_stays_a_small_teaching_example() -> None:
    sink = (EXAMPLE / "rcetl_parquet_sink" / "sink.py").read_text()
    assert len(sink.splitlines()) <= 150, "the example grew into a product: that is what the lake sink is for"
    assert "lake" in (EXAMPLE / "README.md").read_text().split("## What it shows")[0]
