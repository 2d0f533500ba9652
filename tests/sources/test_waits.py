"""Every wait is bounded and every wait can be interrupted (issue 15, point 3).

A ``429`` (or a ``503``) whose ``Retry-After`` is absurd (999999999 s, about 31.7 years) fails the
request now with a message naming the group and the wait asked for, instead of stalling the run;
and Ctrl-C or SIGTERM while a run waits (for a budget window, or between retries) ends it within
moments, with nothing half-done kept: a later run completes the archive.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .runs import archive_of

ROOT = Path(__file__).resolve().parents[2]
ABSURD = ["Retry-After: 999999999", "about 31.7 years", "backoff_cap"]


@pytest.mark.timeout(180)  # before the fix this run waited 999999999 s / 60
def test_an_absurd_retry_after_on_a_download_fails_the_item_now_and_a_later_run_completes(
        sandbox_factory, tmp_path: Path) -> None:
    sb = sandbox_factory(time_scale=60.0, faults="429long=#1@recording-content")
    archive = archive_of(sb, tmp_path / "a")

    first = archive.run()

    assert first.status == "partial", first.errors
    [item] = archive.failed()
    assert item.stream == "recording"
    for fragment in [*ABSURD, "Heavy group", "/content"]:
        assert fragment in item.error, f"{fragment!r} not in: {item.error}"
    second = archive.run(retry_now=True)
    assert second.status == "ok", second.errors
    archive.check_complete(sb)


@pytest.mark.timeout(180)
def test_an_absurd_retry_after_on_a_list_page_fails_the_stream_now_naming_the_wait(
        sandbox_factory, tmp_path: Path) -> None:
    sb = sandbox_factory(time_scale=60.0, faults="429long=#1@account-call-log")
    archive = archive_of(sb, tmp_path / "a")

    first = archive.run()

    assert first.status == "failed"
    [error] = [e for e in first.errors if "call-log" in e]
    for fragment in [*ABSURD, "Heavy group", "/call-log"]:
        assert fragment in error, f"{fragment!r} not in: {error}"
    second = archive.run()
    assert second.status == "ok", second.errors
    archive.check_complete(sb)


def test_a_retry_after_within_backoff_cap_is_honoured(sandbox_factory, tmp_path: Path) -> None:
    """The bound does not throw away ordinary penalties: a 429 storm (60 s penalties) still completes."""
    sb = sandbox_factory(time_scale=600.0, faults="429=#3@account-call-log")
    archive = archive_of(sb, tmp_path / "a")
    summary = archive.run()
    assert summary.status == "ok", summary.errors
    assert sb.counters()["by_status"].get("429") == 3
    archive.check_complete(sb)


# --- Ctrl-C and SIGTERM during a wait ----------------------------------------------------------------


def _start(archive, tmp_path: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "RCETL_HOME": str(tmp_path / "home"), "PYTHONUNBUFFERED": "1"}
    # Ctrl-C comes from a terminal, where SIGINT is never ignored; a suite started as a background
    # job of a non-interactive shell (`.ci/run &`) hands its children SIGINT ignored, and Python
    # then installs no KeyboardInterrupt handler: the run would be right to go on.
    return subprocess.Popen([sys.executable, "-m", "rcetl.cli.main", "run", str(archive.path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _until(condition, proc: subprocess.Popen[str], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"the run ended before it waited: {proc.communicate()}"
        assert time.monotonic() < deadline, "the run never reached the wait"
        time.sleep(0.05)


def _interrupt(proc: subprocess.Popen[str], sig: int) -> float:
    time.sleep(0.5)  # well inside the wait (which lasts 16 s or more)
    assert proc.poll() is None
    sent = time.monotonic()
    proc.send_signal(sig)
    try:
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return time.monotonic() - sent


def _assert_stopped_promptly(proc: subprocess.Popen[str], sig: int, archive, waiting: str) -> None:  # noqa: ANN001
    elapsed = _interrupt(proc, sig)
    print(f"stopped {elapsed:.2f}s after {signal.Signals(sig).name}")
    _, err = proc.communicate()
    assert proc.returncode == 130, err[-2000:]
    assert elapsed < 2.0, f"the run took {elapsed:.2f}s to stop ({waiting})"
    assert "Traceback" not in err, err[-3000:]
    assert archive.failed() == []  # nothing the stop cut short is queued as failed


@pytest.mark.slow
@pytest.mark.timing
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_during_a_budget_wait_ends_the_run_promptly(sandbox_factory, tmp_path: Path, sig: int) -> None:
    # Real time: Heavy 10 per 60 s, and the call log's first run needs 14 Heavy pages.
    sb = sandbox_factory(time_scale=1.0)
    archive = archive_of(sb, tmp_path / "a", sources="  call-log: {}")
    proc = _start(archive, tmp_path)
    _until(lambda: sb.counters()["by_group"].get("Heavy", 0) >= 10, proc)

    _assert_stopped_promptly(proc, sig, archive, "it was waiting up to 60 s for its budget")
    assert sb.counters()["by_group"].get("Heavy", 0) == 10  # and nothing was sent after the signal


@pytest.mark.slow
@pytest.mark.timing
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_during_a_backoff_sleep_ends_the_run_promptly_and_the_next_run_completes(
        sandbox_factory, tmp_path: Path, sig: int) -> None:
    # Recording downloads answer 503 five times in a row: the client sleeps 2, 4, 8, then 16 s.
    sb = sandbox_factory(time_scale=1.0, limits=False, faults="5xx=#5@recording-content")
    archive = archive_of(sb, tmp_path / "a", downloads=1)
    proc = _start(archive, tmp_path)
    _until(lambda: sum(n for s, n in sb.counters()["by_status"].items() if s.startswith("5")) >= 4, proc)

    _assert_stopped_promptly(proc, sig, archive, "it was in a 16 s backoff sleep")

    after = archive.run()  # the last 503, then everything: the stop left nothing inconsistent
    assert after.status == "ok", after.errors
    archive.check_complete(sb)
