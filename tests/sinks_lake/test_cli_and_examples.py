"""Both new sinks (couchdb, lake) as users meet them: in ``rcetl plugins list`` with their
description, in ``rcetl schema`` with their options, and in the pipeline examples, which validate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RCETL = [sys.executable, "-m", "rcetl.cli.main"]
ENV = {**os.environ, "RC_CLIENT_ID": "id", "RC_CLIENT_SECRET": "secret", "RC_JWT": "jwt",
       "ARCHIVE_BUCKET": "acme-rc-archive", "COUCHDB_PASSWORD": "pw-for-validation"}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RCETL, *args], capture_output=True, text=True, timeout=120, env=ENV, cwd=ROOT)


def test_plugins_list_names_both_sinks() -> None:
    done = cli("plugins", "list", "--json")
    assert done.returncode == 0, done.stderr
    sinks = {p["name"]: p for p in json.loads(done.stdout)["plugins"] if p["kind"] == "sink"}
    assert "CouchDB" in sinks["couchdb"]["description"] and "Parquet" in sinks["lake"]["description"]


def test_schema_describes_their_options() -> None:
    done = cli("schema")
    assert done.returncode == 0, done.stderr
    schema = done.stdout
    for option in ("inline_max_bytes", "binaries", "filesystem_options", "compression"):
        assert option in schema


@pytest.mark.parametrize("example", ["couchdb.yaml", "lake.yaml"])
def test_the_pipeline_examples_validate(example: str) -> None:
    done = cli("validate", f"pipelines/{example}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "pw-for-validation" not in done.stdout + done.stderr
