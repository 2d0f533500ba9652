"""The hostile-input catalogue: pipeline files, CLI arguments and API payloads that are wrong on
purpose. Each must give one line naming what is wrong, a non-zero exit or a failed-item entry, and
leave nothing lost or corrupted: no half row or file, no checkpoint past lost data, no token sent
to another host, and a later run against a healthy server completes the archive byte-exact.

The 30 broken pipeline files of ``tests/core/broken/`` (``tests/core/test_broken_pipelines.py``)
are part of the catalogue; the pipeline rows here add the security-minded ones. API rows are served
by ``hostile_server.HostileRingCentral``.
"""

from __future__ import annotations

import hashlib
import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from .archive_check import assert_no_partial_files, check_archive
from .harness import env_for, open_sink, rcetl_cli
from .hostile_server import BIG, HostileRingCentral

OK, EXIT1, EXIT2, FAILED_ITEM = "ok", "exit 1", "exit 2", "failed item"

# --- API payloads: (case, expected message fragment, expected outcome) ---------------------------------
API = [
    ("truncated JSON", "truncated or malformed JSON body", EXIT1),
    ("empty body", "sent an empty body, not JSON", EXIT1),
    ("HTML instead of JSON", "sent HTML, not JSON", EXIT1),
    ("invalid UTF-8", "not valid UTF-8", EXIT1),
    ("JSON nested 100,000 deep", "nested too deep", EXIT1),
    ("top level is a list", "sent a list instead of a JSON object", EXIT1),
    ("records not a list", "sent 'records' as a dict, not a list", EXIT1),
    ("record not an object", "as a str, not an object", EXIT1),
    ("id missing", "call-log record without an 'id'", EXIT1),
    ("id as float", "whose 'id' is 12345.0 (float)", EXIT1),
    ("id as bool", "whose 'id' is True (bool)", EXIT1),
    ("startTime not a date", "'startTime' is not a date: 'yesterday afternoon'", EXIT1),
    ("message id as float", "message whose 'id' is 9007199254741004.0 (float)", EXIT1),
    ("attachments not a list", "attachments of message 9007199254741003 as a dict", EXIT1),
    ("nextPage on another host", "nextPage points to another server (http://127.0.0.2)", EXIT1),
    ("nextPage loop", "a paging loop", EXIT1),
    ("redirect to another host (list)", "with a redirect (302) to 127.0.0.2; redirects are not followed", EXIT1),
    ("401 forever", "refused the credential", EXIT1),
    ("500 forever", "-> 500 (gave up after 3 tries)", EXIT1),
    ("429 forever", "still rate-limited after 21 tries", EXIT1),
    ("token endpoint sends HTML", "sent HTML, not JSON, for POST /restapi/oauth/token", EXIT1),
    ("token without access_token", "answered without an access_token", EXIT1),
    ("redirect to another host (download)", "with a redirect (302) to 127.0.0.2", FAILED_ITEM),
    ("contentUri on another host", "refusing to send RingCentral credentials to '127.0.0.2'", FAILED_ITEM),
    ("Content-Length longer than the body", "connection dropped", FAILED_ITEM),
    ("Content-Length shorter than the body", "declared 3000 bytes, 1500 arrived", FAILED_ITEM),
    ("endless body", "more than max_download_bytes (65536) sent", FAILED_ITEM),
    ("429 without Retry-After, then fine", "", OK),
    ("huge page (5,000 records)", "", OK),
    ("duplicate ids in a page", "", OK),
    ("path-traversal and control-character names", "", OK),
    ("healthy: ids above 2^53 kept exact", "", OK),
]

