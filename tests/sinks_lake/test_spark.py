"""Apache Spark (pyspark 4, local mode, Java 17) reads the lake a sandbox run wrote and gets the
ground truth's counts per stream and day. ``make test-spark`` installs pyspark into its own venv
(``.venv-spark``, ~690 MB, kept out of the test extra) and points ``RCETL_SPARK_PYTHON`` at it;
``make test`` runs this only where pyspark imports in the test interpreter itself."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.e2e.stores import default_sandbox, run
from tests.services import unavailable

from .test_lake_with_sandbox import lake_pipeline, truth_by_stream_and_day

pytestmark = [pytest.mark.slow, pytest.mark.integration]

SPARK_COUNTS = """
import json, sys
from pyspark.sql import SparkSession
spark = (SparkSession.builder.master("local[1]").appName("rcetl-lake-test")
         .config("spark.ui.enabled", "false").config("spark.sql.session.timeZone", "UTC").getOrCreate())
df = spark.read.option("mergeSchema", "true").parquet(sys.argv[1])
rows = df.groupBy("stream", "date").count().collect()
legs = df.where("stream = 'call-log'").selectExpr("sum(size(legs))").collect()[0][0]
print(json.dumps({"counts": [[r["stream"], str(r["date"]), r["count"]] for r in rows],
                  "date_type": dict(df.dtypes)["date"], "legs": legs}))
spark.stop()
"""


def spark_python() -> str:
    """The interpreter that has pyspark: RCETL_SPARK_PYTHON (make test-spark), else this one."""
    wanted = os.environ.get("RCETL_TEST_SPARK") == "1"
    python = os.environ.get("RCETL_SPARK_PYTHON")
    if not python and importlib.util.find_spec("pyspark") is not None:
        python = sys.executable
    missing = None
    if not python or not Path(python).exists():
        missing = "pyspark is not installed (run `make test-spark`: it installs pyspark into .venv-spark)"
    elif shutil.which("java") is None:
        missing = "no Java runtime (`apt-get install openjdk-17-jre-headless`; .ci/run does it)"
    if missing:
        if wanted:  # make test-spark: under RCETL_REQUIRE_SERVICES=1 a missing Spark is a failure
            unavailable(missing)
        pytest.skip(missing)
    return python  # type: ignore[return-value]


def test_spark_reads_the_lake_with_the_ground_truth_counts(tmp_path: Path, monkeypatch) -> None:
    python = spark_python()
    monkeypatch.setenv("RCETL_HOME", str(tmp_path / "home"))
    with default_sandbox() as sb:
        gt = sb.ground_truth()
        lake = tmp_path / "lake"
        summary = run(lake_pipeline(tmp_path, sb, {"path": str(lake)}))
        assert summary.status == "ok", summary.errors
    done = subprocess.run([python, "-c", SPARK_COUNTS, str(lake)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert Counter({(s, d): n for s, d, n in result["counts"]}) == truth_by_stream_and_day(gt)
    assert result["date_type"] == "date", "Spark should type the Hive partition `date` as a date"
    assert result["legs"] == sum(len(c.get("legs") or []) for c in gt["accounts"][0]["call_log"])
