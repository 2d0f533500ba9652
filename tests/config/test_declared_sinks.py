"""Sinks whose registration declares their options model and kinds (``SinkEntry(config=, kinds=)``):
``rcetl validate`` checks them without importing the class (the SQL sinks' modules import SQLAlchemy),
``rcetl run`` loads the class, and a registration that disagrees with its class is refused by name."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import rcetl
from rcetl.config import check_pipeline_file, load_pipeline
from rcetl.config.yamlsource import PipelineFileError
from rcetl.plugins.sinks import builtin
from rcetl.registry import PluginManager

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import sys, runpy
sys.argv = ['rcetl', 'validate', sys.argv[1]]
try:
    runpy.run_module('rcetl.cli.main', run_name='__main__')
except SystemExit as exc:
    print('exit', exc.code)
print(sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'alembic')}))
"""


def _validate_modules(pipeline: Path) -> tuple[str, list[str]]:
    out = subprocess.run([sys.executable, "-c", PROBE, str(pipeline)], cwd=pipeline.parent, capture_output=True,
                         text=True, timeout=120)
    *lines, last = out.stdout.strip().splitlines()
    return "\n".join(lines) + out.stderr, eval(last)  # noqa: S307 - our own probe's repr of a list


def test_validate_of_the_demo_does_not_import_sqlalchemy() -> None:
    output, heavy = _validate_modules(ROOT / "pipelines" / "demo.yaml")
    assert "valid pipeline 'demo'" in output, output
    assert heavy == [], f"rcetl validate imported {heavy}"


@pytest.mark.parametrize(("plugin", "url"), [
    ("sqlite", "archive.db"), ("sql", "sqlite:///x.db"), ("postgres", "postgres://u:${DB_PASSWORD}@db/archive"),
    ("mysql", "mysql://root@db/archive"), ("mssql", "mssql://sa@db/archive"),
])
def test_no_sql_sink_imports_sqlalchemy_to_validate(tmp_path: Path, plugin: str, url: str) -> None:
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(f"pipeline: p\nringcentral:\n  server: sandbox\nsources:\n  call-log: {{}}\n"
                        f"sinks:\n  db: {{plugin: {plugin}, url: \"{url}\"}}\n")
    output, heavy = _validate_modules(pipeline)
    if "DB_PASSWORD" in url:  # an unset variable is a validation error: still no SQLAlchemy
        assert "DB_PASSWORD" in output
    else:
        assert "valid pipeline 'p'" in output, output
    assert heavy == []


def test_a_wrong_url_is_still_caught_when_validating(tmp_path: Path) -> None:
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text("pipeline: p\nringcentral:\n  server: sandbox\nsources:\n  call-log: {}\n"
                        "sinks:\n  db: {plugin: postgres, url: \"mysql://root@db/archive\"}\n")
    with pytest.raises(PipelineFileError) as err:
        check_pipeline_file(pipeline)
    assert "the 'postgres' sink needs a postgresql URL, not 'mysql'" in str(err.value)


def test_check_then_build_loads_the_class_validation_skipped(tmp_path: Path) -> None:
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text("pipeline: p\nringcentral:\n  server: sandbox\nsources:\n  call-log: {}\n"
                        "sinks:\n  db: {plugin: sqlite, url: archive.db}\n")
    checked = check_pipeline_file(pipeline)
    assert [(s.name, s.sink_class, s.kinds) for s in checked.sinks] == [("db", None, frozenset({"records"}))]
    built = checked.build()
    from rcetl.plugins.sinks.sql.variants import SqliteSink

    assert built.sinks[0].sink_class is SqliteSink and built.sinks[0].kinds == {"records"}
    assert load_pipeline(pipeline).sinks[0].config == built.sinks[0].config


@pytest.mark.parametrize("entry", [e for e in builtin.rcetl_sinks() if e.declared], ids=lambda e: e.name)
def test_every_declared_builtin_agrees_with_its_class(entry: rcetl.SinkEntry) -> None:
    cls = entry.load()  # checks config=, kinds=, and that the class neither restricts streams nor picks subclasses
    assert cls.config_model is entry.load_config() and cls.kinds() == entry.kinds


class _Options(rcetl.PluginConfig):
    path: str = "x"


class _Other(rcetl.PluginConfig):
    pass


class _Records(rcetl.RecordSink):
    config_model = _Options

    def write(self, records):  # type: ignore[no-untyped-def]  # never called
        return None


class _Picky(_Records):
    @classmethod
    def configured(cls, config: rcetl.PluginConfig) -> type[rcetl.Sink]:
        return cls


@pytest.mark.parametrize(("target", "config", "kinds", "says"), [
    (_Records, f"{__name__}:_Other", {"records"}, "config_model is tests.config.test_declared_sinks:_Options"),
    (_Records, f"{__name__}:_Options", {"blobs"}, "kinds=['blobs'] but the class stores ['records']"),
    (_Picky, f"{__name__}:_Options", {"records"}, "picks a subclass by option"),
    (_Records, f"{__name__}:_Missing", {"records"}, "is not an rcetl.PluginConfig subclass"),
])
def test_a_registration_that_disagrees_with_its_class_is_refused(target: type[rcetl.Sink], config: str,
                                                                  kinds: set[str], says: str) -> None:
    entry = rcetl.SinkEntry("x", target, config=config, kinds=frozenset(kinds))
    with pytest.raises(rcetl.PluginError) as err:
        entry.load()
    assert says in err.value.message


def test_config_and_kinds_are_declared_together() -> None:
    with pytest.raises(rcetl.PluginError, match="declare both config= and kinds="):
        rcetl.SinkEntry("x", _Records, config=f"{__name__}:_Options")


def test_a_declared_sink_whose_class_is_broken_fails_at_build_with_the_file_line(tmp_path: Path) -> None:
    """Validation trusted the declaration; loading the class for a run reports the problem at the sink."""

    class Plugin:
        @rcetl.hookimpl
        def rcetl_sinks(self) -> list[rcetl.SinkEntry]:
            return [rcetl.SinkEntry("liar", _Records, config=f"{__name__}:_Options", kinds=frozenset({"blobs"}))]

    pm = PluginManager()
    pm.load_entry_points()
    pm.register(Plugin(), "liar-plugin")
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text("pipeline: p\nringcentral:\n  server: sandbox\nsources:\n  call-log: {}\n"
                        "sinks:\n  db: {plugin: sqlite, url: a.db}\n  files: {plugin: liar}\n")
    checked = check_pipeline_file(pipeline, pm=pm)
    with pytest.raises(PipelineFileError) as err:
        checked.build()
    assert "p.yaml:8: sinks.files.plugin: sink plugin 'liar': its registration disagrees" in str(err.value).replace(str(tmp_path) + "/", "")


def test_an_entry_builds_a_sink_from_options_as_a_file_gives_them(tmp_path: Path) -> None:
    """``SinkEntry.build``: what tests and benchmarks use instead of a pipeline file (not opened)."""
    from pydantic import ValidationError

    entries = PluginManager()
    entries.load_entry_points()
    ctx = rcetl.RunContext.standalone(tmp_path, "t")
    sink = entries.sinks()["sqlite"].build("db", {"url": "a.db", "table_prefix": "x_"}, ctx)
    assert type(sink).__name__ == "SqliteSink" and sink.name == "db" and sink.config.table_prefix == "x_"
    with pytest.raises(ValidationError):
        entries.sinks()["sqlite"].build("db", {"url": "mysql://h/db"}, ctx)
