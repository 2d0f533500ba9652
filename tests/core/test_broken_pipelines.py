"""Broken pipeline files (tests/core/broken/*.yaml): each gives one clear message naming the file, the line
and the field, and how to fix it; exits 2; and writes nothing at all (invariant 7).

Every file is run through both ``rcetl validate`` and ``rcetl run``: ``run`` must validate before it
creates a state database, a spool folder, a lock or an archive.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .conftest import tree

BROKEN = Path(__file__).parent / "broken"

# file -> (line, field, fragments the message must contain)
CASES: dict[str, tuple[int, str, list[str]]] = {
    "bad_yaml.yaml": (5, "(top level)", ["not valid YAML", "flow mapping that starts on line 4", "fix the YAML syntax"]),
    "not_a_mapping.yaml": (1, "(top level)", ["must be a mapping of options", "start with `pipeline: NAME`"]),
    "empty.yaml": (1, "(top level)", ["must be a mapping of options"]),
    "missing_pipeline.yaml": (1, "pipeline", ["required option is missing", "add `pipeline:`"]),
    "bad_pipeline_name.yaml": (1, "pipeline", ["should match pattern", "'my pipeline!'", "keys its checkpoints"]),
    "unknown_top_level_key.yaml": (7, "spool_dri", ["unknown top-level option 'spool_dri'",
                                                    "did you mean 'spool_dir'?"]),
    "unknown_source.yaml": (4, "sources.itemz", ["unknown source 'itemz'", "did you mean 'items'?"]),
    "misspelt_source_option.yaml": (6, "sources.items.blob_sise", ["unknown option 'blob_sise'",
                                                                   "did you mean 'blob_size'?"]),
    "wrong_type.yaml": (5, "sources.items.count", ["valid integer", "(got 'many')", "expected int"]),
    "missing_required_option.yaml": (6, "sinks.db.url", ["required option is missing", "add `url:`"]),
    "missing_env_variable.yaml": (3, "fake.token", ["environment variable RC_JWT is not set",
                                                    "export RC_JWT=", "${RC_JWT:-default}"]),
    "unknown_sink_plugin.yaml": (7, "sinks.db.plugin", ["unknown sink plugin 'sqlit'", "did you mean 'sqlite'?"]),
    "misspelt_sink_option.yaml": (10, "sinks.files.fsnyc", ["unknown option 'fsnyc'", "did you mean 'fsync'?"]),
    "unknown_stream_in_routing.yaml": (9, "sinks.db.streams.0", ["unknown stream 'itemz'", "did you mean 'items'?"]),
    "sink_cannot_take_stream.yaml": (10, "sinks.only_items.streams.1", ["'items_only' cannot take stream 'alpha'",
                                                                        "it takes: items"]),
    "no_sinks.yaml": (5, "sinks", ["no sinks configured", "plugin: sqlite"]),
    "no_sources.yaml": (3, "sources", ["no sources configured", "add at least one of:", "items"]),
    "source_without_connection.yaml": (3, "sources.items", ["needs a 'fake' connection", "top-level `fake:` block"]),
    "duplicate_key.yaml": (6, "(top level)", ["duplicate key \"count\"", "mapping that starts on line 5",
                                              "may appear only once"]),
    "unknown_connection_name.yaml": (7, "sources.items.connection", ["no fake connection named 'primray'",
                                                                     "did you mean 'primary'?"]),
    "streams_not_a_list.yaml": (9, "sinks.db.streams", ["expected a list of stream names", "streams: [items]"]),
    "executor_type_invalid.yaml": (4, "executor.type", ["(got 'threads')", "one of: 'local', 'celery'"]),
    "budgets_backend_invalid.yaml": (4, "budgets.backend", ["(got 'memcached')", "one of: 'memory', 'redis'"]),
    "workers_out_of_range.yaml": (4, "executor.workers", ["greater than or equal to 1", "(got 0)"]),
    "sources_not_a_mapping.yaml": (3, "sources", ["valid dictionary", "source plugins and their options"]),
    "unknown_connection_plugin.yaml": (4, "connections.main.plugin", ["unknown connection plugin 'fkae'",
                                                                      "did you mean 'fake'?"]),
    "misspelt_connection_option.yaml": (3, "fake.tokn", ["unknown option 'tokn'", "did you mean 'token'?"]),
    "no_record_sink.yaml": (4, "sources.items", ["no record sink takes stream 'items'", "database sink"]),
    "sink_url_wrong_database.yaml": (8, "sinks.db.url", ["needs a sqlite URL, not 'postgresql'", "plugin: sql"]),
    "connection_twice.yaml": (4, "fake", ["connection 'fake' is defined twice", "distinct `name:`"]),
}

# Problems that follow from the first one must not be reported (they would bury it).
SINGLE_PROBLEM = set(CASES)


def test_every_broken_file_has_a_row_and_there_are_enough() -> None:
    files = {p.name for p in BROKEN.glob("*.yaml")}
    assert files == set(CASES)
    assert len(files) >= 20


@pytest.fixture
def broken_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("RC_JWT", raising=False)

    def copy(name: str) -> Path:
        folder = tmp_path / "pipelines"
        folder.mkdir()
        target = folder / name
        shutil.copy(BROKEN / name, target)
        return target

    return copy


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_broken_pipeline(name: str, command: str, cli, broken_copy, tmp_path: Path) -> None:
    line, field, fragments = CASES[name]
    path = broken_copy(name)
    before = tree(tmp_path)

    result = cli(command, path)

    assert result.exit_code == 2, result.output
    message = result.stderr
    assert f"{path}:{line}: {field}: " in message, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in:\n{message}"
    assert "1 problem:" in message, message
    assert "Traceback" not in result.output
    assert result.stdout == ""
    # nothing written: no state db, no .rcetl folder, no spool, no archive
    assert tree(tmp_path) == before


def test_run_with_every_option_still_validates_first(cli, broken_copy, tmp_path: Path) -> None:
    path = broken_copy("wrong_type.yaml")
    before = tree(tmp_path)
    result = cli("run", path, "--dry-run", "--full-refresh", "--since", "2026-01-01", "--stream", "items")
    assert result.exit_code == 2
    assert "sources.items.count" in result.stderr
    assert tree(tmp_path) == before


def test_several_problems_are_reported_at_once(cli, write_pipeline) -> None:
    path = write_pipeline("""\
pipeline: broken
fake: {}
sources:
  items: {count: many, cuont: 3}
sinks:
  db: {plugin: sqlit, url: x}
""")
    result = cli("validate", path)
    assert result.exit_code == 2
    assert "3 problems:" in result.stderr
    assert f"{path}:4: sources.items.count" in result.stderr
    assert f"{path}:4: sources.items.cuont" in result.stderr
    assert f"{path}:6: sinks.db.plugin" in result.stderr


def test_missing_file_is_a_clear_error(cli, tmp_path: Path) -> None:
    result = cli("validate", tmp_path / "nope.yaml")
    assert result.exit_code == 2
    assert "no such pipeline file" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_env_default_fills_a_missing_variable(cli, write_pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RC_JWT", raising=False)
    path = write_pipeline((BROKEN / "missing_env_variable.yaml").read_text().replace("${RC_JWT}", "${RC_JWT:-x}"))
    assert cli("validate", path).exit_code == 0
