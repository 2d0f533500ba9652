"""A sink whose optional extra is not installed: ``rcetl validate`` says what to install (exit 2), and
``rcetl run`` stops at the same message, before anything is written, without a traceback.

The missing extra is made by an import hook in a fresh interpreter that refuses boto3 and botocore,
which is what Python does when ``rcetl[s3]`` was never installed (here it is installed for the tests).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import tree

BLOCKER = """
import sys
from importlib.abc import MetaPathFinder

class NotInstalled(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {BLOCKED}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
sys.argv = ["rcetl", *sys.argv[1:]]
from rcetl.cli.main import main
main()
"""

PIPELINE = """\
pipeline: extras
ringcentral:
  server: sandbox
sources:
  call-log: {}
sinks:
  db: {plugin: sqlite, url: "sqlite:///archive.db"}
  files:
    plugin: s3
    bucket: rcetl-archive
"""


def rcetl(blocked: set[str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    code = BLOCKER.format(BLOCKED=repr(blocked))
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={"PATH": "/usr/bin:/bin", "HOME": str(cwd), "RCETL_HOME": str(cwd)})


@pytest.fixture
def pipeline(tmp_path: Path) -> Path:
    path = tmp_path / "extras.yaml"
    path.write_text(PIPELINE)
    return path


@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_missing_extra_is_a_validation_error_with_the_install_line(pipeline: Path, command: str) -> None:
    before = tree(pipeline.parent)
    result = rcetl({"boto3", "botocore"}, command, str(pipeline), cwd=pipeline.parent)
    assert result.returncode == 2, result.stderr
    assert "extras.yaml:9: sinks.files.plugin: sink plugin 's3' needs boto3, which is not installed" in result.stderr
    assert "hint: pip install 'rcetl[s3]'" in result.stderr
    assert "Traceback" not in result.stderr and "During handling" not in result.stderr
    assert tree(pipeline.parent) == before  # nothing written: no state, spool or archive


def test_the_same_pipeline_validates_when_the_extra_is_there(pipeline: Path) -> None:
    result = rcetl(set(), "validate", str(pipeline), cwd=pipeline.parent)
    assert result.returncode == 0, result.stderr
    assert "valid pipeline 'extras'" in result.stdout


def test_validate_imports_only_the_sinks_the_file_names(pipeline: Path) -> None:
    """With every other sink's SDK blocked, a file naming sqlite and s3 still validates, and no other
    sink's module (MongoDB, GCS, Dropbox, CouchDB, lake...) is imported, only the modules registering them."""
    others = {"pymongo", "gridfs", "bson", "google", "google_crc32c", "dropbox", "pymysql", "psycopg", "pymssql",
              "pyarrow"}
    result = rcetl(others, "validate", str(pipeline), cwd=pipeline.parent)
    assert result.returncode == 0, result.stderr
    probe = ("import sys, runpy\nsys.argv = ['rcetl', 'validate', sys.argv[1]]\n"
             "try:\n    runpy.run_module('rcetl.cli.main', run_name='__main__')\nexcept SystemExit:\n    pass\n"
             "from importlib.metadata import entry_points\n"
             "registering = {ep.value for ep in entry_points(group='rcetl')}\n"
             "print(sorted(m for m in sys.modules if m.startswith('rcetl.plugins.sinks.') and m not in registering))")
    out = subprocess.run([sys.executable, "-c", probe, str(pipeline)], cwd=pipeline.parent, capture_output=True,
                         text=True, timeout=120, env={"PATH": "/usr/bin:/bin", "HOME": str(pipeline.parent)})
    loaded = eval(out.stdout.strip().splitlines()[-1])  # noqa: S307 - our own probe's repr of a list
    # beyond the cheap modules that register sinks: only the SQL sink (sqlite) and s3
    assert {m for m in loaded if not m.startswith("rcetl.plugins.sinks.sql")} == {"rcetl.plugins.sinks.s3"}, loaded
