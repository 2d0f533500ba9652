"""Fixtures the end-to-end modules share: an RCETL_HOME per test. The servers (MongoDB, S3, GCS,
Dropbox) are tests/servers.py's session fixtures, like every other folder's."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def rcetl_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Token vault and locks of in-process runs in this test's folder (the CLI gets the same)."""
    home = tmp_path / "home"
    monkeypatch.setenv("RCETL_HOME", str(home))
    return home
