"""Crash safety: SIGKILL a real `rcetl run` at many random moments, re-run, and prove the archive
complete and byte-exact: no gap, no duplicate, no half file, every checksum equal to the truth.

The sandbox runs in this test process; each run is a real `rcetl run` process killed with SIGKILL
(nothing is mocked). Kill times are drawn from a seeded generator so a failure reproduces.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from rcetl.sandbox import Sandbox

from ..services import service_url
from .archive_check import assert_no_partial_files, check_archive

KILLS = int(os.environ.get("RCETL_CRASH_KILLS", "50"))
RCETL = [sys.executable, "-m", "rcetl.cli.main"]


def _pipeline(tmp: Path, sb: Sandbox, sinks: str) -> Path:
    path = tmp / "crash.yaml"
    path.write_text(f"""
pipeline: crash
ringcentral:
  server: {sb.server}
  client_id: ${{RC_CLIENT_ID}}
  client_secret: ${{RC_CLIENT_SECRET}}
  jwt: ${{RC_JWT}}
  time_scale: {sb.time_scale}
state: {tmp / 'state.db'}
sources:
  call-log: {{view: Detailed, window: 10d}}
  recording: {{}}
  message-store: {{}}
executor: {{batch_size: 7, downloads: 4}}
sinks:
{sinks}
""")
    return path


def _env(sb: Sandbox) -> dict[str, str]:
    return {**os.environ, "RC_CLIENT_ID": sb.client_id, "RC_CLIENT_SECRET": sb.client_secret, "RC_JWT": sb.jwt,
            "PYTHONUNBUFFERED": "1"}


def _kill_loop(pipeline: Path, env: dict[str, str], kills: int, seed: int) -> int:
    """Start runs and SIGKILL them at random moments until ``kills`` kills landed; return kills made."""
    rng = random.Random(seed)
    made = 0
    attempts = 0
    while made < kills and attempts < kills * 3:
        attempts += 1
        proc = subprocess.Popen([*RCETL, "-q", "run", str(pipeline)], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        # Start-up takes ~0.5 s; kill anywhere from during start-up to well into the archive.
        delay = rng.uniform(0.2, 2.0)
        try:
            proc.wait(timeout=delay)
            continue  # it finished before the kill: archive complete already, nothing to kill
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            made += 1
    return made


def _final_run(pipeline: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*RCETL, "run", str(pipeline)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def _open_sink(plugin: str, name: str, options: dict, tmp: Path):  # noqa: ANN202
    from rcetl.registry import get_plugin_manager

    spec = get_plugin_manager().sinks()[plugin]
    ctx = __import__("rcetl").RunContext(pipeline="crash", budgets=None, coordinator=None, spool_dir=tmp,
                                         base_dir=tmp)
    sink = spec.factory(name, spec.config.model_validate(options), ctx)
    sink.open()
    return sink


@pytest.mark.slow
def test_sigkill_sqlite_and_folder(tmp_path: Path) -> None:
    with Sandbox(seed=7, size="tiny", time_scale=200.0) as sb:
        pipeline = _pipeline(tmp_path, sb, f"""
  db: {{plugin: sqlite, url: "sqlite:///{tmp_path / 'archive.db'}"}}
  files: {{plugin: filesystem, path: {tmp_path / 'files'}}}
""")
        env = _env(sb)
        made = _kill_loop(pipeline, env, KILLS, seed=1)
        assert made >= min(KILLS, 50) * 0.9, f"only {made} kills landed"
        _final_run(pipeline, env)
        gt = sb.ground_truth()
    db = _open_sink("sqlite", "db", {"url": f"sqlite:///{tmp_path / 'archive.db'}"}, tmp_path)
    files = _open_sink("filesystem", "files", {"path": str(tmp_path / "files")}, tmp_path)
    check_archive(gt, db, files)
    assert_no_partial_files(tmp_path / "files")


@pytest.mark.slow
@pytest.mark.integration
def test_sigkill_mariadb_and_s3(tmp_path: Path) -> None:
    mysql = service_url("MYSQL")
    from moto.server import ThreadedMotoServer

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    moto.start()
    try:
        host, port = moto.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        import boto3

        bucket = f"crash-{uuid.uuid4().hex[:8]}"
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x",
                     aws_secret_access_key="x").create_bucket(Bucket=bucket)
        prefix = f"c{uuid.uuid4().hex[:8]}_"
        s3_options = {"bucket": bucket, "endpoint_url": endpoint, "region": "us-east-1"}
        with Sandbox(seed=8, size="tiny", time_scale=200.0) as sb:
            pipeline = _pipeline(tmp_path, sb, f"""
  db: {{plugin: mysql, url: "{mysql}", table_prefix: {prefix}}}
  files: {{plugin: s3, bucket: {bucket}, endpoint_url: "{endpoint}", region: us-east-1}}
""")
            env = {**_env(sb), "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}
            made = _kill_loop(pipeline, env, KILLS, seed=2)
            assert made >= min(KILLS, 50) * 0.9, f"only {made} kills landed"
            _final_run(pipeline, env)
            gt = sb.ground_truth()
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "x")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "x")
        db = _open_sink("mysql", "db", {"url": mysql, "table_prefix": prefix}, tmp_path)
        files = _open_sink("s3", "files", s3_options, tmp_path)
        check_archive(gt, db, files)
    finally:
        moto.stop()
