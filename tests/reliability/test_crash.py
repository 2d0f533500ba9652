"""Crash safety: SIGKILL a real `rcetl run` inside every step of its work, re-run, and prove the archive
complete and byte-exact: no gap, no duplicate, no half file, every checksum equal to the truth.

Every kill lands on remaining work, by construction and by measurement:

- before each run the sandbox gets new calls (some recorded) and messages, so there is always
  something to list, download, store, write and checkpoint;
- the run is started under tests/reliability/probe.py, which pauses it inside one chosen step
  (listing, download, each blob sink's ``store``, each record sink's ``write``, the checkpoint), and
  the test SIGKILLs it there — at a seeded random occurrence, before or after the call returned;
- after each kill the archive is compared with the sandbox's ground truth: a kill "interrupted real
  work" when some record sink was missing records the source had. At least 90% must, and the test
  prints how many did.

The sandbox runs in this test process and each run is a real `rcetl run` process (nothing is mocked).
"""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from rcetl.sandbox import Sandbox
from tests.servers import drop_tables, unique
from tests.services import service_url

from .archive_check import assert_no_partial_files, check_archive, expected
from .harness import env_for, open_sink, rcetl_cli, write_pipeline

ROOT = Path(__file__).resolve().parents[2]
PROBE = [sys.executable, "-m", "tests.reliability.probe"]
# Kills per step (each step of the pipeline is killed this many times). CI: the default.
KILLS_PER_STEP = int(os.environ.get("RCETL_CRASH_KILLS_PER_STEP", "2"))
STREAMS = ("call-log", "recording", "message-store")


@dataclass
class Archive:
    """The sinks of one pipeline: YAML, and how to open each sink to read the archive back."""

    yaml: str = ""
    records: dict[str, Callable[[], Any]] = field(default_factory=dict)
    blobs: dict[str, Callable[[], Any]] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    checks: list[Callable[[], None]] = field(default_factory=list)
    cleanup: list[Callable[[], None]] = field(default_factory=list)

    def add(self, kind: str, name: str, options: dict[str, Any], tmp: Path) -> None:
        self.yaml += f"  {name}: {{plugin: {name}, {', '.join(f'{k}: {_yaml(v)}' for k, v in options.items())}}}\n"
        (self.records if kind == "record" else self.blobs)[name] = lambda: open_sink(name, name, options, tmp)

    @property
    def steps(self) -> list[str]:
        return (["listing", "download", "checkpoint"] + [f"record:{n}" for n in self.records]
                + [f"blob:{n}" for n in self.blobs])


def _yaml(value: Any) -> str:
    return "true" if value is True else f'"{value}"' if isinstance(value, str) else str(value)


def _local(archive: Archive, tmp: Path, request: pytest.FixtureRequest) -> None:
    archive.add("record", "sqlite", {"url": f"sqlite:///{tmp / 'archive.db'}"}, tmp)
    archive.add("blob", "filesystem", {"path": str(tmp / "files")}, tmp)
    archive.checks.append(lambda: assert_no_partial_files(tmp / "files"))


def _every_sink(archive: Archive, tmp: Path, request: pytest.FixtureRequest) -> None:
    """Every built-in sink this machine can run (SQL Server cannot: see tests/services.py)."""
    _local(archive, tmp, request)
    prefix = f"c{uuid.uuid4().hex[:8]}_"
    for plugin in ("mysql", "postgres"):
        archive.add("record", plugin, {"url": service_url(plugin.upper()), "table_prefix": prefix}, tmp)
        archive.cleanup.append(lambda p=plugin: drop_tables(archive.records[p]()))
    archive.add("record", "mongodb", {"url": request.getfixturevalue("mongodb_url"),
                                      "database": f"crash_{uuid.uuid4().hex[:10]}"}, tmp)
    archive.env.update(AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x")
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):  # this process's own S3 client (the check)
        request.getfixturevalue("monkeypatch").setenv(var, "x")
    archive.add("blob", "s3", {"bucket": unique("crash").lower(), "endpoint_url": request.getfixturevalue("s3_url"),
                               "region": "us-east-1", "addressing_style": "path", "create_bucket": True}, tmp)
    archive.add("blob", "gcs", {"bucket": unique("crash").lower(), "emulator_host": request.getfixturevalue("gcs_url"),
                                "create_bucket": True}, tmp)
    _fake, host, ca = request.getfixturevalue("dropbox_fake")
    archive.add("blob", "dropbox", {"root": "/" + unique("crash"), "access_token": "test-token", "ca_certs": ca,
                                    "api_host": host, "content_host": host}, tmp)


