"""Several accounts archived by two real worker processes over RabbitMQ, state in PostgreSQL and
budgets in Redis: complete, byte-exact, and the same summary as the local executor prints."""

from __future__ import annotations

from tests.scaleout.archive import check_archive
from tests.scaleout.conftest import run_cli, run_json, sends

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
    assert_requests_exact(scenario, summary, ACCOUNTS, {a: 0 for a in ACCOUNTS})


def assert_requests_exact(scenario, summary, accounts, before) -> None:
    """The summary's requests per account equal the sends the source logged during the run."""
    for a in accounts:
        sent = len(sends(scenario, a)) - before[a]
        reported = summary["requests"].get(f"ledger:{scenario.account(a)}", {})
        assert reported == {"heavy": sent}, (a, reported, sent)


def test_a_second_run_on_the_same_workers_reports_only_its_own_requests(scenario, workers):
    # Workers keep their engine (and budgets) between runs: the second run's summary must count
    # the second run's requests, not a difference of budget counters the first run also moved.
    pipeline = scenario.write_pipeline(ACCOUNTS[:2], count=10, partitions=2, delay=0.01, send_log=True)
    workers.start(2, concurrency=2)
    first = run_json(pipeline, "--executor", "celery")
    assert first["status"] == "ok", first["errors"]
    assert_requests_exact(scenario, first, ACCOUNTS[:2], {a: 0 for a in ACCOUNTS[:2]})
    before = {a: len(sends(scenario, a)) for a in ACCOUNTS[:2]}
    second = run_json(pipeline, "--executor", "celery", "--full-refresh")
    assert second["status"] == "ok", second["errors"]
    assert all(len(sends(scenario, a)) - before[a] == 2 * 10 for a in ACCOUNTS[:2])
    assert_requests_exact(scenario, second, ACCOUNTS[:2], before)


def test_no_idle_warning_while_workers_are_busy(scenario, workers):
    # The submitter warns when no worker has *taken* a task after a while; busy workers are not
    # idle ones (it used to warn on every run whose first task took longer than 30 s).
    pipeline = scenario.write_pipeline(ACCOUNTS[:2], count=12, page=4, delay=0.15)  # each task ~2 s
    workers.start(1, concurrency=2)
    proc = run_cli("run", str(pipeline), "--executor", "celery", "--json",
                   env={"RCETL_IDLE_WARNING_SECONDS": "0.5"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "no result yet" not in proc.stderr
