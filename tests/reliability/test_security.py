"""Security: secrets never leak, files are owner-only, TLS is on unless loudly turned off, API names
stay inside the archive, SQL identifiers are checked, and a pipeline file cannot run code.

Every run is a real ``rcetl`` subprocess; ``RCETL_HOME`` points into ``tmp_path`` so everything a run
writes (state, spool, archive, reports, coordination files, token vault) is there to be searched.
"""

from __future__ import annotations

import os
import stat
import subprocess
import uuid
from pathlib import Path

import pytest

import rcetl
from rcetl.sandbox import Sandbox

from ..services import require_module, service_url
from .harness import RCETL, env_for, rcetl_cli, write_pipeline

DB_PASSWORD = "Db-Pa55w0rd-7e1c9a"


def _everything_written(root: Path) -> list[tuple[Path, bytes]]:
    return [(p, p.read_bytes()) for p in root.rglob("*") if p.is_file()]


def _leaks(needles: dict[str, str], texts: list[tuple[str, bytes]]) -> list[str]:
    found = []
    for what, value in needles.items():
        for where, data in texts:
            if value.encode() in data:
                found.append(f"{what} in {where}")
    return found


@pytest.mark.integration
def test_secrets_never_appear_anywhere_a_run_writes(tmp_path: Path) -> None:
    """Wrong secret, then wrong JWT, then the right credentials, with -v and JSON logs; the record
    sink is PostgreSQL reached with a password (trust auth accepts and ignores it)."""
    base = service_url("POSTGRES")
    from sqlalchemy.engine import make_url

    url = make_url(base).set(password="${DB_PASSWORD}").render_as_string(hide_password=False)
    prefix = f"s{uuid.uuid4().hex[:8]}_"
    sinks = f"""
  db: {{plugin: postgres, url: "{url}", table_prefix: {prefix}}}
  files: {{plugin: filesystem, path: {tmp_path / 'files'}}}
"""
    with Sandbox(seed=21, size="tiny", time_scale=400.0) as sb:
        pipeline = write_pipeline(tmp_path, sb, sinks, extra=f"observers:\n  report: {{path: {tmp_path / 'reports'}}}")
        good = env_for(sb, tmp_path, DB_PASSWORD=DB_PASSWORD)
        wrong_secret = "wrong-client-secret-0a1b2c3d"
        wrong_jwt = sb.jwt[:-12] + "AAAAAAAAAAAA"
        runs = [
            rcetl_cli(["-v", "--log-format", "json", "run", str(pipeline)], {**good, "RC_CLIENT_SECRET": wrong_secret}),
            rcetl_cli(["-v", "--log-format", "json", "run", str(pipeline)], {**good, "RC_JWT": wrong_jwt}),
            rcetl_cli(["-v", "--log-format", "json", "run", str(pipeline)], good),
            rcetl_cli(["-v", "--log-format", "json", "state", "show", str(pipeline)], good),
            rcetl_cli(["-v", "--log-format", "json", "verify", str(pipeline)], good),
        ]
        assert runs[0].returncode == 1 and runs[1].returncode == 1, runs[0].stderr[-2000:] + runs[1].stderr[-2000:]
        assert runs[2].returncode == 0, runs[2].stdout[-2000:] + runs[2].stderr[-2000:]
        assert runs[4].returncode == 0, runs[4].stdout[-2000:] + runs[4].stderr[-2000:]
        assert '"level"' in runs[2].stderr or '"levelname"' in runs[2].stderr or runs[2].stderr.startswith("{")
        needles = {"client secret": sb.client_secret, "JWT": sb.jwt, "wrong client secret": wrong_secret,
                   "wrong JWT": wrong_jwt, "DB password": DB_PASSWORD}
    texts: list[tuple[str, bytes]] = []
    for i, r in enumerate(runs):
        texts += [(f"run {i} stdout", r.stdout.encode()), (f"run {i} stderr", r.stderr.encode())]
    texts += [(str(p), data) for p, data in _everything_written(tmp_path) if p != pipeline]
    assert any("rcetl-home" in w for w, _ in texts) and any("state.db" in w for w, _ in texts)
    assert any(str(tmp_path / "reports") in w for w, _ in texts), "the report observer wrote nothing"
    leaks = _leaks(needles, texts)
    assert not leaks, leaks


