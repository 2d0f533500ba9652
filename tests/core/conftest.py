"""Fixtures for the core's tests: a plugin manager with the fake plugins, a CLI runner that uses it,
pipeline files in ``tmp_path``, and a clean slate (fault knobs, logging, the global registry)."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

import rcetl.registry
from rcetl.registry import PluginManager

from . import fakeplugins, fakesource

SMOKE = """\
pipeline: smoke
fake: {}
sources:
  items: {count: 10}
sinks:
  db: {plugin: sqlite, url: "sqlite:///archive.db"}
  files: {plugin: filesystem, path: files}
"""


@pytest.fixture(autouse=True)
def _clean_slate(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    fakesource.FAIL_DOWNLOADS.clear()
    fakesource.GONE.clear()
    fakesource.CALLS.clear()
    fakeplugins.reset()
    # The CLI's callback sets this and replaces the root logger's handlers: undo both afterwards.
    monkeypatch.setenv("RCETL_LOG_FORMAT", "text")
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    rcetl.registry.reset_plugin_manager()


def make_pm(*extra: object) -> PluginManager:
    pm = PluginManager()
    pm.load_entry_points()
    pm.register(fakesource, "fakesource")
    pm.register(fakeplugins, "fakeplugins")
    for plugin in extra:
        pm.register(plugin)
    return pm


@pytest.fixture
def pm() -> PluginManager:
    """Every installed plugin plus the fake ones."""
    return make_pm()


@dataclass
class Invocation:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@pytest.fixture
def cli(pm: PluginManager, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Invocation]:
    """``cli("run", "p.yaml")``: the rcetl command in-process, seeing the fake plugins."""
    from rcetl.cli.main import app

    monkeypatch.setattr(rcetl.registry, "_default", pm)

    def invoke(*args: str | os.PathLike[str], input: str | None = None) -> Invocation:
        result = CliRunner().invoke(app, [str(a) for a in args], input=input, catch_exceptions=False)
        return Invocation(result.exit_code, result.stdout, result.stderr)

    return invoke


@pytest.fixture
def write_pipeline(tmp_path: Path) -> Callable[..., Path]:
    def write(text: str = SMOKE, name: str = "p.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


def tree(folder: Path) -> set[str]:
    """Every file and folder under ``folder``, relative."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def in_threads(work: Callable[[int], object], count: int, timeout: float) -> None:
    """Run ``work(0)`` ... ``work(count - 1)`` each in a thread of its own and wait for them all."""
    threads = [threading.Thread(target=work, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), f"a thread ran over {timeout} s"