# --- CLI arguments: (case, argv with {p} for a valid pipeline and {tmp}, fragment, outcome) -----------
CLI = [
    ("bad --since date", ["run", "{p}", "--since", "2024-13-45"], "'2024-13-45' is not a date", EXIT2),
    ("bad --until date", ["run", "{p}", "--until", "yesterday"], "'yesterday' is not a date", EXIT2),
    ("unknown --stream", ["run", "{p}", "--stream", "voicemails"], "no stream 'voicemails' in this pipeline", EXIT2),
    ("unknown --executor", ["run", "{p}", "--executor", "threads"], "use 'local' or 'celery'", EXIT2),
    ("missing pipeline file", ["run", "{tmp}/nope.yaml"], "nope.yaml", EXIT2),
    ("a directory instead of a file", ["run", "{tmp}"], "directory", EXIT2),
    ("verify with a bad date", ["verify", "{p}", "--since", "last week"], "'last week' is not a date", EXIT2),
    ("unknown option", ["run", "{p}", "--fast"], "No such option: --fast", EXIT2),
    ("unknown command", ["archive", "{p}"], "No such command 'archive'", EXIT2),
    ("purge without a purge block", ["purge", "{p}"], "purge is not enabled for this pipeline", EXIT2),
    ("binary garbage as the pipeline", ["validate", "{tmp}/garbage.yaml"], "garbage.yaml", EXIT2),
]

# --- pipeline files beyond tests/core/broken: (case, YAML replacing the sinks/extra, fragment, outcome) --
PIPELINES = [
    ("YAML python tag", "spool_dir: !!python/object/apply:os.system ['touch {tmp}/PWNED']", "spool_dir", EXIT2),
    ("shell syntax in ${...}", "jwt_alt: ${RC_NOPE:-$(touch {tmp}/PWNED)}", "unknown top-level option 'jwt_alt'", EXIT2),
    # In an option rcetl reads (an unknown key would be refused before any ${...} is looked at).
    ("command substitution as a variable name", "spool_dir: ${$(touch {tmp}/PWNED)}",
     "is not a variable reference", EXIT2),
    ("hostile table_prefix", "db_prefix: \"x; DROP TABLE calls;--\"", "table_prefix", EXIT2),
    ("YAML alias bomb", "bomb", "YAML aliases are expanded", EXIT2),
]


@pytest.fixture(scope="module")
def server():
    with HostileRingCentral() as srv:
        yield srv


