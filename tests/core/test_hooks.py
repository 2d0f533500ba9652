"""One test (at least) per hook in rcetl.hookspecs: each name appears in a test's name here, which
test_meta.py checks. Observer hooks are checked in real runs of the fake source."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

import rcetl
from rcetl.engine import archiver
from rcetl.registry import PluginManager
from rcetl.run import RunInfo, RunSummary

from . import fakesource
from .archive import BIG, pipeline_text, run


class Observer:
    """Remembers every observer hook call, with its arguments."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def _log(self, hook: str, **kwargs: Any) -> None:
        with self._lock:
            self.calls.append((hook, kwargs))

    def of(self, hook: str) -> list[dict[str, Any]]:
        return [kw for h, kw in self.calls if h == hook]

    @rcetl.hookimpl
    def rcetl_observers(self) -> list[rcetl.ObserverSpec]:
        from pydantic import BaseModel

        class Options(BaseModel):
            channel: str

        return [rcetl.ObserverSpec("observer", Options, "remembers every call")]

    @rcetl.hookimpl
    def rcetl_run_started(self, run: RunInfo) -> None:
        self._log("rcetl_run_started", run=run, downloads_so_far=len(fakesource.CALLS))

    @rcetl.hookimpl
    def rcetl_run_finished(self, run: RunInfo, summary: RunSummary) -> None:
        self._log("rcetl_run_finished", run=run, summary=summary)

    @rcetl.hookimpl
    def rcetl_item_archived(self, run: RunInfo, item: rcetl.ArchivedRecord) -> None:
        self._log("rcetl_item_archived", run=run, item=item)

    @rcetl.hookimpl
    def rcetl_items_archived(self, run: RunInfo, items: list[rcetl.ArchivedRecord]) -> None:
        self._log("rcetl_items_archived", run=run, items=list(items))

    @rcetl.hookimpl
    def rcetl_item_failed(self, run: RunInfo, record: rcetl.Record, error: str) -> None:
        self._log("rcetl_item_failed", run=run, record=record, error=error)

    @rcetl.hookimpl
    def rcetl_budget_exhausted(self, run: RunInfo | None, budget: str, group: str, wait_seconds: float) -> None:
        self._log("rcetl_budget_exhausted", run=run, budget=budget, group=group, wait_seconds=wait_seconds)


@pytest.fixture
def observer(pm: PluginManager) -> Observer:
    obs = Observer()
    pm.register(obs, "observer")
    return obs


OBSERVED = pipeline_text(6, extra="observers:\n  observer: {channel: '#archive'}\n")


# --- observers -----------------------------------------------------------------------------------


def test_rcetl_run_started_is_called_once_before_any_request(pm, observer: Observer, write_pipeline) -> None:
    path = write_pipeline(OBSERVED)
    summary = run(path, pm)
    [call] = observer.of("rcetl_run_started")
    info: RunInfo = call["run"]
    assert call["downloads_so_far"] == 0
    assert info.pipeline == "engine" and info.pipeline_file == str(path) and info.run_id == summary.run_id
    assert info.observers == {"observer": {"channel": "#archive"}}
    assert info.executor == "local" and info.dry_run is False
    assert observer.calls[0][0] == "rcetl_run_started"


def test_rcetl_run_finished_gets_the_summary_of_a_good_run(pm, observer: Observer, write_pipeline) -> None:
    summary = run(write_pipeline(OBSERVED), pm)
    [call] = observer.of("rcetl_run_finished")
    assert call["summary"] is summary and call["summary"].status == "ok"
    assert call["summary"].streams["items"].records == 6
    assert call["run"].run_id == summary.run_id
    assert observer.calls[-1][0] == "rcetl_run_finished"


def test_rcetl_run_finished_is_called_when_a_run_fails(pm, observer: Observer, write_pipeline,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archiver, "_sleep", lambda s: None)
    run(write_pipeline(pipeline_text(4, sinks="  db: {plugin: flaky}\n")), pm)
    [call] = observer.of("rcetl_run_finished")
    assert call["summary"].status == "failed" and call["summary"].errors


