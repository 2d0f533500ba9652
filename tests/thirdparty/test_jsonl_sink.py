"""A third-party sink package (rcetl-jsonl-sink) installed with pip into a folder of its own and used
by the real ``rcetl`` command in a subprocess: listed with its package, version and origin,
validated, and used by a pipeline, with no change to the core.

The pipeline's source is the core tests' fake source, installed the same way as a second package,
so the run needs no network and no server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .wheels import build_wheel, wheel_from_project

# One pip install for the module: under `pytest -n --dist loadgroup` these tests share a worker.
pytestmark = pytest.mark.xdist_group("thirdparty-jsonl-sink")

HERE = Path(__file__).parent
PROJECT = HERE / "rcetl-jsonl-sink"
FAKESOURCE = HERE.parent / "core" / "fakesource.py"

PIPELINE = """\
pipeline: thirdparty
fake: {{}}
sources:
  items: {{count: 5, page: 2, big_ids: true}}
sinks:
  lines: {{plugin: jsonl, folder: out{extra}}}
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with both packages installed by pip, as PYTHONPATH would find them."""
    root = tmp_path_factory.mktemp("thirdparty")
    jsonl = wheel_from_project(PROJECT, root / "dist")
    fake = build_wheel(root / "dist", "rcetl-test-fakesource", "1.0",
                       {"rcetl_test_fakesource.py": FAKESOURCE.read_bytes()},
                       {"rcetl": {"fake": "rcetl_test_fakesource"}})
    target = root / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                    "--disable-pip-version-check", "--target", str(target), str(jsonl), str(fake)],
                   check=True, capture_output=True, text=True, timeout=120)
    assert (target / "rcetl_jsonl_sink" / "__init__.py").exists()
    return target


def rcetl(site: Path, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RCETL_")}
    environ.update(PYTHONPATH=str(site), **env)
    return subprocess.run([sys.executable, "-m", "rcetl.cli.main", *args], cwd=cwd, env=environ,
                          capture_output=True, text=True, timeout=120)


def test_the_package_is_listed_with_its_name_version_and_origin(site: Path, tmp_path: Path) -> None:
    result = rcetl(site, "plugins", "list", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    plugins = {(p["kind"], p["name"]): p for p in json.loads(result.stdout)["plugins"]}
    jsonl = plugins[("sink", "jsonl")]
    assert (jsonl["package"], jsonl["version"], jsonl["origin"]) == ("rcetl-jsonl-sink", "0.3.1", "third-party")
    assert jsonl["module"] == "rcetl_jsonl_sink"
    assert plugins[("sink", "filesystem")]["origin"] == "built-in"

    shown = rcetl(site, "plugins", "show", "jsonl", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "rcetl-jsonl-sink 0.3.1 (third-party)" in shown.stdout
    assert "folder" in shown.stdout and "fsync" in shown.stdout


def test_a_pipeline_validates_and_runs_with_the_third_party_sink(site: Path, tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(PIPELINE.format(extra=""))

    valid = rcetl(site, "validate", "p.yaml", cwd=tmp_path)
    assert valid.returncode == 0, valid.stderr
    assert "valid pipeline 'thirdparty'" in valid.stdout and "sinks lines" in valid.stdout

    ran = rcetl(site, "run", "p.yaml", "--json", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout.strip().splitlines()[-1])["status"] == "ok"
    lines = [json.loads(x) for x in (tmp_path / "out" / "items.jsonl").read_text().splitlines()]
    assert [x["key"] for x in lines] == [2**53 + 1 + i for i in range(5)]  # exact 64-bit ids

    # idempotent: reading everything again adds nothing
    again = rcetl(site, "run", "p.yaml", "--full-refresh", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert len((tmp_path / "out" / "items.jsonl").read_text().splitlines()) == 5


def test_its_options_are_validated_like_a_built_in_sink(site: Path, tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(PIPELINE.format(extra=", fsnyc: false"))
    result = rcetl(site, "validate", "p.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert "p.yaml:6: sinks.lines.fsnyc: unknown option 'fsnyc'" in result.stderr
    assert "did you mean 'fsync'?" in result.stderr


def test_disabling_autoload_keeps_third_party_plugins_out(site: Path, tmp_path: Path) -> None:
    result = rcetl(site, "plugins", "list", "--json", cwd=tmp_path, RCETL_DISABLE_PLUGIN_AUTOLOAD="1")
    assert result.returncode == 0, result.stderr
    names = {p["name"] for p in json.loads(result.stdout)["plugins"]}
    assert "jsonl" not in names and "fake" not in names
    assert "filesystem" in names  # rcetl's own plugins still load