def _pipeline(tmp: Path, srv: HostileRingCentral, extra: str = "", db: str = "") -> Path:
    since = (datetime.now(timezone.utc) - timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    path = tmp / "hostile.yaml"
    path.write_text(f"""
pipeline: hostile
ringcentral:
  server: {srv.server}
  client_id: ${{RC_CLIENT_ID}}
  client_secret: ${{RC_CLIENT_SECRET}}
  jwt: ${{RC_JWT}}
  time_scale: {srv.time_scale}
  max_retries: 2
  max_download_bytes: 65536
state: {tmp / 'state.db'}
sources:
  call-log: {{view: Detailed, since: "{since}", window: 30d, per_page: 2}}
  recording: {{}}
  message-store: {{extensions: [1], since: "{since}", window: 30d}}
executor: {{batch_size: 3, downloads: 2}}
sinks:
  db: {{plugin: sqlite, url: "sqlite:///{tmp / 'archive.db'}"{db}}}
  files: {{plugin: filesystem, path: {tmp / 'files'}, key: "{{kind}}/{{id}}-{{name}}.{{ext}}"}}
{extra}
""")
    return path


def _one_line(fragment: str, output: str) -> bool:
    assert fragment.strip(), "an empty fragment is in every line: name the message the case expects"
    return any(fragment in line for line in output.splitlines())


def _archive_whole(tmp: Path) -> None:
    """Every row's binaries are stored and hash as recorded: no half row, no half file."""
    if not (tmp / "archive.db").exists():
        return
    db = open_sink("sqlite", "db", {"url": f"sqlite:///{tmp / 'archive.db'}"}, tmp)
    files = open_sink("filesystem", "files", {"path": str(tmp / "files")}, tmp)
    for stream in ("call-log", "recording", "message-store"):
        for entry in db.archived(stream):
            for blob in entry.archive:
                assert blob["status"] in ("stored", "gone"), blob
                if blob["status"] == "stored":
                    with files.open_stored(blob["locations"]["files"]) as fh:
                        assert hashlib.sha256(fh.read()).hexdigest() == blob["sha256"]
    if (tmp / "files").exists():
        assert_no_partial_files(tmp / "files")


def _checkpoint(tmp: Path, stream: str, source: str) -> object:
    from rcetl.state import StateStore

    if not (tmp / "state.db").exists():
        return None
    store = StateStore(f"sqlite:///{tmp / 'state.db'}")
    try:
        return store.get_checkpoint("hostile", f"{source}@ringcentral", stream, "1" if stream == "message-store" else "")
    finally:
        store.close()


@pytest.mark.parametrize("case,fragment,outcome", API, ids=[c[0] for c in API])
def test_api_payload(server: HostileRingCentral, tmp_path: Path, case: str, fragment: str, outcome: str) -> None:
    srv = server
    pipeline = _pipeline(tmp_path, srv)
    env = env_for(srv, tmp_path)
    srv.scenario = case if not case.startswith("healthy") else "healthy"
    srv.hits.clear()
    srv.evil_requests.clear()
    started = time.monotonic()
    try:
        done = rcetl_cli(["run", str(pipeline)], env, timeout=120)
    finally:
        srv.scenario = "healthy"
    out = done.stdout + done.stderr
    elapsed = time.monotonic() - started
    assert elapsed < 60, f"{case}: took {elapsed:.0f}s"
    assert "Traceback" not in out, out[-4000:]
    assert not any(r["authorization"] for r in srv.evil_requests), f"a token went to another host: {srv.evil_requests}"
    assert not list(Path("/tmp").glob("evil*")), "a name from the API escaped the archive root"
    _archive_whole(tmp_path)
    if outcome == OK:
        assert done.returncode == 0, out[-4000:]
        gt = srv.ground_truth(srv.huge_calls) if case.startswith("huge") else srv.ground_truth()
        check_archive(gt, open_sink("sqlite", "db", {"url": f"sqlite:///{tmp_path / 'archive.db'}"}, tmp_path),
                      open_sink("filesystem", "files", {"path": str(tmp_path / "files")}, tmp_path))
        if case.startswith("healthy"):
            db = open_sink("sqlite", "db", {"url": f"sqlite:///{tmp_path / 'archive.db'}"}, tmp_path)
            keys = {e.key for e in db.archived("message-store")}
            assert BIG in keys and all(isinstance(k, int) for k in keys), keys
        if case.startswith("path"):
            outside = [p for p in tmp_path.rglob("*") if p.is_file() and "files" not in p.relative_to(tmp_path).parts
                       and not p.name.startswith(("archive.db", "state.db", "hostile.yaml"))
                       and ".rcetl" not in p.parts and "rcetl-home" not in p.parts]
            assert not outside, outside
            names = [p.name for p in (tmp_path / "files").rglob("*")]
            assert not any(re.search(r"[\x00-\x1f]", n) or n.startswith("..") for n in names), names
        return
    assert done.returncode == 1, f"{case}: exit {done.returncode}\n{out[-4000:]}"
    assert _one_line(fragment, out), f"{case}: no line says {fragment!r}\n{out[-4000:]}"
    if outcome == FAILED_ITEM:
        assert "failed-item queue" in out, out[-3000:]
    elif case not in ("message id as float", "attachments not a list") and "token" not in case \
            and not case.startswith(("401", "500", "429")):
        assert _checkpoint(tmp_path, "call-log", "call-log") is None, "the call-log checkpoint moved past lost data"
    # The same pipeline against the healthy server: complete and byte-exact.
    # A failed item is retried from the record it was queued with; one whose stored contentUri is
    # itself the fault needs its call re-read, which only --full-refresh does past the checkpoint.
    again = ["--full-refresh"] if case == "contentUri on another host" else []
    healthy = rcetl_cli(["run", str(pipeline), "--retry-now", *again], env, timeout=120)
    assert healthy.returncode == 0, healthy.stdout[-3000:] + healthy.stderr[-3000:]
    check_archive(srv.ground_truth(), open_sink("sqlite", "db", {"url": f"sqlite:///{tmp_path / 'archive.db'}"}, tmp_path),
                  open_sink("filesystem", "files", {"path": str(tmp_path / "files")}, tmp_path))


@pytest.mark.parametrize("case,argv,fragment,outcome", CLI, ids=[c[0] for c in CLI])
def test_cli_argument(server: HostileRingCentral, tmp_path: Path, case: str, argv: list[str], fragment: str,
                      outcome: str) -> None:
    pipeline = _pipeline(tmp_path, server)
    (tmp_path / "garbage.yaml").write_bytes(bytes(range(256)) * 4)
    args = [a.format(p=pipeline, tmp=tmp_path) for a in argv]
    done = rcetl_cli(args, env_for(server, tmp_path), timeout=60)
    out = done.stdout + done.stderr
    assert done.returncode == int(outcome[-1]), f"{case}: exit {done.returncode}\n{out[-3000:]}"
    assert "Traceback" not in out, out[-3000:]
    assert _one_line(fragment, out), f"{case}: no line says {fragment!r}\n{out[-3000:]}"
    assert not (tmp_path / "archive.db").exists() and not (tmp_path / "files").exists(), "wrote before refusing"
    assert not server.evil_requests


BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True))


