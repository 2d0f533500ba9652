"""``rcetl plugins new``: the generated package, installed into a fresh virtual environment, passes
its own tests (the contract suite), is listed by ``rcetl plugins list``, and archives the sandbox.

The venv is created with ``--system-site-packages`` and a ``.pth`` that adds this environment's
site-packages, so nothing is downloaded; the package goes in with
``pip install --no-deps --no-build-isolation -e``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sysconfig
import venv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rcetl.cli.main import app
from rcetl.scaffold import ScaffoldError, generate, names_for

pytestmark = pytest.mark.slow


def run(cmd: list[str], cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "RCETL_"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("venv") / "env"
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(root)
    python = root / "bin" / "python"
    site = run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    # This environment's packages (rcetl, pytest, pip, setuptools) without copying or downloading them.
    ours = sysconfig.get_paths()["purelib"]
    Path(site, "_rcetl_test_parent.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    return python


def test_names_and_refusals(tmp_path: Path) -> None:
    n = names_for("sink", "demo-sink")
    assert (n.plugin, n.dist, n.module, n.cls) == ("demo-sink", "rcetl-demo-sink", "rcetl_demo_sink", "Demo")
    with pytest.raises(ScaffoldError, match="not a usable plugin name"):
        names_for("sink", "Bad_Name")
    generate("sink", "twice", tmp_path / "x")
    with pytest.raises(ScaffoldError, match="not empty"):
        generate("sink", "twice", tmp_path / "x")


def test_cli_writes_the_package(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["plugins", "new", "sink", "demo-sink", "--dest", str(tmp_path / "p")])
    assert result.exit_code == 0, result.output
    files = {p.relative_to(tmp_path / "p").as_posix() for p in (tmp_path / "p").rglob("*") if p.is_file()}
    assert {"pyproject.toml", "README.md", "rcetl_demo_sink/__init__.py", "rcetl_demo_sink/sink.py",
            "tests/test_contract.py", "tests/test_pipeline.py"} <= files
    pyproject = (tmp_path / "p" / "pyproject.toml").read_text()
    assert '[project.entry-points.rcetl]\ndemo-sink = "rcetl_demo_sink"' in pyproject
    bad = CliRunner().invoke(app, ["plugins", "new", "widget", "x"])
    assert bad.exit_code == 2 and "sink, source" in bad.output


@pytest.mark.parametrize("kind,name,sink_kind", [("sink", "demo-sink", "records"), ("sink", "demo-files", "blobs"),
                                                 ("source", "demo-source", "records")])
def test_generated_package_installs_passes_its_tests_and_archives(fresh_venv: Path, tmp_path: Path, kind: str,
                                                                   name: str, sink_kind: str) -> None:
    python = fresh_venv
    pkg = generate(kind, name, tmp_path / name, sink_kinds=sink_kind)
    install = run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                   "--disable-pip-version-check", "-e", str(pkg)])
    assert install.returncode == 0, install.stderr[-3000:]
    try:
        tests = run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", str(pkg)],
                    cwd=pkg)
        assert tests.returncode == 0, tests.stdout[-4000:] + tests.stderr[-2000:]
        assert " passed" in tests.stdout and "failed" not in tests.stdout and "error" not in tests.stdout

        listed = run([str(python), "-c", "from rcetl.cli.main import main; main()", "plugins", "list", "--json"])
        assert listed.returncode == 0, listed.stderr
        rows = json.loads(listed.stdout)["plugins"]
        mine = [r for r in rows if r["name"] == name and r["kind"] == kind]
        assert mine and mine[0]["package"] == f"rcetl-{name}" and mine[0]["origin"] == "third-party", rows

        if kind == "sink":  # the rcetl command in the venv archives the sandbox through the new sink
            sinks = {"mine": f"{{plugin: {name}, path: out}}"}
            if sink_kind == "blobs":
                sinks["db"] = "{plugin: sqlite, url: archive.db}"
            pipeline = pkg / "pipeline.yaml"
            pipeline.write_text(
                "pipeline: scaffolded\nringcentral:\n  server: sandbox\n  sandbox: {seed: 3, size: tiny, "
                "time_scale: 600}\n  time_scale: 600\nsources:\n  call-log: {level: account, view: Detailed}\n"
                "  recording: {}\n  message-store: {}\nsinks:\n"
                + "".join(f"  {k}: {v}\n" for k, v in sinks.items()))
            archived = run([str(python), "-c", "from rcetl.cli.main import main; main()", "run", str(pipeline),
                            "--json"], cwd=pkg)
            assert archived.returncode == 0, archived.stdout[-3000:] + archived.stderr[-3000:]
            summary = json.loads(archived.stdout[archived.stdout.index("{"):])
            assert summary["status"] == "ok"
            assert summary["sinks"]["mine"]["records" if sink_kind == "records" else "files"] > 0
            assert any((pkg / "out").rglob("*.json" if sink_kind == "records" else "*.mp3"))
    finally:
        run([str(python), "-m", "pip", "uninstall", "--quiet", "-y", f"rcetl-{name}"])


def link_tree(root: Path) -> Path:
    """rcetl's import names as mypy must see them (``make typecheck`` builds the same tree): the source
    folders are mapped to ``rcetl``, ``rcetl.plugins`` and ``rcetl.sandbox`` by setuptools' package-dir,
    which mypy does not read, and the editable install is an import hook mypy cannot follow."""
    repo = Path(__file__).resolve().parents[2]
    package = root / "rcetl"
    package.mkdir(parents=True)
    for entry in (repo / "core").iterdir():
        (package / entry.name).symlink_to(entry)
    (package / "plugins").symlink_to(repo / "plugins")
    (package / "sandbox").symlink_to(repo / "sandbox")
    return root


@pytest.mark.parametrize("kind,sink_kind", [("sink", "records"), ("sink", "blobs"), ("source", "records")])
def test_generated_package_type_checks_strictly(tmp_path: Path, kind: str, sink_kind: str) -> None:
    """A plugin author starts from a package mypy --strict accepts against rcetl's typed API (py.typed)."""
    pkg = generate(kind, f"typed-{kind}", tmp_path / "pkg", sink_kinds=sink_kind)
    tree = link_tree(tmp_path / "tree")
    env = {**os.environ, "MYPYPATH": str(tree)}
    # --follow-imports=silent: rcetl is checked by `make typecheck`; here only the generated package speaks
    mypy = [sysconfig.get_paths()["scripts"] + "/mypy", "--strict", "--ignore-missing-imports", "--follow-imports=silent",
            "--cache-dir", str(tmp_path / ".mypy"), "--no-error-summary", str(pkg)]
    result = subprocess.run(mypy, cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