def test_rcetl_item_archived_is_called_for_every_stored_record(pm, observer: Observer, write_pipeline) -> None:
    run(write_pipeline(OBSERVED), pm)
    items: list[rcetl.ArchivedRecord] = [c["item"] for c in observer.of("rcetl_item_archived")]
    assert sorted(i.key for i in items) == [BIG + i for i in range(6)]
    for item in items:
        [blob] = item.blobs
        assert blob.status == "stored" and blob.sha256 and {s.sink for s in blob.stored} == {"files"}


def test_rcetl_items_archived_is_called_per_batch_with_the_same_items(pm, observer: Observer, write_pipeline) -> None:
    fakesource.FAIL_DOWNLOADS.add(f"blob-{BIG + 3}")
    summary = run(write_pipeline(OBSERVED), pm)
    batches = [c["items"] for c in observer.of("rcetl_items_archived")]
    singles = [c["item"] for c in observer.of("rcetl_item_archived")]
    assert all(c["run"].run_id == summary.run_id for c in observer.of("rcetl_items_archived"))
    assert [i for batch in batches for i in batch] == singles  # same records, same order, nothing twice
    assert sorted(i.key for i in singles) == [BIG + i for i in range(6) if i != 3]  # the failed one is in neither
    assert all(batches) and len(batches) < len(singles)  # one call per (non-empty) batch, not one per item


def test_rcetl_item_failed_is_called_for_a_queued_item(pm, observer: Observer, write_pipeline) -> None:
    fakesource.FAIL_DOWNLOADS.add(f"blob-{BIG + 3}")
    run(write_pipeline(OBSERVED), pm)
    [call] = observer.of("rcetl_item_failed")
    assert call["record"].key == BIG + 3 and call["record"].stream == "items"
    assert "injected" in call["error"]
    assert BIG + 3 not in [c["item"].key for c in observer.of("rcetl_item_archived")]


def test_rcetl_budget_exhausted_is_called_when_a_request_must_wait(pm, observer: Observer, write_pipeline) -> None:
    path = write_pipeline("""\
pipeline: metered
fake: {}
sources:
  metered: {requests: 2, limit: 1, window: 1.0}
sinks:
  log: {plugin: rec_records}
""")
    summary = run(path, pm)
    assert summary.status == "ok"
    [call] = observer.of("rcetl_budget_exhausted")
    assert call["budget"] == "metered-credential" and call["group"] == "heavy"
    assert 0 < call["wait_seconds"] <= 1.0 + 0.05
    assert call["run"].run_id == summary.run_id
    assert summary.requests == {"metered-credential": {"heavy": 2}}


# --- registry hooks ------------------------------------------------------------------------------


class ContributedOpts(rcetl.PluginConfig):
    level: int = 1


class ContributedSink(rcetl.RecordSink):
    config_model = ContributedOpts
    description = "contributed sink"

    def write(self, records: Any) -> None:
        pass


class Contributions:
    Opts = ContributedOpts

    @rcetl.hookimpl
    def rcetl_sources(self) -> list[rcetl.SourceSpec]:
        return [rcetl.SourceSpec("extra_source", self.Opts, lambda c, ctx, conn: None, "extra_conn", ("extra",),
                                 "contributed source")]

    @rcetl.hookimpl
    def rcetl_sinks(self) -> list[rcetl.SinkEntry]:
        return [rcetl.SinkEntry("extra_sink", f"{__name__}:ContributedSink")]

    @rcetl.hookimpl
    def rcetl_connections(self) -> list[rcetl.ConnectionSpec]:
        return [rcetl.ConnectionSpec("extra_conn", self.Opts, lambda n, c, ctx: None, "contributed connection")]

    @rcetl.hookimpl
    def rcetl_embedded_servers(self) -> list[rcetl.EmbeddedServerSpec]:
        @contextlib.contextmanager
        def start(options: Any):
            yield {"server": "http://127.0.0.1:1", "options": dict(options)}

        return [rcetl.EmbeddedServerSpec("extra_server", start, "contributed server")]

    @rcetl.hookimpl
    def rcetl_cli(self, app: typer.Typer) -> None:
        @app.command("hello")
        def hello(name: str = "world") -> None:
            print(f"hello {name}")


@pytest.fixture
def contributed(pm: PluginManager) -> PluginManager:
    pm.register(Contributions(), "contributions")
    return pm


