"""Two workers on one account share its Redis budget: together they never exceed it, and
`rcetl workers status` shows who holds which task and how much of the budget is in use."""

from __future__ import annotations

from rcetl.cli.commands_worker import collect_status
from tests.scaleout.conftest import finish_run, run_cli, sends, start_run, wait_for

LIMIT, WINDOW = 5, 0.5
PARTITIONS, COUNT = 4, 16


def test_two_workers_never_exceed_one_accounts_budget(scenario, workers, background):
    pipeline = scenario.write_pipeline(["solo"], count=COUNT, partitions=PARTITIONS, page=5,
                                       heavy_limit=LIMIT, window=WINDOW, send_log=True)
    names = workers.start(2, concurrency=2)
    run = start_run(pipeline, "--executor", "celery")
    background.append(run)

    # while the run works: the health output names the workers, their tasks and the budget in use
    # The broker is shared with other tests running in parallel: look at this test's workers.
    def ours(report):
        return {n: w for n, w in report["workers"].items() if n in names}

    def busy_status():
        report = collect_status(scenario.services.amqp, scenario.queue, scenario.services.redis, "rcetl", 0.5)
        active = [t for w in ours(report).values() for t in w["active"]]
        in_use = report["budgets"].get(f"ledger:{scenario.account('solo')}")
        return report if len(active) >= 2 and in_use else None

    report = wait_for(busy_status, 20, "two active tasks in `rcetl workers status`", interval=0.2)
    assert set(ours(report)) == set(names)
    labels = {t["task"] for w in ours(report).values() for t in w["active"]}
    assert labels <= {f"entries[p{i}]@solo" for i in range(PARTITIONS)}
    assert report["queue_depth"] is not None
    heavy = report["budgets"][f"ledger:{scenario.account('solo')}"]["heavy"]
    assert 0 <= heavy["used"] <= LIMIT

    proc = run_cli("workers", "status", "--broker", scenario.services.amqp, "--queue", scenario.queue,
                   "--redis", scenario.services.redis, "--timeout", "1", timeout=30)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert all(name in proc.stdout for name in names) and "task(s) waiting" in proc.stdout
    assert f"ledger:{scenario.account('solo')}" in proc.stdout
    # the credential's connection and account, by name (published by the workers as they send)
    row = next(ln for ln in proc.stdout.splitlines() if f"\tledger:{scenario.account('solo')}\t" in ln)
    assert row.split("\t")[0] == f"{scenario.pipeline_name}/solo (account {scenario.account('solo')})"
    assert collect_status(scenario.services.amqp, scenario.queue, scenario.services.redis, "rcetl", 0.5)[
        "names"][f"ledger:{scenario.account('solo')}"].startswith(f"{scenario.pipeline_name}/solo")

    summary = finish_run(run)
    assert summary["status"] == "ok", summary["errors"]
    assert summary["streams"]["entries"]["records"] == PARTITIONS * COUNT

    times = sends(scenario, "solo")
    assert len(times) == PARTITIONS * COUNT
    assert {pid for _, pid in times} == {workers.pid(n) for n in names}, "both workers sent requests"
    stamps = [t for t, _ in times]
    # any LIMIT + 1 consecutive sends span at least a window: never more than LIMIT in a window
    tightest = min(stamps[i + LIMIT] - stamps[i] for i in range(len(stamps) - LIMIT))
    assert tightest >= WINDOW - 0.005, f"{LIMIT + 1} sends within {tightest:.3f}s (window {WINDOW}s)"
    # and the budget, not the workers, set the pace (two unshared budgets would go twice as fast)
    assert stamps[-1] - stamps[0] >= (len(stamps) / LIMIT - 1) * WINDOW - 0.01
