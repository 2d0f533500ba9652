"""The rcetl command: help, validate, schema, plugins, state, log formats, and secrets kept out of output."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from rcetl.cli.main import app

from . import fakesource
from .archive import BIG, pipeline_text
from .conftest import SMOKE, tree

SECRET = "s3cr3t-jwt-value-7f9a"


def test_help_lists_the_commands(cli) -> None:
    result = cli("--help")
    assert result.exit_code == 0
    for command in ("run", "validate", "schema", "plugins", "state"):
        assert command in result.stdout
    assert "rcetl validate PIPELINE.yaml" in result.stdout


@pytest.mark.parametrize("group", ["plugins", "state"])
def test_groups_have_help(cli, group: str) -> None:
    result = cli(group, "--help")
    assert result.exit_code == 0 and "show" in result.stdout


def test_validate_says_what_the_pipeline_holds(cli, write_pipeline, tmp_path: Path) -> None:
    path = write_pipeline()
    result = cli("validate", path)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"{path}: valid pipeline 'smoke': 1 connection(s), streams items, sinks db, files"
    assert tree(tmp_path) == {"p.yaml"}  # validating writes nothing


# --- schema ---------------------------------------------------------------------------------------------


@pytest.fixture
def schema(cli) -> dict:
    result = cli("schema")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_schema_is_a_valid_json_schema(schema: dict) -> None:
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["title"] == "rcetl pipeline"
    assert {"pipeline", "sources", "sinks", "executor", "budgets", "state", "spool_dir"} <= set(schema["properties"])
    assert "items" in schema["properties"]["sources"]["properties"]


GOOD = {
    "pipeline": "fake-demo",
    "fake": {"token": "x"},
    "executor": {"type": "local", "workers": 2},
    "sources": {"items": {"count": 3, "connection": "fake"}, "pair": None},
    "sinks": {"db": {"plugin": "sqlite", "url": "archive.db"},
              "files": {"plugin": "filesystem", "path": "files", "streams": ["items"]}},
}


def test_schema_accepts_a_good_pipeline(schema: dict) -> None:
    jsonschema.validate(GOOD, schema, cls=jsonschema.Draft202012Validator)


@pytest.mark.parametrize("change", [
    {"sources": {"items": {"count": "many"}}},
    {"sources": {"items": {"cuont": 3}}},
    {"sources": {"itemz": {}}},
    {"sinks": {"db": {"plugin": "sqlit", "url": "x"}}},
    {"sinks": {"files": {"plugin": "filesystem"}}},
    {"executor": {"type": "threads"}},
    {"spool_dri": "/tmp"},
], ids=["wrong-type", "misspelt-option", "unknown-source", "unknown-sink", "missing-option", "executor", "top-level"])
def test_schema_rejects_what_validate_rejects(schema: dict, change: dict) -> None:
    bad = {**GOOD, **change}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema, cls=jsonschema.Draft202012Validator)


def test_schema_can_be_written_to_a_file(cli, tmp_path: Path) -> None:
    out = tmp_path / "rcetl.schema.json"
    assert cli("schema", "--output", out).exit_code == 0
    jsonschema.Draft202012Validator.check_schema(json.loads(out.read_text()))


# --- plugins --------------------------------------------------------------------------------------------


def test_plugins_list_shows_kind_package_and_origin(cli) -> None:
    data = json.loads(cli("plugins", "list", "--json").stdout)
    rows = {(p["kind"], p["name"]): p for p in data["plugins"]}
    assert rows[("sink", "filesystem")]["origin"] == "built-in"
    assert rows[("sink", "filesystem")]["package"] == "rcetl"
    assert rows[("source", "items")]["origin"] == "registered"
    assert ("connection", "fake") in rows


def test_plugins_show_lists_the_options(cli) -> None:
    result = cli("plugins", "show", "items")
    assert result.exit_code == 0, result.output
    assert "source items" in result.stdout and "streams: items; connection: fake" in result.stdout
    for option in ("count", "page", "blob_size", "big_ids"):
        assert option in result.stdout


def test_plugins_show_a_misspelt_name_suggests_the_right_one(cli) -> None:
    result = cli("plugins", "show", "filesytem")
    assert result.exit_code == 2
    assert "no plugin named 'filesytem'" in result.stderr and "did you mean 'filesystem'?" in result.stderr


def test_plugins_show_an_unknown_name_lists_what_is_installed(cli) -> None:
    result = cli("plugins", "show", "zzzzzz")
    assert result.exit_code == 2 and "installed:" in result.stderr and "sqlite" in result.stderr


# --- state ----------------------------------------------------------------------------------------------


def test_state_show_and_reset(cli, write_pipeline, tmp_path: Path) -> None:
    path = write_pipeline(pipeline_text(6, name="smoke"))
    fakesource.FAIL_DOWNLOADS.add(f"blob-{BIG + 1}")
    assert cli("run", path).exit_code == 1

    shown = cli("state", "show", path)
    assert shown.exit_code == 0, shown.output
    assert "checkpoints of smoke" in shown.stdout and "items@fake" in shown.stdout
    assert "failed items (1)" in shown.stdout and str(BIG + 1) in shown.stdout
    assert "partial" in shown.stdout

    data = json.loads(cli("state", "show", path, "--json").stdout)
    assert [c["value"] for c in data["checkpoints"]] == [6]
    assert data["failed"][0]["key"] == BIG + 1  # exact, through JSON
    assert data["runs"][0]["status"] == "partial"

    refused = cli("state", "reset", path, input="n\n")
    assert refused.exit_code == 1
    assert json.loads(cli("state", "show", path, "--json").stdout)["checkpoints"]

    reset = cli("state", "reset", path, "--stream", "items", "--yes")
    assert reset.exit_code == 0 and "reset 1 checkpoint(s) of stream 'items'" in reset.stdout
    data = json.loads(cli("state", "show", path, "--json").stdout)
    assert data["checkpoints"] == [] and len(data["failed"]) == 1  # the queue still knows what is missing


def test_state_of_a_pipeline_that_never_ran_creates_nothing(cli, write_pipeline, tmp_path: Path) -> None:
    path = write_pipeline()
    before = tree(tmp_path)
    result = cli("state", "show", path)
    assert result.exit_code == 0 and "has not run yet" in result.stdout
    assert json.loads(cli("state", "show", path, "--json").stdout) == {"checkpoints": [], "runs": [], "failed": []}
    assert cli("state", "reset", path, "-y").exit_code == 0
    assert tree(tmp_path) == before


# --- run output -----------------------------------------------------------------------------------------


def test_run_prints_a_summary(cli, write_pipeline) -> None:
    result = cli("run", write_pipeline())
    assert result.exit_code == 0, result.output
    assert "of smoke: ok" in result.stdout
    assert "items" in result.stdout and "10" in result.stdout


def test_log_format_json_emits_json_lines(cli, write_pipeline) -> None:
    fakesource.FAIL_DOWNLOADS.add(f"blob-{BIG}")
    result = cli("--log-format", "json", "run", write_pipeline())
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"ts", "level", "logger", "message"} <= set(r) for r in records)
    assert any(r["level"] == "warning" and "queued for retry" in r["message"] for r in records)


def test_log_format_must_be_text_or_json(cli) -> None:
    result = cli("--log-format", "xml", "plugins", "list")
    assert result.exit_code == 2 and "use 'text' or 'json'" in result.stderr


# --- secrets (invariant 6) ------------------------------------------------------------------------------

SECRET_PIPELINE = """\
pipeline: secretive
fake:
  token: ${RC_JWT}
