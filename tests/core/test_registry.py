"""The plugin registry: unknown hooks are refused, a broken plugin package is reported and the others
keep working, autoload can be switched off, and hook calls can be traced."""

from __future__ import annotations

import json
import logging
import textwrap
from pathlib import Path

import pytest

import rcetl
import rcetl.registry
from rcetl.hookspecs import all_hook_names
from rcetl.registry import PluginManager

from .conftest import make_pm


class Misspelt:
    @rcetl.hookimpl
    def rcetl_sinkz(self) -> list:
        return []


def test_a_plugin_implementing_an_unknown_hook_is_rejected(pm: PluginManager) -> None:
    with pytest.raises(rcetl.PluginError) as err:
        pm.register(Misspelt(), "misspelt-plugin")
    assert err.value.exit_code == 2
    assert "'misspelt-plugin'" in err.value.message and "rcetl_sinkz" in err.value.message
    for hook in all_hook_names():
        assert hook in err.value.hint
    assert "rcetl_sinks" in str(err.value)
    # nothing of it stayed registered, and the registry still works
    assert "filesystem" in pm.sinks()


def make_dist(site: Path, package: str, version: str, entry_points: dict[str, str],
              modules: dict[str, str] | None = None) -> None:
    """An installed distribution as importlib.metadata sees one: a dist-info with entry points."""
    info = site / f"{package.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text("[rcetl]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items()))
    for name, source in (modules or {}).items():
        (site / f"{name}.py").write_text(textwrap.dedent(source))


GOOD = """
import rcetl

from rcetl.plugins.sinks.filesystem import FilesystemConfig, FilesystemSink

class GoodSink(FilesystemSink):
    config_model = FilesystemConfig
    description = "a good third-party sink"

@rcetl.hookimpl
def rcetl_sinks():
    return [rcetl.SinkEntry("goodsink", "rcetl_goodsink_mod:GoodSink")]
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "site"
    folder.mkdir()
    make_dist(folder, "rcetl-good", "2.0", {"goodsink": "rcetl_goodsink_mod"}, {"rcetl_goodsink_mod": GOOD})
    make_dist(folder, "rcetl-missing", "0.1", {"missing": "rcetl_no_such_module"})
    make_dist(folder, "rcetl-raising", "0.2", {"raising": "rcetl_raising_mod"},
              {"rcetl_raising_mod": "raise RuntimeError('cannot reach the licence server')\n"})
    make_dist(folder, "rcetl-unknown-hook", "0.3", {"unknownhook": "rcetl_unknown_hook_mod"},
              {"rcetl_unknown_hook_mod": "import rcetl\n\n@rcetl.hookimpl\ndef rcetl_sink():\n    return []\n"})
    monkeypatch.syspath_prepend(str(folder))
    return folder


def test_broken_plugin_packages_are_reported_and_the_others_work(site: Path) -> None:
    pm = PluginManager()
    pm.load_entry_points()
    infos = {i.name: i for i in pm.infos}
    assert "rcetl_no_such_module" in infos["missing"].error and infos["missing"].package == "rcetl-missing"
    assert "RuntimeError: cannot reach the licence server" in infos["raising"].error
    assert "unknown hook(s): rcetl_sink" in infos["unknownhook"].error
    assert infos["goodsink"].error is None
    assert (infos["goodsink"].package, infos["goodsink"].version, infos["goodsink"].origin) == \
        ("rcetl-good", "2.0", "third-party")
    sinks = pm.sinks()
    assert "goodsink" in sinks and "filesystem" in sinks and "sqlite" in sinks


def test_plugins_list_names_the_broken_packages(site: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rcetl.registry, "_default", None)  # load for real, from the site above
    result = cli("plugins", "list")
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())  # the table wraps long lines
    assert "broken plugin missing (rcetl_no_such_module) from package 'rcetl-missing'" in text
    assert "broken plugin raising (rcetl_raising_mod) from package 'rcetl-raising'" in text
    assert "other plugins work" in text
    assert "goodsink" in text and "filesystem" in text

    monkeypatch.setattr(rcetl.registry, "_default", None)
    data = json.loads(cli("plugins", "list", "--json").stdout)
    broken = {b["package"]: b for b in data["broken"]}
    assert set(broken) >= {"rcetl-missing", "rcetl-raising", "rcetl-unknown-hook"}
    good = [p for p in data["plugins"] if p["name"] == "goodsink"]
    assert good and good[0]["package"] == "rcetl-good" and good[0]["origin"] == "third-party"


def test_a_pipeline_using_a_working_plugin_validates_despite_broken_ones(site: Path, cli, write_pipeline,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    pm = make_pm()
    monkeypatch.setattr(rcetl.registry, "_default", pm)
    path = write_pipeline("""\
