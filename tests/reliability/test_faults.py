"""Fault tolerance: inject every fault the issue names, then prove the archive complete and
byte-exact against the sandbox's ground truth (``archive_check.check_archive``).

API faults come from the sandbox's ``faults=`` spec. Sink faults are real: database connections
killed from the test with ``KILL`` (MariaDB) / ``pg_terminate_backend`` (PostgreSQL) while the run
goes; an HTTP proxy in front of moto answering 503 and cutting connections; a 256 KiB tmpfs that
fills up under the archive folder (we are root; without ``mount`` the test skips, it never fakes).
Every run is a real ``rcetl run`` subprocess.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from rcetl.sandbox import Sandbox
from tests.servers import ForwardingProxy, moto_server
from tests.services import service_url, unavailable

from .archive_check import assert_no_partial_files, check_archive
from .harness import env_for, open_sink, rcetl_cli, run_until_clean, sqlite_and_folder, write_pipeline

# (case, sandbox faults, connection options, what the client's log must show the fault happened)
API_FAULTS = [
    ("429 storm", "429=0.08", "", "429"),
    ("5xx", "5xx=0.15", "", "5xx"),
    ("dropped mid-download", "drop=0.3", "", "dropped"),
    ("slow responses", "slow=0.04:600", "  timeout: 0.5", "timeout"),  # 600 API s = 1.5 s real
    ("token revoked mid-run", "revoke=@25", "", "401"),
    ("everything at once", "5xx=0.05,drop=0.05,429=0.02,slow=0.01:600,revoke=@60", "  timeout: 0.5", "any"),
]


def _fault_seen(kind: str, sb: Sandbox, log: str) -> bool:
    status = Counter({k: v for k, v in sb.counters()["by_status"].items()})
    if kind == "429":
        return status["429"] > 0
    if kind == "5xx":
        return status["500"] + status["503"] > 0
    if kind == "dropped":
        return "dropped" in log or "ChunkedEncodingError" in log
    if kind == "timeout":
        return "Timeout" in log
    if kind == "401":
        return status["401"] > 0
    return True


@pytest.mark.parametrize("case,faults,options,seen", API_FAULTS, ids=[c[0] for c in API_FAULTS])
def test_api_fault_then_complete_archive(tmp_path: Path, case: str, faults: str, options: str, seen: str) -> None:
    sinks, records, blobs = sqlite_and_folder(tmp_path)
    with Sandbox(seed=11, size="tiny", time_scale=400.0, faults=faults) as sb:
        pipeline = write_pipeline(tmp_path, sb, sinks, connection=f"  max_retries: 8\n{options}")
        env = env_for(sb, tmp_path)
        runs = run_until_clean(pipeline, env, attempts=5)
        log = "\n".join(r.stdout + r.stderr for r in runs)
        assert _fault_seen(seen, sb, log), f"{case}: the fault never happened\n{log[-2000:]}"
        gt = sb.ground_truth()
    check_archive(gt, records(), blobs())
    assert_no_partial_files(tmp_path / "files")


# --- database restarted mid-run ----------------------------------------------------------------


def _killer(kill_once, stop: threading.Event, period: float = 0.05) -> threading.Thread:
    def loop() -> None:
        while not stop.is_set():
            try:
                kill_once()
            except Exception:  # noqa: BLE001 - the server may refuse while busy; try again
                pass
            stop.wait(period)

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    return t


def _run_while(pipeline: Path, env: dict[str, str], kill_once, counter: list[int]) -> subprocess.CompletedProcess:
    """One run with the database's connections killed every 50 ms for its whole length."""
    stop = threading.Event()
    thread = _killer(kill_once, stop)
    try:
        return rcetl_cli(["run", str(pipeline)], env)
    finally:
        stop.set()
        thread.join()


@pytest.mark.integration
@pytest.mark.parametrize("backend", ["mysql", "postgres"])
def test_database_connections_killed_mid_run(tmp_path: Path, backend: str) -> None:
    import sqlalchemy as sa

    base = service_url("MYSQL" if backend == "mysql" else "POSTGRES")
    dbname = f"rel_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as c:
        c.execute(sa.text(f"CREATE DATABASE {dbname}"))
    url = str(sa.engine.make_url(base).set(database=dbname).render_as_string(hide_password=False))
    killed = [0]

    held: list = []

    def kill_once() -> None:
        if not held:
            held.append(admin.connect())
        c = held[0]
        if backend == "mysql":
            ids = c.execute(sa.text("SELECT id FROM information_schema.processlist WHERE db = :d "
                                    "AND id <> CONNECTION_ID()"), {"d": dbname}).scalars().all()
            for i in ids:
                try:
                    c.execute(sa.text(f"KILL {int(i)}"))
                    killed[0] += 1
                except Exception:  # noqa: BLE001 - already gone
                    pass
        else:
            n = c.execute(sa.text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                  "WHERE datname = :d AND pid <> pg_backend_pid()"), {"d": dbname}).scalar()
            killed[0] += int(n or 0)

    try:
        sinks = f"""
  db: {{plugin: {backend}, url: "{url}"}}
  files: {{plugin: filesystem, path: {tmp_path / 'files'}}}
"""
        with Sandbox(seed=12, size="tiny", time_scale=150.0) as sb:
            pipeline = write_pipeline(tmp_path, sb, sinks, executor="{batch_size: 3, downloads: 2}")
            env = env_for(sb, tmp_path)
            first = _run_while(pipeline, env, kill_once, killed)
            for c in held:
                c.close()
            assert killed[0] > 0, f"no connection was killed: the fault never happened\n{first.stdout[-2000:]}{first.stderr[-2000:]}"
            runs = [first] if first.returncode == 0 else run_until_clean(pipeline, env)
            gt = sb.ground_truth()
        check_archive(gt, open_sink(backend, "db", {"url": url}, tmp_path),
                      open_sink("filesystem", "files", {"path": str(tmp_path / "files")}, tmp_path))
        assert runs
    finally:
        with admin.connect() as c:
            if backend == "postgres":
                c.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"),
                          {"d": dbname})
            c.execute(sa.text(f"DROP DATABASE IF EXISTS {dbname}"))
        admin.dispose()


