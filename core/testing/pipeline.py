"""``rcetl_pipeline``: write a pipeline file around the sinks under test, run it, inspect the result.

By default the pipeline reads the running sandbox (``rcetl_sandbox``) with the three built-in
streams, so what a sink holds can be compared with the sandbox's ground truth. Tests of a source
pass their own ``connections`` and ``sources``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, overload

from ..config import Pipeline, load_pipeline
from ..interfaces import BlobSink, RecordSink, RunWindow, Sink
from ..run import RunSummary
from .harness import make_context, plugin_manager

DEFAULT_SOURCES = {"call-log": {"level": "account", "view": "Detailed"}, "recording": {}, "message-store": {}}
AUTO_RECORD_SINK = "_records"


def _dump_yaml(data: dict[str, Any], path: Path) -> None:
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.default_flow_style = False
    with path.open("w", encoding="utf-8") as fh:
        fh.write("# written by rcetl.testing's rcetl_pipeline fixture\n")
        yaml.dump(data, fh)


@dataclass
class PipelineRun:
    """One run of a pipeline written by :class:`PipelineBuilder`."""

    path: Path
    pipeline: Pipeline
    summary: RunSummary
    builder: PipelineBuilder
    options: dict[str, Any]
    _opened: list[Sink] = field(default_factory=list)

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def ground_truth(self) -> dict[str, Any] | None:
        return self.builder.ground_truth_for(self)

    def open_sink(self, name: str) -> Any:
        """An instance of the pipeline's sink ``name``, opened on the same storage (closed at teardown)."""
        conf = next((s for s in self.pipeline.sinks if s.name == name), None)
        if conf is None:
            raise KeyError(f"no sink {name!r} in {self.path} (sinks: {', '.join(s.name for s in self.pipeline.sinks)})")
        sink = conf.build(make_context(self.folder, self.pipeline.name))
        sink.open()
        self.builder.opened.append(sink)
        return sink

    def rerun(self, **changes: Any) -> PipelineRun:
        """The same pipeline file run again (``full_refresh=True`` re-reads everything)."""
        return self.builder.run_file(self.path, **{**self.options, **changes})

    # --- expectations from the sandbox's ground truth ------------------------------------------

    def _truth(self) -> dict[str, Any]:
        truth = self.ground_truth
        if truth is None:
            raise AssertionError("this pipeline did not read the sandbox: there is no ground truth to compare")
        return truth

    def expected_keys(self) -> dict[str, set[tuple[str, Any]]]:
        """(account, key) of every record each built-in stream yields for the sandbox's data."""
        out: dict[str, set[tuple[str, Any]]] = {"call-log": set(), "recording": set(), "message-store": set()}
        for acct in self._truth()["accounts"]:
            a = str(acct["account_id"])
            out["call-log"] |= {(a, str(c["id"])) for c in acct["call_log"]}
            out["recording"] |= {(a, str(r["id"])) for r in acct["recordings"]}
            out["message-store"] |= {(a, int(m["id"])) for m in acct["messages"]}
        streams = {s for src in self.pipeline.sources for s in src.spec.streams}
        return {k: v for k, v in out.items() if k in streams}

    def expected_counts(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.expected_keys().items()}

    def expected_binaries(self) -> dict[str, str]:
        """blob id -> SHA-256 of every binary the sandbox still serves."""
        out = {}
        for acct in self._truth()["accounts"]:
            out.update({f"recording-{r['id']}": r["sha256"] for r in acct["recordings"] if r["available"]})
            out.update({f"attachment-{x['message_id']}-{x['id']}": x["sha256"] for x in acct["attachments"] if x["available"]})
        return out

    def assert_archived(self, sink_name: str) -> None:
        """What ``sink_name`` holds equals the ground truth: every record key exactly once (a record
        sink); every available binary at the location the records name, with its SHA-256 (a blob sink)."""
        sink = self.open_sink(sink_name)
        if isinstance(sink, RecordSink):
            for stream, keys in self.expected_keys().items():
                held = [(e.account, e.key) for e in sink.archived(stream)]
                assert len(held) == len(set(held)), f"{sink_name}: duplicate {stream} records"
                assert set(held) == keys, f"{sink_name}: {stream} holds {len(held)} records, the sandbox {len(keys)}"
                assert all(type(k) is type(next(iter(keys))[1]) for _, k in held), f"{stream}: key type changed"
        if isinstance(sink, BlobSink):
            records = self.open_sink(self._record_sink_for_blobs())
            expected = self.expected_binaries()
            checked = 0
            for stream in ("recording", "message-store"):
                for entry in records.archived(stream):
                    for blob in entry.archive:
                        if blob.get("status") != "stored":
                            continue
                        location = (blob.get("locations") or {}).get(sink_name)
                        assert location, f"{stream} {entry.key!r}: no location in sink {sink_name!r}"
                        with sink.open_stored(location) as fh:
                            digest = hashlib.sha256(fh.read()).hexdigest()
                        assert digest == expected[blob["blob_id"]], f"{location}: checksum differs from the sandbox"
                        checked += 1
            assert checked == len(expected), f"{sink_name}: {checked} binaries found, the sandbox serves {len(expected)}"

    def _record_sink_for_blobs(self) -> str:
        for s in self.pipeline.sinks:
            if "records" in s.kinds and "recording" in s.streams:
                return s.name
        raise AssertionError("no record sink in the pipeline names where binaries went")