def _run_with_umask_0(tmp_path: Path) -> None:
    sinks = f"""
  db: {{plugin: sqlite, url: "sqlite:///{tmp_path / 'archive.db'}"}}
  files: {{plugin: filesystem, path: {tmp_path / 'files'}}}
"""
    with Sandbox(seed=22, size="tiny", time_scale=400.0) as sb:
        pipeline = write_pipeline(tmp_path, sb, sinks, extra=f"spool_dir: {tmp_path / 'spool'}")
        env = env_for(sb, tmp_path)
        (tmp_path / "rcetl-home").rmdir()  # made by rcetl itself, not by the test
        done = subprocess.run([*RCETL, "run", str(pipeline)], env=env, capture_output=True,
                              text=True, timeout=240, preexec_fn=lambda: os.umask(0))
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def _open_to_others(tmp_path: Path, roots: list[Path]) -> tuple[list[Path], list[str]]:
    checked, open_to_others = [], []
    for root in roots:
        for p in [root, *root.rglob("*")] if root.is_dir() else [root]:
            mode = stat.S_IMODE(p.stat().st_mode)
            if mode & 0o077:
                open_to_others.append(f"{p.relative_to(tmp_path)} {oct(mode)}")
            checked.append(p)
    return checked, open_to_others


def test_state_spool_and_coordination_files_are_owner_only_even_with_umask_0(tmp_path: Path) -> None:
    _run_with_umask_0(tmp_path)
    roots = [*tmp_path.glob("state.db*"), tmp_path / "spool", tmp_path / "rcetl-home" / "coordination"]
    checked, open_to_others = _open_to_others(tmp_path, roots)
    assert not open_to_others, open_to_others
    assert len(checked) >= 4 and any(p.suffix == ".lock" or p.name.endswith(".json") for p in checked), checked
    files = [p for p in (tmp_path / "files").rglob("*") if p.is_file()]
    assert files and all(stat.S_IMODE(p.stat().st_mode) & 0o077 == 0 for p in files)
    assert stat.S_IMODE((tmp_path / "files").stat().st_mode) & 0o077 == 0


def test_every_folder_a_run_creates_is_owner_only(tmp_path: Path) -> None:
    _run_with_umask_0(tmp_path)
    _, open_to_others = _open_to_others(tmp_path, [tmp_path / "rcetl-home", tmp_path / "files"])
    assert not open_to_others, open_to_others


