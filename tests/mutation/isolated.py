"""Run the test suite against another copy of the source tree, with the shared virtualenv.

The project's virtualenv has rcetl installed editable, pointing at one checkout. To test another
copy (a mutated one, a fresh clone) without reinstalling, this puts the copy first on
``PYTHONPATH``: a folder ``_py`` holding ``rcetl`` (a link to the copy's ``core``, with
``plugins`` and ``sandbox`` linked beside it as setuptools' ``package-dir`` maps them), the example
plugin, and ``*.dist-info`` folders generated from the copy's own ``pyproject.toml`` so entry
points (the plugins rcetl loads) are the copy's, not the installed checkout's.
(``importlib.metadata`` takes the first distribution of a name on ``sys.path``, and the editable
finder comes after ``PYTHONPATH`` on ``sys.meta_path``.)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[2]


def export(dest: Path, ref: str = "HEAD", repo: Path = ROOT) -> Path:
    """The tracked files of ``ref`` written to ``dest`` (``git archive``: the repository is untouched)."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.Popen(["git", "-C", str(repo), "archive", "--format=tar", ref], stdout=subprocess.PIPE)
    assert archive.stdout is not None
    with tarfile.open(fileobj=archive.stdout, mode="r|") as tar:
        tar.extractall(dest, filter="data")
    if archive.wait() != 0:
        raise RuntimeError(f"git archive {ref} failed")
    return dest


def _dist_info(site: Path, project: Path) -> None:
    meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    info = site / f"{meta['name'].replace('-', '_')}-{meta.get('version', '0')}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {meta['name']}\nVersion: {meta.get('version', '0')}\n")
    groups = dict(meta.get("entry-points", {}))
    if scripts := meta.get("scripts"):
        groups["console_scripts"] = scripts
    lines = []
    for group, entries in groups.items():
        lines.append(f"[{group}]")
        lines += [f"{name} = {target}" for name, target in entries.items()]
        lines.append("")
    (info / "entry_points.txt").write_text("\n".join(lines))


def python_path(tree: Path) -> Path:
    """Make ``tree`` importable as rcetl (see the module's docstring); returns the folder to put first."""
    site = tree / "_py"
    site.mkdir(exist_ok=True)
    links = {site / "rcetl": Path("../core"), tree / "core" / "plugins": Path("../plugins"),
             tree / "core" / "sandbox": Path("../sandbox")}
    example = tree / "examples" / "rcetl-parquet-sink"
    if (example / "rcetl_parquet_sink").is_dir():
        links[site / "rcetl_parquet_sink"] = Path("../examples/rcetl-parquet-sink/rcetl_parquet_sink")
        _dist_info(site, example)
    for link, target in links.items():
        if not link.is_symlink():
            link.symlink_to(target)
    _dist_info(site, tree)
    return site


def env_for(tree: Path, **extra: str) -> dict[str, str]:
    site = python_path(tree)
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            "PYTHONDONTWRITEBYTECODE": "1", **extra}


def pytest(tree: Path, args: list[str], timeout: float = 1800, **extra: str) -> subprocess.CompletedProcess[str]:
    """Run pytest in ``tree`` against ``tree``'s own code."""
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=tree,
                          env=env_for(tree, **extra), capture_output=True, text=True, timeout=timeout)


if __name__ == "__main__":  # python -m tests.mutation.isolated TREE pytest-args...: run a copy's tests
    done = pytest(Path(sys.argv[1]).resolve(), sys.argv[2:])
    sys.stdout.write(done.stdout[-20000:])
    sys.stderr.write(done.stderr[-5000:])
    raise SystemExit(done.returncode)