def _kill_at(pipeline: Path, env: dict[str, str], target: str) -> str | None:
    """Run ``rcetl run`` paused at ``target`` (see probe.py) and SIGKILL it there. Returns the step
    it was killed in, or None when the run ended before reaching it."""
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen([*PROBE, "-q", "run", str(pipeline)], cwd=ROOT, pass_fds=(write_fd,),
                            env={**env, "RCETL_PROBE": target, "RCETL_PROBE_FD": str(write_fd)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    os.close(write_fd)
    try:
        ready, _, _ = select.select([read_fd], [], [], 120)
        line = os.read(read_fd, 4096).decode().strip() if ready else ""
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return line.splitlines()[0] if line else None
    finally:
        os.close(read_fd)


def _work_left(sb: Sandbox, archive: Archive) -> bool:
    """Whether some record sink lacks records the source has (the kill interrupted real work)."""
    want = expected(sb.ground_truth())
    for opener in archive.records.values():
        sink = opener()
        try:
            if any(sink.count(stream) < len(want[stream]) for stream in STREAMS):
                return True
        finally:
            sink.close()
    return False


@pytest.mark.slow
@pytest.mark.parametrize("sinks", [pytest.param(_local, id="sqlite+folder"),
                                   pytest.param(_every_sink, id="every-sink", marks=pytest.mark.integration)])
def test_sigkill_inside_every_step(tmp_path: Path, request: pytest.FixtureRequest,
                                   sinks: Callable[[Archive, Path, pytest.FixtureRequest], None]) -> None:
    archive = Archive()
    try:
        sinks(archive, tmp_path, request)
        _kill_every_step_then_check(archive, tmp_path, request)
    finally:
        for cleanup in archive.cleanup:
            cleanup()


def _kill_every_step_then_check(archive: Archive, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    rng = random.Random(19)
    landed: Counter[str] = Counter()
    interrupted = kills = 0
    missed: list[str] = []
    with Sandbox(seed=7, size="tiny", time_scale=200.0) as sb:
        pipeline = write_pipeline(tmp_path, sb, archive.yaml, name="crash", executor="{batch_size: 3, downloads: 2}")
        env = env_for(sb, tmp_path, **archive.env)
        steps = archive.steps * KILLS_PER_STEP
        rng.shuffle(steps)
        for step in steps:
            # New work at the source for this run: calls (some recorded) and messages.
            sb.add_calls(2, recordings=1)
            sb.add_messages(2)
            target = f"{step}|{rng.randint(1, 2)}|{rng.choice(['before', 'after'])}"
            killed_in = _kill_at(pipeline, env, target)
            kills += 1
            if killed_in is None:
                missed.append(target)
                continue
            landed[killed_in] += 1
            interrupted += _work_left(sb, archive)
        final = rcetl_cli(["run", str(pipeline), "--retry-now"], env)
        assert final.returncode == 0, final.stdout[-3000:] + final.stderr[-3000:]
        gt = sb.ground_truth()
    report = (f"SIGKILL: {interrupted} of {kills} kills interrupted unfinished work "
              f"({interrupted / kills:.0%}); killed in {dict(sorted(landed.items()))}; "
              f"runs that ended before their kill point: {missed}")
    request.node.user_properties.append(("report", report))  # printed in the terminal summary
    assert set(landed) == set(archive.steps), f"steps never killed: {set(archive.steps) - set(landed)}; {report}"
    assert interrupted >= 0.9 * kills, report
    for name, record_sink in archive.records.items():
        check_archive(gt, record_sink(), archive.blobs["filesystem"]())
        if name == "sqlite":
            for blob_name, blob_sink in archive.blobs.items():
                check_archive(gt, record_sink(), blob_sink())
                if blob_name != "dropbox":  # it cannot list its objects (see docs/sinks/object-stores.md)
                    _every_archived_binary_described(record_sink(), blob_sink(), blob_name)
    for check in archive.checks:
        check()


def _every_archived_binary_described(records: Any, blobs: Any, name: str) -> None:
    """Every binary a record names is described in the store (its sidecar, or a line of a batch
    manifest: S3 and GCS by default), whichever step the kills landed in: the descriptions are
    written by sync(), before any record names the binary."""
    described = dict(blobs.iter_stored())
    archived = {blob["locations"][name]: blob["blob_id"] for stream in STREAMS for entry in records.archived(stream)
                for blob in entry.archive or [] if blob.get("status") == "stored"}
    assert archived, "no binary archived"
    undescribed = {loc: bid for loc, bid in archived.items() if described.get(loc) != bid}
    assert not undescribed, f"{name}: {len(undescribed)} of {len(archived)} binaries not described: {undescribed}"
