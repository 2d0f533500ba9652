"""A worker killed with SIGKILL mid-task: the broker gives its task to the other worker, which
resumes from the last checkpoint; the archive ends complete with no duplicate."""

from __future__ import annotations

from tests.scaleout.archive import check_archive
from tests.scaleout.conftest import finish_run, sends, start_run, wait_for

ACCOUNTS = ["a", "b"]
COUNT = 40


def test_killed_worker_task_is_finished_by_the_other(scenario, workers, background):
    pipeline = scenario.write_pipeline(ACCOUNTS, count=COUNT, page=5, delay=0.08, send_log=True)
    names = workers.start(2, concurrency=2)
    run = start_run(pipeline, "--executor", "celery")
    background.append(run)

    # kill whichever worker is archiving account a, once it has stored a few pages of it
    first = wait_for(lambda: (lambda s: s if len(s) >= 12 else None)(sends(scenario, "a")), 30,
                     "account a under way")
    victim_pid = first[0][1]
    victim = next(n for n in names if workers.pid(n) == victim_pid)
    workers.kill(victim)
    killed_at = len(sends(scenario, "a"))
    assert killed_at < COUNT, "the task finished before the worker was killed: make it slower"

    summary = finish_run(run, timeout=90)
    assert summary["status"] == "ok", summary["errors"]
    survivor_pid = next(workers.pid(n) for n in names if n != victim)
    assert any(pid == survivor_pid for _, pid in sends(scenario, "a")), "the other worker finished account a"
    check_archive(scenario, ACCOUNTS, COUNT, 1)
    # exact counts after the loss: the killed worker's requests and the redone ones, all of them
    for a in ACCOUNTS:
        reported = summary["requests"].get(f"ledger:{scenario.account(a)}", {})
        assert reported == {"heavy": len(sends(scenario, a))}, (a, reported)
