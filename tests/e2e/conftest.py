"""Fixtures the end-to-end modules share: the object-store and MongoDB services (started once per
module that asks), and an RCETL_HOME per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .stores import dropbox_server, gcs_server, mongodb_server, moto_server


@pytest.fixture(autouse=True)
def rcetl_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Token vault and locks of in-process runs in this test's folder (the CLI gets the same)."""
    home = tmp_path / "home"
    monkeypatch.setenv("RCETL_HOME", str(home))
    return home


@pytest.fixture(scope="module")
def mongodb_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with mongodb_server(tmp_path_factory.mktemp("mongodb")) as url:
        yield url


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture(scope="module")
def gcs_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with gcs_server(tmp_path_factory.mktemp("gcs")) as url:
        yield url


@pytest.fixture(scope="module")
def dropbox_fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str, str]]:
    with dropbox_server(tmp_path_factory.mktemp("dropbox")) as running:
        yield running