def test_tls_verification_is_on_by_default_and_off_only_loudly(tmp_path: Path) -> None:
    from rcetl.plugins.sources.ringcentral.config import RingCentralConfig

    assert RingCentralConfig(server="https://x.example", client_id="a", client_secret="bbbb", jwt="cccc").verify_tls
    sinks = f"""
  db: {{plugin: sqlite, url: "sqlite:///{tmp_path / 'archive.db'}"}}
"""
    with Sandbox(seed=23, size="tiny", time_scale=400.0) as sb:
        pipeline = write_pipeline(tmp_path, sb, sinks, connection="  verify_tls: false",
                                  sources="\n  call-log: {view: Simple, window: 30d}")
        done = rcetl_cli(["run", str(pipeline)], env_for(sb, tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    warning = [line for line in done.stderr.splitlines() if "TLS VERIFICATION IS OFF" in line]
    assert warning and "WARNING" in warning[0], done.stderr[-2000:]


def test_an_untrusted_certificate_is_refused(tmp_path: Path) -> None:
    trustme = require_module("trustme")
    import ssl
    import threading

    from werkzeug.serving import make_server
    from werkzeug.wrappers import Response

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    seen: list[str] = []

    def app(environ, start_response):  # noqa: ANN001, ANN202
        seen.append(environ.get("HTTP_AUTHORIZATION", "") + environ.get("wsgi.input").read().decode())
        return Response('{"access_token": "t"}', content_type="application/json")(environ, start_response)

    srv = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=ctx)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        class Server:
            server = f"https://127.0.0.1:{srv.server_port}"
            time_scale = 100.0
            client_id, client_secret, jwt = "cid", "untrusted-secret-123", "untrusted.jwt.456"

        pipeline = write_pipeline(tmp_path, Server, f"""
  db: {{plugin: sqlite, url: "sqlite:///{tmp_path / 'archive.db'}"}}
""", connection="  max_retries: 0", sources="\n  call-log: {view: Simple, window: 30d}")
        done = rcetl_cli(["run", str(pipeline)], env_for(Server, tmp_path))
    finally:
        srv.shutdown()
    assert done.returncode == 1
    assert "SSLError" in done.stdout + done.stderr or "CERTIFICATE_VERIFY_FAILED" in done.stdout + done.stderr
    assert not seen, "credentials were sent over an unverified connection"


@pytest.mark.parametrize("name", ["../../../../etc/passwd", "..\\..\\windows\\win.ini", "/abs/olute", "a/../../b",
                                  "esc\x1b[31m\r\n\t.txt", "..", ".", "nul\x00byte", "é" * 300])
def test_api_names_never_escape_the_archive_root(tmp_path: Path, name: str) -> None:
    from .harness import open_sink

    root = tmp_path / "files"
    sink = open_sink("filesystem", "files", {"path": str(root), "key": "{kind}/{name}/{id}-{name}.{ext}"}, tmp_path)
    spooled = tmp_path / "blob.bin"
    spooled.write_bytes(b"payload")
    import hashlib

    ref = rcetl.BlobRef(blob_id="attachment-1", url="http://x/1", kind="attachment", content_type="text/plain",
                        variables={"id": 1, "name": name, "kind": "attachment", "ext": "txt"})
    blob = rcetl.SpooledBlob(ref=ref, path=str(spooled), size=7, sha256=hashlib.sha256(b"payload").hexdigest(),
                             content_type="text/plain", record=None)
    stored = sink.store(blob)
    path = Path(stored.location).resolve()
    assert path.is_relative_to(root.resolve()), path
    rel = path.relative_to(root.resolve())
    assert all(part not in ("..", ".") and not any(ord(c) < 32 for c in part) for part in rel.parts), rel
    assert path.read_bytes() == b"payload"
    assert [p for p in tmp_path.rglob("*") if p.is_file() and not p.is_relative_to(root)] == [spooled]


@pytest.mark.parametrize("prefix", ["x; DROP TABLE calls;--", "rc_`x`", "a b", "rc\"_", "1rc_", "rc_" + "x" * 80, ""])
def test_a_hostile_table_prefix_is_refused(prefix: str) -> None:
    from pydantic import ValidationError

    from rcetl.registry import get_plugin_manager

    config_model = get_plugin_manager().sinks()["sqlite"].load().config_model
    with pytest.raises(ValidationError) as info:
        config_model.model_validate({"url": "sqlite:///x.db", "table_prefix": prefix})
    assert "table_prefix" in str(info.value)


def test_a_pipeline_file_cannot_run_code(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    cases = [
        f"pipeline: !!python/object/apply:os.system ['touch {marker}']",
        f"pipeline: x\nspool_dir: !!python/object/new:subprocess.Popen [['touch', '{marker}']]",
        f"pipeline: x\nspool_dir: ${{NOPE:-$(touch {marker})}}",
        f"pipeline: x\nspool_dir: \"`touch {marker}`\"",
        f"pipeline: x\nspool_dir: ${{$(touch {marker})}}",
        "pipeline: !!python/name:os.system",
    ]
    for i, text in enumerate(cases):
        path = tmp_path / f"p{i}.yaml"
        path.write_text(text + "\nsources: {}\nsinks: {}\n")
        done = rcetl_cli(["validate", str(path)], {**os.environ, "RCETL_HOME": str(tmp_path)}, timeout=60)
        assert done.returncode == 2, (text, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr, done.stderr
        assert not marker.exists(), f"{text!r} executed a command"