sources:
  items: {count: 4}
sinks:
  db: {plugin: sqlite, url: "sqlite:///archive.db"}
  files: {plugin: filesystem, path: files}
"""


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RC_JWT", SECRET)


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_secrets_never_appear_in_output(cli, write_pipeline, secret_env, tmp_path: Path, log_format: str) -> None:
    path = write_pipeline(SECRET_PIPELINE)
    fakesource.FAIL_DOWNLOADS.add(f"blob-{BIG + 2}")
    outputs = [
        cli("--log-format", log_format, "-v", "validate", path),
        cli("--log-format", log_format, "-v", "run", path),
        cli("--log-format", log_format, "-v", "run", path, "--dry-run"),
        cli("--log-format", log_format, "-v", "run", path, "--json"),
        cli("--log-format", log_format, "state", "show", path),
        cli("--log-format", log_format, "state", "show", path, "--json"),
    ]
    text = "".join(o.output for o in outputs)
    assert "fake connection fake opened with token ***" in text  # the careless plugin did log it...
    assert SECRET not in text  # ...masked
    for stored in (tmp_path / ".rcetl").rglob("*"):
        if stored.is_file():
            assert SECRET.encode() not in stored.read_bytes(), f"{stored} holds the secret"


def test_a_secret_echoed_in_a_validation_error_is_masked(cli, write_pipeline, secret_env) -> None:
    path = write_pipeline(SECRET_PIPELINE.replace("{count: 4}", "{count: '${RC_JWT}'}"))
    result = cli("validate", path)
    assert result.exit_code == 2
    assert "sources.items.count" in result.stderr and "(got '***')" in result.stderr
    assert SECRET not in result.output


def test_smoke_pipeline_runs_from_the_cli(cli, write_pipeline, tmp_path: Path) -> None:
    assert SMOKE in write_pipeline().read_text()
    assert cli("run", tmp_path / "p.yaml").exit_code == 0
    assert len(list((tmp_path / "files").rglob("*.bin"))) == 10
    assert app.info.name == "rcetl"
