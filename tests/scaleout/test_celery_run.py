"""Several accounts archived by two real worker processes over RabbitMQ, state in PostgreSQL and
budgets in Redis: complete, byte-exact, and the same summary as the local executor prints."""

from __future__ import annotations

from tests.scaleout.archive import check_archive
from tests.scaleout.conftest import run_json, sends

ACCOUNTS = ["a", "b", "c", "d"]


def test_four_accounts_on_two_workers_complete_and_byte_exact(scenario, workers):
    pipeline = scenario.write_pipeline(ACCOUNTS, count=12, partitions=2, delay=0.02, send_log=True)
    names = workers.start(2, concurrency=2)
    summary = run_json(pipeline, "--executor", "celery")
    assert summary["status"] == "ok", summary["errors"]
    assert summary["streams"]["entries"]["records"] == 4 * 2 * 12
    assert summary["streams"]["entries"]["files"] == 4 * 2 * 12
    assert summary["sinks"]["db"]["records"] == 4 * 2 * 12
    assert summary["sinks"]["files"]["files"] == 4 * 2 * 12
    check_archive(scenario, ACCOUNTS, 12, 2)
    # both workers did part of the work, and every account's budget reports its downloads
    assert sum(sum(g.values()) for g in summary["requests"].values()) == 4 * 2 * 12
    assert len(summary["requests"]) == 4
    # both worker processes did part of the work
    pids = {pid for a in ACCOUNTS for _, pid in sends(scenario, a)}
    assert pids == {workers.pid(n) for n in names}
