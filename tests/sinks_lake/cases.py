"""The lake sink's cases for the contract suite (tests/kit/test_builtin_sinks_contract.py runs them):
a local folder, S3 on a moto server, GCS on fake-gcs-server; and runs of ``rcetl`` killed mid-way."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from rcetl.testing import SinkCase
from tests.servers import unique

#: Options the sink must refuse: no path, an unknown codec, an unsupported scheme, a folder it cannot create.
BAD = [{"path": ""}, {"path": "lake", "compression": "lzma"}, {"path": "ftp://host/lake"},
       {"path": "/proc/rcetl-lake/lake"}]


def lake_local(request: pytest.FixtureRequest) -> SinkCase:
    return SinkCase("lake", {"path": "lake"}, label="lake-local")


def s3_options(url: str) -> dict[str, str]:
    """pyarrow S3FileSystem options for a moto server at ``url``."""
    return {"endpoint_override": url.split("://", 1)[1], "scheme": "http", "region": "us-east-1",
            "access_key": "testing", "secret_key": "testing"}


def create_bucket(url: str, prefix: str) -> str:
    import boto3

    bucket = unique(prefix).lower()
    boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket=bucket)
    return bucket


def lake_s3(request: pytest.FixtureRequest) -> SinkCase:
    url = request.getfixturevalue("s3_url")
    bucket = create_bucket(url, "rcetl-lake")
    return SinkCase("lake", {"path": f"s3://{bucket}/lake", "filesystem_options": s3_options(url)},
                    label="lake-s3")


def kill_runs(pipeline: Path, env: dict[str, str], kills: int, seed: int,
              progress: Callable[[], int] | None = None, total: int = 0) -> int:
    """Start real ``rcetl run`` processes and SIGKILL each at a random moment (start-up to well into
    the archive) until ``kills`` kills landed; returns how many did (a run may finish first).

    With ``progress`` (how many items the store holds now) and ``total`` (how many a full run
    leaves), each run is killed once the store holds a random share of what is still missing: a
    moment inside the archive however fast the machine is. Without it, after a random 0.5-4 s: a
    run quicker than its first wait finishes, and every later run is then an incremental no-op
    that no wait catches (what the CouchDB test met once its sink got faster)."""
    import os
    import random
    import signal
    import subprocess
    import sys
    import time

    rng, made = random.Random(seed), 0
    for _ in range(kills * 3):
        if made >= kills:
            break
        if progress is not None:
            held = progress()
            target = held + max(1, int(rng.uniform(0.05, 0.9) * (total - held)))
        proc = subprocess.Popen([sys.executable, "-m", "rcetl.cli.main", "-q", "run", str(pipeline)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        if progress is None:
            try:
                proc.wait(timeout=rng.uniform(0.5, 4.0))
                continue
            except subprocess.TimeoutExpired:
                pass
        else:
            deadline = time.monotonic() + 300
            while proc.poll() is None and progress() < target and time.monotonic() < deadline:
                time.sleep(0.01)
            if proc.poll() is not None:
                continue
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        made += 1
    return made


def final_run(pipeline: Path, env: dict[str, str]) -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "rcetl.cli.main", "run", str(pipeline)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def lake_gcs(request: pytest.FixtureRequest) -> SinkCase:
    """GCS on fake-gcs-server, through pyarrow's own GcsFileSystem."""
    import requests

    url = request.getfixturevalue("gcs_url")
    bucket = unique("rcetl-lake").lower()
    requests.post(f"{url}/storage/v1/b", params={"project": "rcetl"}, json={"name": bucket},
                  timeout=30).raise_for_status()
    return SinkCase("lake", {"path": f"gs://{bucket}/lake", "filesystem_options": {
        "anonymous": True, "endpoint_override": url.split("://", 1)[1], "scheme": "http"}}, label="lake-gcs")