pipeline: mixed
fake: {}
sources: {items: {}}
sinks:
  db: {plugin: sqlite, url: archive.db}
  files: {plugin: goodsink, path: files}
""")
    result = cli("validate", path)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("value", ["1", "true", "yes"])
def test_disable_autoload_loads_no_third_party_plugin(site: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("RCETL_DISABLE_PLUGIN_AUTOLOAD", value)
    pm = PluginManager()
    pm.load_entry_points()
    assert {i.origin for i in pm.infos} == {"built-in"}
    assert not any(i.package.startswith("rcetl-") for i in pm.infos)
    assert "goodsink" not in pm.sinks()
    assert "filesystem" in pm.sinks()
    # plugins registered explicitly still count (tests, embedding applications)
    pm.register(Good := type("Good", (), {"rcetl_sinks": rcetl.hookimpl(lambda self: [])})(), "explicit")
    assert any(i.name == "explicit" and i.origin == "registered" for i in pm.infos)
    del Good


def test_without_the_switch_third_party_plugins_load(site: Path) -> None:
    pm = PluginManager()
    pm.load_entry_points()
    assert "goodsink" in pm.sinks()


def test_trace_hooks_logs_every_hook_call(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("RCETL_TRACE_HOOKS", "1")
    caplog.set_level(logging.DEBUG, logger="rcetl.plugins")
    class Observer:
        @rcetl.hookimpl
        def rcetl_run_started(self, run) -> None:  # noqa: ANN001
            pass

    pm = make_pm()
    pm.register(Observer(), "observer")
    pm.sinks()
    pm.run_started(_run_info())
    traced = [r.getMessage() for r in caplog.records if r.name == "rcetl.plugins" and r.getMessage().startswith("hook:")]
    # pluggy's call order (last registered first), the guard left out
    assert any(m.startswith("hook: rcetl_sinks() -> plugins ") and "'fakeplugins'" in m for m in traced), traced
    assert "rcetl-hookguard" not in " ".join(traced)
    assert any(m.startswith("hook: rcetl_sinks returned ") and "result(s)" in m for m in traced), traced
    [started] = [m for m in traced if m.startswith("hook: rcetl_run_started(run=RunInfo) -> plugins ")]
    assert started.split(" -> plugins ")[1].startswith("'observer'"), started
    assert "hook: rcetl_run_started returned 0 result(s)" in traced, traced


def test_without_the_switch_nothing_is_traced(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="rcetl.plugins")
    make_pm().sinks()
    assert not [r for r in caplog.records if r.getMessage().startswith("hook:")]


def _run_info():
    from rcetl.run import RunInfo

    return RunInfo("r1", "p", "p.yaml", 0.0)


def test_a_failing_registry_hook_marks_its_plugin_and_spares_the_rest(pm: PluginManager) -> None:
    class Exploding:
        @rcetl.hookimpl
        def rcetl_sources(self) -> list:
            raise ValueError("bad spec table")

    pm.register(Exploding(), "exploding")
    sources = pm.sources()
    assert "items" in sources
    [info] = [i for i in pm.infos if i.name == "exploding"]
    assert "rcetl_sources failed: ValueError: bad spec table" in info.error
    assert pm.plugin_of("source", "items").name == "fakesource"  # the others' specs keep their origin


def test_a_failing_observer_never_fails_the_caller(pm: PluginManager, caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        @rcetl.hookimpl
        def rcetl_run_started(self, run) -> None:  # noqa: ANN001
            raise RuntimeError("notifier down")

    pm.register(Broken(), "broken-observer")
    pm.run_started(_run_info())  # no exception
    [record] = [r for r in caplog.records if "broken-observer" in r.getMessage()]
    assert record.getMessage() == "observer 'broken-observer' failed in rcetl_run_started"
    assert record.exc_info and "notifier down" in str(record.exc_info[1])  # the traceback is logged


# --- sinks registered by dotted path ---------------------------------------------------------------


@pytest.fixture
def sink_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "sink_needs_sdk.py").write_text("import rcetl_no_such_sdk\n")
    (tmp_path / "sink_not_a_sink.py").write_text("class Thing:\n    pass\n")
    (tmp_path / "sinkpkg").mkdir()
    (tmp_path / "sinkpkg" / "__init__.py").write_text("")
    (tmp_path / "sinkpkg" / "sink.py").write_text("from .helpers_renamed import x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("entry,message,hint", [
    (rcetl.SinkEntry("gone", "rcetl_no_such_pkg.sink:GoneSink", extra="rcetl-gone[x]"),
     "sink plugin 'gone': cannot import rcetl_no_such_pkg.sink", "the package registering it is broken"),
    (rcetl.SinkEntry("inner", "sinkpkg.sink:InnerSink", extra="rcetl-inner[x]"),  # its own module missing
     "sink plugin 'inner': cannot import sinkpkg.sink", "the package registering it is broken"),
    (rcetl.SinkEntry("thing", "sink_not_a_sink:Thing"),
     "sink plugin 'thing': sink_not_a_sink:Thing is not an rcetl.Sink subclass", "'package.module:ClassName'"),
    (rcetl.SinkEntry("thing", "sink_not_a_sink:Nothing"),
     "sink plugin 'thing': sink_not_a_sink:Nothing is not an rcetl.Sink subclass", "'package.module:ClassName'"),
    (rcetl.SinkEntry("sdk", "sink_needs_sdk:SdkSink", extra="rcetl-sdk[fast]"),  # imports its SDK at the top
     "sink plugin 'sdk' needs rcetl_no_such_sdk, which is not installed", "pip install 'rcetl-sdk[fast]'"),
    (rcetl.SinkEntry("s3x", "rcetl.plugins.sinks.s3:S3Sink", extra="rcetl[s3]", requires=("boto3", "rcetl_nope")),
     "sink plugin 's3x' needs rcetl_nope, which is not installed", "pip install 'rcetl[s3]'"),
    (rcetl.SinkEntry("bare", "rcetl.plugins.sinks.s3:S3Sink", requires=("rcetl_nope.sub",)),
     "sink plugin 'bare' needs rcetl_nope.sub, which is not installed",
     "install the package that provides rcetl_nope.sub"),
])
def test_a_sink_that_cannot_load_says_why_and_what_to_install(sink_modules: Path, entry: rcetl.SinkEntry,
                                                               message: str, hint: str) -> None:
    with pytest.raises(rcetl.PluginError) as err:
        entry.load()
    assert err.value.message.startswith(message), err.value.message
    assert hint in (err.value.hint or "")
    assert err.value.exit_code == 2 and err.value.__cause__ is None
    assert err.value.__context__ is None or err.value.__suppress_context__  # one message, no chained traceback


def test_a_sink_entry_loads_its_class_only_when_asked(sink_modules: Path) -> None:
    import sys

    (sink_modules / "sink_lazy_mod.py").write_text(
        "import rcetl\n\nclass LazySink(rcetl.RecordSink):\n    def write(self, records):\n        pass\n")
    entry = rcetl.SinkEntry("lazy", "sink_lazy_mod:LazySink")
    assert "sink_lazy_mod" not in sys.modules
    assert entry.load().__name__ == "LazySink" and "sink_lazy_mod" in sys.modules
    assert entry.load().kinds() == frozenset({"records"})
