"""A budget that survives restarts: SIGKILL a real `rcetl run` at random moments 20 times, start it
again at once each time, and the sandbox must count no 429 at all.

Without the persisted windows (docs/budgets.md, "Restarts") every restart starts with an empty
budget and sends, in the same window, what the killed process already spent. The sandbox runs in
this process at a 3 s window (time scale 20): longer than a restart, so a restarted process lands
in the window its predecessor spent (at a 1 s window the old window would be gone before the new
process sends, and the test could not fail), short enough for CI. Calls with recordings are added
before each restart so every run has Heavy work to pace (a run that found nothing to do would
prove nothing). Nothing is mocked; kill times come from a seeded generator.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
from pathlib import Path

import pytest

from rcetl.sandbox import Sandbox

from ..services import service_url
from .harness import RCETL, env_for, rcetl_cli, sqlite_and_folder, write_pipeline

KILLS = int(os.environ.get("RCETL_BUDGET_KILLS", "20"))
#: Recordings added before each start: what the Heavy budget (10 per 3 s) can drain over the loop.
NEW_RECORDINGS = 4


def _kill_and_restart(pipeline: Path, env: dict[str, str], sb: Sandbox, kills: int, seed: int) -> int:
    rng = random.Random(seed)
    made = attempts = 0
    while made < kills and attempts < kills * 3:
        attempts += 1
        sb.add_calls(NEW_RECORDINGS, recordings=NEW_RECORDINGS)  # Heavy work for every run
        proc = subprocess.Popen([*RCETL, "-q", "run", str(pipeline)], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            # from start-up (~0.5 s) to well into the paced downloads
            proc.wait(timeout=rng.uniform(0.4, 2.5))  # within one 3 s window of the last start
            continue
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            made += 1
    return made


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_sigkill_and_restart_draws_no_429(tmp_path: Path, backend: str) -> None:
    # memory: the windows are journalled in the state store; redis: they live in Redis (each
    # sandbox has its own port, so its credential ids -- and Redis keys -- are this test's own)
    extra = f"budgets: {{backend: redis, url: '{service_url('REDIS')}'}}" if backend == "redis" else ""
    with Sandbox(seed=11, size="tiny", time_scale=20.0) as sb:
        sinks, _, _ = sqlite_and_folder(tmp_path)
        pipeline = write_pipeline(tmp_path, sb, sinks, name="restart", executor="{batch_size: 5, downloads: 8}",
                                  extra=extra)
        env = env_for(sb, tmp_path)
        made = _kill_and_restart(pipeline, env, sb, KILLS, seed=3)
        assert made >= KILLS * 0.9, f"only {made} kills landed"
        final = rcetl_cli(["run", str(pipeline), "--retry-now"], env)
        assert final.returncode == 0, final.stdout[-3000:] + final.stderr[-3000:]
        counters = sb.counters()
    heavy = counters["by_group"].get("Heavy", 0) or counters["by_group"].get("heavy", 0)
    assert heavy >= KILLS * NEW_RECORDINGS, f"Heavy requests {heavy}: the runs did not download the recordings"
    assert counters["throttled"] == 0, f"{counters['throttled']} 429 responses: {counters['by_status']}"