@pytest.mark.parametrize("case,extra,fragment,outcome", PIPELINES, ids=[c.values[0] if hasattr(c, "values") else c[0] for c in PIPELINES])
def test_pipeline_file(server: HostileRingCentral, tmp_path: Path, case: str, extra: str, fragment: str,
                       outcome: str) -> None:
    if extra == "bomb":
        pipeline = _pipeline(tmp_path, server, extra="x_bomb:\n  " + BOMB.replace("\n", "\n  "))
    elif extra.startswith("db_prefix:"):
        pipeline = _pipeline(tmp_path, server, db=", table_prefix: " + extra.split(": ", 1)[1])
    else:
        pipeline = _pipeline(tmp_path, server, extra=extra.replace("{tmp}", str(tmp_path)))
    started = time.monotonic()
    done = rcetl_cli(["run", str(pipeline)], env_for(server, tmp_path), timeout=20)
    out = done.stdout + done.stderr
    assert time.monotonic() - started < 20
    assert done.returncode == 2, f"{case}: exit {done.returncode}\n{out[-3000:]}"
    assert "Traceback" not in out, out[-3000:]
    assert _one_line(fragment, out), f"{case}: no line says {fragment!r}\n{out[-3000:]}"
    assert not (tmp_path / "PWNED").exists(), "the pipeline file executed a command"
    assert not (tmp_path / "archive.db").exists() and not (tmp_path / "state.db").exists()


def _cases(table: list) -> list[tuple]:
    return [tuple(c.values) if hasattr(c, "values") else c for c in table]


def test_every_refusal_in_the_catalogue_names_its_message() -> None:
    """A refusal is checked by the message it prints: a case without one would pass whatever rcetl
    says. Names are unique (they are the test ids), and the catalogue keeps its breadth."""
    cases = _cases(API) + _cases(CLI) + _cases(PIPELINES)
    unnamed = [c[0] for c in cases if c[-1] != OK and not c[-2].strip()]
    assert not unnamed, f"refusals without an expected message: {unnamed}"
    names = [c[0] for c in cases]
    assert len(names) == len(set(names)), "duplicate case names"
    broken = list((Path(__file__).parents[1] / "core" / "broken").glob("*.yaml"))
    assert len(cases) >= 40 and len(broken) + len(cases) >= 70, (len(cases), len(broken))
