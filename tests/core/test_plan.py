"""`rcetl run --dry-run` predicts the run: `--count` reads the listings and counts every download in
its API group, and the durations use the connection's time scale (core/cli/plan.py).

Against the sandbox in this process (a real HTTP server; nothing mocked): the plan's Heavy
requests are compared with what the sandbox counted for the real run that follows.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rcetl.sandbox import Sandbox

from ..reliability.harness import env_for, rcetl_cli, sqlite_and_folder, write_pipeline


def _heavy(counters: dict) -> int:
    return sum(n for g, n in counters["by_group"].items() if g.lower() == "heavy")


def _planned(stdout: str, group: str) -> int:
    return sum(int(n) for n in re.findall(rf"\b{group}: (\d+)", stdout))


@pytest.mark.slow
def test_dry_run_count_counts_downloads_and_predicts_heavy(tmp_path: Path) -> None:
    with Sandbox(seed=4, size="tiny", time_scale=60.0) as sb:
        sinks, _, _ = sqlite_and_folder(tmp_path)
        pipeline = write_pipeline(tmp_path, sb, sinks, name="plan", sources="""
  call-log: {view: Detailed, window: 10d}
  recording: {}""")
        env = env_for(sb, tmp_path)
        truth = sb.ground_truth()
        recordings = sum(1 for a in truth["accounts"] for r in a["recordings"] if r["available"])
        assert recordings > 0

        estimate = rcetl_cli(["run", str(pipeline), "--dry-run"], env)
        assert estimate.returncode == 0, estimate.stderr
        assert "downloads are not counted" in estimate.stdout  # the estimate says what it leaves out
        assert sb.counters()["requests"] == 0, "a dry run without --count sent requests"

        before = _heavy(sb.counters())
        plan = rcetl_cli(["run", str(pipeline), "--dry-run", "--count"], env)
        assert plan.returncode == 0, plan.stdout + plan.stderr
        listing = _heavy(sb.counters()) - before
        assert f"{recordings} recording(s) to download" in plan.stdout, plan.stdout
        planned_heavy = _planned(plan.stdout, "Heavy")
        assert planned_heavy == listing + recordings
        assert "time scale 60" in plan.stdout
        assert not (tmp_path / "files").exists() or not any((tmp_path / "files").rglob("*.*"))

        before = _heavy(sb.counters())
        run = rcetl_cli(["run", str(pipeline)], env)
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
        actual = _heavy(sb.counters()) - before
    assert abs(planned_heavy - actual) <= 0.1 * actual, (planned_heavy, actual)
