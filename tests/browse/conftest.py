"""A demo archive (the sandbox's default data set through pipelines/demo.yaml, by the real CLI) and
a browse server over it, shared by the browse tests of one session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

import rcetl
from rcetl.plugins.browse.cli import index_for, reports_dir
from rcetl.plugins.browse.web import BrowseApp, Credentials

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Served:
    url: str
    pipeline: Path
    archive: rcetl.OpenedArchive


def run_demo(folder: Path, sinks: str = "") -> Path:
    """pipelines/demo.yaml in ``folder`` with the record sinks ``sinks`` (YAML, indented as under
    ``sinks:``) added before the folder sink, run once by the real CLI."""
    text = (ROOT / "pipelines" / "demo.yaml").read_text()
    pipeline = folder / "demo.yaml"
    pipeline.write_text(text.replace("  files:", f"{sinks}  files:", 1))
    env = {**os.environ, "RCETL_HOME": str(folder / "home")}
    done = subprocess.run([sys.executable, "-m", "rcetl.cli.main", "run", str(pipeline), "--json"],
                          capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["status"] == "ok"
    return pipeline


@pytest.fixture(scope="session")
def demo_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run_demo(tmp_path_factory.mktemp("browse-demo"))


def serve(app: Any, host: str = "127.0.0.1") -> tuple[str, Any]:
    server = make_server(host, 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://{host}:{server.port}", server


@pytest.fixture(scope="session")
def served(demo_pipeline: Path) -> Iterator[Served]:
    with rcetl.open_archive(demo_pipeline) as archive:
        _, index = index_for(archive.record_sinks, None)
        app = BrowseApp(name=archive.name, index=index, blob_sinks=archive.blob_sinks, state=archive.state,
                        reports_dir=reports_dir(archive.pipeline))
        url, server = serve(app)
        try:
            yield Served(url, demo_pipeline, archive)
        finally:
            server.shutdown()


def make_app(index: Any, *, state: Any = None, credentials: Credentials | None = None) -> BrowseApp:
    return BrowseApp(name="t", index=index, blob_sinks={}, state=state, credentials=credentials)
