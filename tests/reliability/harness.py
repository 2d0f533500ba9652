"""Helpers the reliability tests share: write a pipeline against a server, run the real CLI in a
subprocess (nothing mocked, secrets only in the environment), open sinks to check the archive."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import rcetl

RCETL = [sys.executable, "-m", "rcetl.cli.main"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_pipeline(tmp: Path, server: Any, sinks: str, *, name: str = "rel", sources: str | None = None,
                   connection: str = "", executor: str = "{batch_size: 7, downloads: 4}", extra: str = "") -> Path:
    """A pipeline reading ``server`` (a Sandbox or anything with ``server`` and ``time_scale``);
    credentials come from ${RC_*} variables only."""
    path = tmp / f"{name}.yaml"
    sources = sources or """
  call-log: {view: Detailed, window: 10d}
  recording: {}
  message-store: {}"""
    path.write_text(f"""
pipeline: {name}
ringcentral:
  server: {server.server}
  client_id: ${{RC_CLIENT_ID}}
  client_secret: ${{RC_CLIENT_SECRET}}
  jwt: ${{RC_JWT}}
  time_scale: {server.time_scale}
{connection}
state: {tmp / 'state.db'}
sources:{sources}
executor: {executor}
sinks:
{sinks}
{extra}
""")
    return path


def env_for(server: Any, tmp: Path, **extra: str) -> dict[str, str]:
    home = tmp / "rcetl-home"
    home.mkdir(exist_ok=True)
    return {**os.environ, "RC_CLIENT_ID": server.client_id, "RC_CLIENT_SECRET": server.client_secret,
            "RC_JWT": server.jwt, "RCETL_HOME": str(home), "PYTHONUNBUFFERED": "1", "COLUMNS": "200", **extra}


def rcetl_cli(args: list[str], env: dict[str, str], timeout: float = 240, cwd: Path | None = None
              ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RCETL, *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd)


def run_until_clean(pipeline: Path, env: dict[str, str], attempts: int = 4, args: tuple[str, ...] = ()
                    ) -> list[subprocess.CompletedProcess[str]]:
    """Run again (failed items retried at once) until a run exits 0; return every run."""
    runs = []
    for _ in range(attempts):
        done = rcetl_cli(["run", str(pipeline), "--retry-now", *args], env)
        runs.append(done)
        if done.returncode == 0:
            return runs
    raise AssertionError(f"no clean run in {attempts}:\n" + "\n---\n".join(r.stdout[-3000:] + r.stderr[-3000:]
                                                                          for r in runs))


def open_sink(plugin: str, name: str, options: dict, tmp: Path) -> Any:
    from rcetl.registry import get_plugin_manager

    sink = get_plugin_manager().sinks()[plugin].build(name, options, rcetl.RunContext.standalone(tmp, "check"))
    sink.open()
    return sink


def sqlite_and_folder(tmp: Path) -> tuple[str, Any, Any]:
    """(sinks YAML, record sink opener, blob sink opener) for SQLite + a local folder."""
    yaml = f"""
  db: {{plugin: sqlite, url: "sqlite:///{tmp / 'archive.db'}"}}
  files: {{plugin: filesystem, path: {tmp / 'files'}}}
"""
    return (yaml, lambda: open_sink("sqlite", "db", {"url": f"sqlite:///{tmp / 'archive.db'}"}, tmp),
            lambda: open_sink("filesystem", "files", {"path": str(tmp / "files")}, tmp))
