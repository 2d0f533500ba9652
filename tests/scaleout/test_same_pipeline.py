"""One pipeline file for both executors (only `--executor celery` differs), and a clear error for
a pipeline whose workers could not share state."""

from __future__ import annotations

import re

from tests.scaleout.archive import check_archive
from tests.scaleout.conftest import run_cli, run_json


def test_same_file_runs_locally_and_on_celery(scenario, workers):
    pipeline = scenario.write_pipeline(["a", "b"], count=10, partitions=2)
    local = run_json(pipeline)
    assert local["status"] == "ok", local["errors"]
    check_archive(scenario, ["a", "b"], 10, 2)

    workers.start(2, concurrency=2)
    proc = run_cli("run", str(pipeline), "--executor", "celery", "--full-refresh")
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    # the same summary table; everything re-read is already stored (idempotent: no duplicate)
    row = re.search(r"entries\s*│\s*(\d+)\s*│\s*(\d+)\s*│\s*([\d.]+ \w+)\s*│\s*(\d+)\s*│", proc.stdout)
    assert row, proc.stdout
    want = local["streams"]["entries"]
    assert int(row.group(1)) == want["records"] == 40
    assert int(row.group(2)) == want["files"] == 40
    assert int(row.group(4)) == 40  # already stored
    assert "requests (ledger:a-" in proc.stdout
    check_archive(scenario, ["a", "b"], 10, 2)


def test_celery_refuses_unshared_state_before_anything_runs(scenario, tmp_path):
    pipeline = scenario.write_pipeline(["a"], count=3)
    text = pipeline.read_text()
    text = re.sub(r"(?m)^state: .*$", f"state: {tmp_path / 'state.db'}", text)
    text = re.sub(r"(?m)^budgets: .*$", "", text)
    pipeline.write_text(text)
    proc = run_cli("run", str(pipeline), "--executor", "celery")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    err = proc.stderr
    assert "cannot run on Celery workers" in err and "budgets.backend" in err and "SQLite" in err
    assert "backend: redis" in err and "postgresql+psycopg" in err  # how to fix it
    assert not (tmp_path / "state.db").exists(), "nothing is opened before the check"


def test_a_preloaded_worker_has_the_engine_open_before_the_first_task(scenario, workers):
    pipeline = scenario.write_pipeline(["a"], count=6, send_log=True)
    (name,) = workers.start(1, concurrency=1, preload=pipeline)
    # opened at start-up (before any task was sent), by the worker process itself
    assert f"opened pipeline {scenario.pipeline_name}" in workers.log(name)
    summary = run_json(pipeline, "--executor", "celery")
    assert summary["status"] == "ok", summary["errors"]
    assert summary["streams"]["entries"]["records"] == 6
    assert workers.log(name).count(f"opened pipeline {scenario.pipeline_name}") == 1  # the task reused it


def test_preload_of_a_missing_file_is_a_usage_error(scenario):
    proc = run_cli("worker", "--preload", str(scenario.tmp / "nope.yaml"), "--queue", scenario.queue, timeout=60)
    assert proc.returncode == 2
    assert "no such pipeline file" in proc.stderr
