"""A broken plugin package (one that cannot be imported; one with an unknown hook) is named in
``rcetl plugins list`` with the package to fix, and every other plugin keeps working.

The packages are real wheels installed by pip into a folder of their own, found through PYTHONPATH,
and the real ``rcetl`` command runs in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.thirdparty.wheels import wheel_from_project

HERE = Path(__file__).parent / "broken"
PACKAGES = ("rcetl-broken-import", "rcetl-unknown-hook", "rcetl-good-sink")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("broken")
    wheels = [str(wheel_from_project(HERE / name, root / "dist")) for name in PACKAGES]
    target = root / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                    "--disable-pip-version-check", "--target", str(target), *wheels],
                   check=True, capture_output=True, text=True, timeout=120)
    return target


def rcetl(site: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RCETL_")}
    env["PYTHONPATH"] = str(site)
    return subprocess.run([sys.executable, "-m", "rcetl.cli.main", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_list_names_each_broken_plugin_and_its_package(site: Path, tmp_path: Path) -> None:
    result = rcetl(site, "plugins", "list", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    broken = {b["entry_point"]: b for b in listing["broken"]}
    assert broken["broken-import"]["package"] == "rcetl-broken-import"
    assert "rcetl_a_dependency_nobody_installed" in broken["broken-import"]["error"]
    assert broken["unknown-hook"]["package"] == "rcetl-unknown-hook"
    assert "unknown hook(s): rcetl_sink" in broken["unknown-hook"]["error"]
    names = {(p["kind"], p["name"]): p for p in listing["plugins"]}
    assert names[("sink", "good-sink")]["package"] == "rcetl-good-sink"
    assert names[("sink", "good-sink")]["origin"] == "third-party"
    for builtin in [("sink", "sqlite"), ("sink", "filesystem"), ("source", "call-log"), ("server", "sandbox")]:
        assert builtin in names, builtin

    text = rcetl(site, "plugins", "list", cwd=tmp_path)
    assert text.returncode == 0
    out = " ".join(text.stdout.split())
    assert "broken plugin broken-import (rcetl_broken_import) from package 'rcetl-broken-import'" in out
    assert "broken plugin unknown-hook (rcetl_unknown_hook) from package 'rcetl-unknown-hook'" in out


def test_a_pipeline_still_runs_beside_broken_plugins(site: Path, tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(
        "pipeline: beside-broken\nringcentral:\n  server: sandbox\n  sandbox: {seed: 5, size: tiny, time_scale: 600}\n"
        "  time_scale: 600\nsources:\n  call-log: {level: account, view: Detailed}\n"
        "sinks:\n  db: {plugin: sqlite, url: archive.db}\n  good: {plugin: good-sink}\n")
    result = rcetl(site, "run", "p.yaml", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    records = summary["streams"]["call-log"]["records"]
    assert summary["status"] == "ok" and records > 0
    assert len((tmp_path / "good.jsonl").read_text().splitlines()) == records
    assert "rcetl-unknown-hook" in result.stderr  # the warning names the package to fix