# --- an object store answering 503 and dropping connections ----------------------------------------


class FlakyProxy(ForwardingProxy):
    """A proxy in front of moto: the first ``fail_first`` requests answer 503 SlowDown, then every
    ``every``-th request is either a 503 or a connection closed without an answer."""

    def __init__(self, upstream: str, fail_first: int = 6, every: int = 5) -> None:
        super().__init__(upstream, timeout=30)
        self.fail_first, self.every = fail_first, every
        self.count = 0
        self.faults: Counter[str] = Counter()

    def intercept(self, request: BaseHTTPRequestHandler, body: bytes, headers: dict[str, str]
                  ) -> tuple[bytes, dict[str, str]] | None:
        with self.lock:
            self.count += 1
            n = self.count
        if not (n <= self.fail_first or n % self.every == 0):
            return body, headers
        if n > self.fail_first and n % (2 * self.every) == 0:
            self.faults["drop"] += 1
            request.close_connection = True
            request.connection.shutdown(2)
            return None
        self.faults["503"] += 1
        msg = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
        request.send_response(503)
        request.send_header("Content-Type", "application/xml")
        request.send_header("Content-Length", str(len(msg)))
        request.end_headers()
        request.wfile.write(msg)
        return None


@pytest.mark.integration
def test_object_store_503_and_dropped_connections(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(var, "x")
    with moto_server() as endpoint:
        bucket = f"rel-{uuid.uuid4().hex[:8]}"
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
        proxy = FlakyProxy(endpoint)
        try:
            sinks = f"""
  db: {{plugin: sqlite, url: "sqlite:///{tmp_path / 'archive.db'}"}}
  files: {{plugin: s3, bucket: {bucket}, endpoint_url: "{proxy.url}", region: us-east-1, addressing_style: path, max_attempts: 2}}
"""
            with Sandbox(seed=13, size="tiny", time_scale=300.0) as sb:
                pipeline = write_pipeline(tmp_path, sb, sinks)
                env = env_for(sb, tmp_path, AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x")
                run_until_clean(pipeline, env, attempts=6)
                gt = sb.ground_truth()
        finally:
            proxy.close()
        assert proxy.faults["503"] >= proxy.fail_first and proxy.faults["drop"] > 0, proxy.faults
        check_archive(gt, open_sink("sqlite", "db", {"url": f"sqlite:///{tmp_path / 'archive.db'}"}, tmp_path),
                      open_sink("s3", "files", {"bucket": bucket, "endpoint_url": endpoint, "region": "us-east-1",
                                                "addressing_style": "path"}, tmp_path))


# --- a full disk ----------------------------------------------------------------------------------------


def _mount_tmpfs(where: Path, size: str) -> bool:
    if not shutil.which("mount") or os.geteuid() != 0:
        return False
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
                          capture_output=True)
    return done.returncode == 0


def test_disk_full_on_the_archive_folder(tmp_path: Path) -> None:
    folder = tmp_path / "disk"
    if not _mount_tmpfs(folder, "96k"):
        unavailable("cannot mount a tmpfs here (needs root and mount): the full-disk test needs a real small disk")
    try:
        files = folder / "files"
        sinks = f"""
  db: {{plugin: sqlite, url: "sqlite:///{tmp_path / 'archive.db'}"}}
  files: {{plugin: filesystem, path: {files}}}
"""
        with Sandbox(seed=14, size="tiny", time_scale=300.0) as sb:
            pipeline = write_pipeline(tmp_path, sb, sinks)
            env = env_for(sb, tmp_path)
            full = rcetl_cli(["run", str(pipeline)], env)
            assert full.returncode == 1, full.stdout + full.stderr
            assert "disk full" in (full.stdout + full.stderr), (full.stdout + full.stderr)[-3000:]
            # What did land is whole: no temp file was left behind, no half file under a final name.
            assert_no_partial_files(files)
            subprocess.run(["mount", "-o", "remount,size=16m", str(folder)], check=True)
            run_until_clean(pipeline, env)
            gt = sb.ground_truth()
        check_archive(gt, open_sink("sqlite", "db", {"url": f"sqlite:///{tmp_path / 'archive.db'}"}, tmp_path),
                      open_sink("filesystem", "files", {"path": str(files)}, tmp_path))
        assert_no_partial_files(files)
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


