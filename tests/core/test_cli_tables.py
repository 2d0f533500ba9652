"""Every table rcetl prints keeps whole names when piped, fits a terminal of any width, and the
commands offer --json (core/cli/output.py: print_table)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

RCETL = [sys.executable, "-m", "rcetl.cli.main"]


def _run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k not in ("CI", "COLUMNS")}
    return subprocess.run([*RCETL, *args], capture_output=True, text=True, timeout=60, env={**full, **env})


def test_plugins_list_piped_keeps_whole_names_for_grep():
    # Piped output used to be a Rich table cut at 80 columns: "message-st…".
    done = _run("plugins", "list", COLUMNS="80")
    assert done.returncode == 0, done.stderr
    lines = [ln for ln in done.stdout.splitlines() if "\tmessage-store\t" in ln]
    assert len(lines) == 1 and lines[0].split("\t")[:2] == ["source", "message-store"]
    assert "…" not in done.stdout
    assert done.stdout.splitlines()[1].split("\t") == ["kind", "name", "package", "version", "origin",
                                                        "description"]


def test_plugins_list_on_a_narrow_terminal_folds_names_instead_of_cutting_them():
    from rich.console import Console

    from rcetl.cli.output import print_table

    console = Console(width=50, force_terminal=True, record=True)
    print_table("t", ["kind", "name", "description"], [["source", "message-store", "a long description " * 5]],
                fold=("name",), terminal=console)
    text = console.export_text()
    assert "message-store" in text
    assert max(len(line) for line in text.splitlines()) <= 50


def test_plugins_list_json():
    done = _run("plugins", "list", "--json")
    names = {p["name"] for p in json.loads(done.stdout)["plugins"]}
    assert {"message-store", "call-log", "recording"} <= names