class PipelineBuilder:
    """Callable behind the ``rcetl_pipeline`` fixture."""

    def __init__(self, folder: Path, sandbox: Callable[[], Any] | None = None,
                 plugins: Sequence[Any] = ()) -> None:
        self.folder = folder
        self._sandbox = sandbox  # started on first use: a source's own tests need no sandbox
        self.plugins = tuple(plugins)
        self.opened: list[Sink] = []
        self._truth: dict[Path, Any] = {}
        self._count = 0

    # Typed per `run`: a run by default, the written file's path with run=False.
    @overload
    def __call__(self, sinks: dict[str, dict[str, Any]], *, sources: dict[str, Any] | None = ...,
                 connections: dict[str, Any] | None = ..., observers: dict[str, Any] | None = ...,
                 executor: dict[str, Any] | None = ..., name: str = ..., plugins: Sequence[Any] = ...,
                 record_sink: bool = ..., folder: Path | None = ..., run: Literal[True] = ...,
                 **run_options: Any) -> PipelineRun: ...

    @overload
    def __call__(self, sinks: dict[str, dict[str, Any]], *, sources: dict[str, Any] | None = ...,
                 connections: dict[str, Any] | None = ..., observers: dict[str, Any] | None = ...,
                 executor: dict[str, Any] | None = ..., name: str = ..., plugins: Sequence[Any] = ...,
                 record_sink: bool = ..., folder: Path | None = ..., run: Literal[False],
                 **run_options: Any) -> Path: ...

    def __call__(self, sinks: dict[str, dict[str, Any]], *, sources: dict[str, Any] | None = None,
                 connections: dict[str, Any] | None = None, observers: dict[str, Any] | None = None,
                 executor: dict[str, Any] | None = None, name: str = "kit", plugins: Sequence[Any] = (),
                 record_sink: bool = True, folder: Path | None = None, run: bool = True,
                 **run_options: Any) -> PipelineRun | Path:
        """Write ``<folder>/pipeline.yaml`` and run it (``run=False``: only write it; returns the path).

        ``record_sink`` adds a SQLite record sink when none of ``sinks`` stores records (a pipeline
        must store every stream's records; binaries alone would be lost)."""
        self._count += 1
        where = folder or (self.folder / (f"{name}-{self._count}" if self._count > 1 else name))
        where.mkdir(parents=True, exist_ok=True)
        self.plugins = self.plugins + tuple(p for p in plugins if p not in self.plugins)
        doc: dict[str, Any] = {"pipeline": name}
        sandbox = None
        if connections is None and sources is None:
            sandbox = self._sandbox() if self._sandbox else None
            if sandbox is None:
                raise RuntimeError("no sandbox to read: pass connections= and sources=, or install rcetl's sandbox")
            doc["ringcentral"] = {"server": sandbox.server, "media_server": sandbox.media_server,
                                  "client_id": sandbox.client_id, "client_secret": sandbox.client_secret,
                                  "jwt": sandbox.jwt, "time_scale": sandbox.time_scale}
            sources = DEFAULT_SOURCES
        if connections:
            doc["connections"] = connections
        doc["sources"] = sources
        doc["sinks"] = dict(sinks)
        if record_sink and not self._stores_records(sinks):
            doc["sinks"][AUTO_RECORD_SINK] = {"plugin": "sqlite", "url": "records.db"}
        doc["executor"] = {"workers": 2, "downloads": 4, **(executor or {})}
        if observers is not None:
            doc["observers"] = observers
        path = where / "pipeline.yaml"
        _dump_yaml(doc, path)
        if sandbox is not None:
            self._truth[path] = sandbox.ground_truth()
        if not run:
            return path
        return self.run_file(path, **run_options)

    def _stores_records(self, sinks: dict[str, dict[str, Any]]) -> bool:
        entries = plugin_manager(self.plugins).sinks()
        return any(entry is not None and "records" in entry.load().kinds()
                   for entry in (entries.get(o.get("plugin", n)) for n, o in sinks.items()))

    def load(self, path: Path) -> Pipeline:
        return load_pipeline(path, pm=plugin_manager(self.plugins))

    def run_file(self, path: Path, *, full_refresh: bool = False, streams: set[str] | None = None) -> PipelineRun:
        from ..engine import run_pipeline

        pm = plugin_manager(self.plugins)
        pipeline = load_pipeline(path, pm=pm)
        summary = run_pipeline(pipeline, pm, window=RunWindow(full_refresh=full_refresh), streams=streams)
        return PipelineRun(path, pipeline, summary, self, {"full_refresh": full_refresh, "streams": streams})

    def ground_truth_for(self, run: PipelineRun) -> dict[str, Any] | None:
        return self._truth.get(run.path)

    def close(self) -> None:
        while self.opened:
            try:
                self.opened.pop().close()
            except Exception:  # noqa: BLE001
                pass