def test_rcetl_sources_registers_source_specs(contributed: PluginManager) -> None:
    spec = contributed.sources()["extra_source"]
    assert spec.streams == ("extra",) and spec.connection == "extra_conn"
    assert contributed.plugin_of("source", "extra_source").name == "contributions"
    assert "items" in contributed.sources()  # alongside the others


def test_rcetl_sinks_registers_sinks_by_dotted_path(contributed: PluginManager) -> None:
    entry = contributed.sinks()["extra_sink"]
    assert entry.target == f"{__name__}:ContributedSink"
    sink_class = entry.load()
    assert sink_class is ContributedSink and sink_class.kinds() == frozenset({"records"})
    assert sink_class.config_model is ContributedOpts and sink_class.description == "contributed sink"
    assert contributed.plugin_of("sink", "extra_sink").origin == "registered"


def test_rcetl_connections_registers_connection_specs(contributed: PluginManager) -> None:
    assert contributed.connections()["extra_conn"].description == "contributed connection"
    assert "fake" in contributed.connections()


def test_rcetl_embedded_servers_registers_server_specs(contributed: PluginManager) -> None:
    spec = contributed.embedded_servers()["extra_server"]
    with spec.start({"seed": 1}) as info:
        assert info["options"] == {"seed": 1}


def test_rcetl_observers_registers_observer_specs_and_their_options_are_validated(tmp_path) -> None:
    from pydantic import BaseModel

    from rcetl.config import PipelineFileError, load_pipeline
    from rcetl.registry import PluginManager as Manager

    from . import fakesource

    class PingOptions(BaseModel):
        model_config = {"extra": "forbid"}
        url: str

    class Observer:
        @rcetl.hookimpl
        def rcetl_observers(self) -> list[rcetl.ObserverSpec]:
            return [rcetl.ObserverSpec("ping", PingOptions, "pings a URL")]

    pm = Manager()
    pm.load_entry_points()
    pm.register(fakesource)
    pm.register(Observer(), "ping-observer")
    assert pm.observers()["ping"].config is PingOptions
    assert {"report", "notify"} <= set(pm.observers())  # the built-ins come the same way
    base = ('pipeline: p\nfake: {}\nsources: {items: {}}\n'
            f'sinks: {{db: {{plugin: sqlite, url: "sqlite:///{tmp_path}/a.db"}}}}\n')
    good = tmp_path / "good.yaml"
    good.write_text(base + "observers: {ping: {url: http://x}}\n")
    assert load_pipeline(good, pm=pm).observers == {"ping": {"url": "http://x"}}
    bad = tmp_path / "bad.yaml"
    bad.write_text(base + "observers:\n  ping: {ulr: http://x}\n")
    with pytest.raises(PipelineFileError) as info:
        load_pipeline(bad, pm=pm)
    assert "bad.yaml:6: observers.ping.ulr: unknown option 'ulr'" in str(info.value)
    assert "did you mean 'url'?" in str(info.value)


def test_rcetl_cli_adds_a_command(contributed: PluginManager) -> None:
    app = typer.Typer()

    @app.command("version")
    def version() -> None:
        print("0")

    contributed.extend_cli(app)
    result = CliRunner().invoke(app, ["hello", "--name", "rcetl"])
    assert result.exit_code == 0 and result.stdout == "hello rcetl\n"


def test_rcetl_cli_a_failing_contribution_leaves_the_command_working(pm: PluginManager) -> None:
    class Bad:
        @rcetl.hookimpl
        def rcetl_cli(self, app: typer.Typer) -> None:
            raise ImportError("no module named heavy_thing")

    pm.register(Bad(), "bad-cli")
    app = typer.Typer()
    app.command("ok")(lambda: print("ok"))
    pm.extend_cli(app)
    assert CliRunner().invoke(app, ["ok"]).stdout == "ok\n"
    assert "rcetl_cli failed: ImportError" in [i for i in pm.infos if i.name == "bad-cli"][0].error


def test_rcetl_cli_sandbox_command_appears_in_the_real_help(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "rcetl.cli.main", "--help"], capture_output=True, text=True,
                            timeout=60, cwd=tmp_path)
    assert result.returncode == 0
    assert "sandbox" in result.stdout  # contributed by rcetl.sandbox through rcetl_cli
