"""The installed ``rcetl`` command ends without tearing down its modules one by one (``os._exit``
after the exit handlers), yet exits as ``sys.exit`` would: the same status, its output flushed,
every exit handler run, a running thread waited for. ``python -m rcetl.cli.main`` and programs
calling ``main()`` keep the ordinary exit (they go on after it returns)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# What pip writes as the `rcetl` console script, plus an exit handler and (optionally) a thread.
SCRIPT = """\
import atexit, sys, threading, time
from pathlib import Path
marker = Path(sys.argv.pop(1))
atexit.register(lambda: marker.write_text(marker.read_text() + "atexit\\n"))
class Teardown:  # written when the interpreter tears its modules down (the ordinary exit)
    def __init__(self, path):
        self.path, self.write = str(path), open
    def __del__(self):
        with self.write(self.path, "a") as fh:
            fh.write("teardown\\n")
torn = Teardown(marker)
if sys.argv[1] == "--thread":
    sys.argv.pop(1)
    def late():
        time.sleep(0.3)
        marker.write_text(marker.read_text() + "thread\\n")
    threading.Thread(target=late).start()
from rcetl.cli.main import main
if __name__ == "__main__":
    sys.argv[0] = sys.argv[0].removesuffix(".exe")
    sys.exit(main())
"""


def _rcetl(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], str]:
    script = tmp_path / "rcetl"
    script.write_text(SCRIPT)
    marker = tmp_path / "marker"
    marker.write_text("")
    out = subprocess.run([sys.executable, str(script), str(marker), *args], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    return out, marker.read_text()


def test_help_exits_0_with_its_output_and_exit_handlers(tmp_path):
    out, marker = _rcetl(tmp_path, "--help")
    assert out.returncode == 0
    assert "rcetl run PIPELINE.yaml" in out.stdout
    assert marker == "atexit\n"  # and no module teardown


@pytest.mark.parametrize("thread", [False, True])
def test_a_failing_command_keeps_its_status_and_message(tmp_path, thread):
    out, marker = _rcetl(tmp_path, *(["--thread"] if thread else []), "validate", str(tmp_path / "missing.yaml"))
    assert out.returncode == 2, out.stderr
    assert "missing.yaml" in out.stderr
    # a thread still running is waited for (the ordinary exit), before the exit handlers
    assert marker.startswith("thread\natexit\n" if thread else "atexit\n")
    if not thread:
        assert "teardown" not in marker  # the fast exit tears nothing down


def test_the_fast_exit_is_taken_by_the_command_only():
    probe = ("import sys, rcetl.cli.main as m; print(m._is_console_script()); sys.argv=['rcetl', '--help']\n"
             "try:\n    m.main()\nexcept SystemExit as exc:\n    print('went on after', exc.code)\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.stdout.splitlines()[0] == "False"
    assert out.stdout.splitlines()[-1] == "went on after 0"
