"""Whole runs of the built-in sources against a sandbox, in this process: a pipeline file with a
SQLite record sink and a folder blob sink, run through the engine, and the archive read back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rcetl
from rcetl.config import load_pipeline
from rcetl.engine import run_pipeline
from rcetl.registry import get_plugin_manager
from rcetl.run import RunSummary

from ..reliability.archive_check import check_archive


@dataclass
class Archive:
    """One pipeline over one sandbox, run as often as a test likes."""

    path: Path
    folder: Path

    def run(self, *, full_refresh: bool = False, retry_now: bool = False,
            window: rcetl.RunWindow | None = None, **kwargs: Any) -> RunSummary:
        pm = get_plugin_manager()
        pipeline = load_pipeline(self.path, pm=pm)
        window = window or rcetl.RunWindow(full_refresh=full_refresh)
        return run_pipeline(pipeline, pm, window=window, retry_now=retry_now, **kwargs)

    def sinks(self) -> tuple[Any, Any]:
        """The archive's record and blob sinks, opened through their own read API."""
        pipeline = load_pipeline(self.path, pm=get_plugin_manager())
        ctx = rcetl.RunContext.standalone(self.folder, "t")
        built = {conf.name: conf.build(ctx) for conf in pipeline.sinks}
        for sink in built.values():
            sink.open()
        return built["archive"], built["files"]

    def check_complete(self, sb: Any) -> None:
        """Every record and binary the sandbox holds is archived, byte for byte."""
        db, files = self.sinks()
        try:
            check_archive(sb.ground_truth(), db, files)
        finally:
            db.close()
            files.close()

    def stored_files(self) -> list[Path]:
        return sorted(p for p in (self.folder / "files").rglob("*") if p.is_file() and not p.name.endswith(".json"))

    def failed(self) -> list[Any]:
        from rcetl.state import StateStore

        store = StateStore(f"sqlite:///{self.folder / 'state.db'}")
        try:
            return store.failed(self.path.stem)
        finally:
            store.close()


def archive_of(sb: Any, folder: Path, *, name: str = "content", sources: str | None = None,
               connection: str = "", downloads: int = 4) -> Archive:
    """A pipeline reading ``sb`` into ``folder`` (SQLite ``archive.db`` and ``files/``)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(f"""
pipeline: {name}
ringcentral:
  server: {sb.server}
  media_server: {sb.media_server}
  client_id: {sb.client_id}
  client_secret: {sb.client_secret}
  jwt: {sb.jwt}
  time_scale: {sb.time_scale}
{connection}
state: {folder / 'state.db'}
sources:
{sources or '''  call-log: {view: Detailed}
  recording: {}
  message-store: {}'''}
sinks:
  archive: {{plugin: sqlite, url: "sqlite:///{folder / 'archive.db'}"}}
  files: {{plugin: filesystem, path: {folder / 'files'}}}
executor:
  workers: 2
  downloads: {downloads}
""")
    return Archive(path, folder)
