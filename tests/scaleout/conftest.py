"""Real brokers, real worker processes: fixtures of the scale-out tests.

Every test gets its own queue, pipeline name, table prefix and account names, so tests (and
leftovers of a crashed run) never take each other's tasks or rows. Workers are subprocesses of
``python -m tests.scaleout.cli worker`` (the ``rcetl worker`` command with the test source
registered); the ``workers`` fixture always stops them, killing what does not stop in time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.services import service_url

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 40.0


@dataclass
class Services:
    amqp: str
    redis: str
    postgres: str


@pytest.fixture(scope="session")
def services() -> Services:
    return Services(service_url("AMQP"), service_url("REDIS"), service_url("POSTGRES"))


@dataclass
class Scenario:
    """Names unique to one test, and the pipeline file built from them."""

    tmp: Path
    services: Services
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    @property
    def queue(self) -> str:
        return f"rcetl-test-{self.tag}"

    @property
    def pipeline_name(self) -> str:
        return f"scaleout-{self.tag}"

    @property
    def table_prefix(self) -> str:
        return f"t{self.tag}_"

    @property
    def files(self) -> Path:
        return self.tmp / "files"

    def account(self, name: str) -> str:
        return f"{name}-{self.tag}"

    def write_pipeline(self, accounts: list[str], *, count: int = 20, partitions: int = 1, page: int = 5,
                       delay: float = 0.0, heavy_limit: int = 1000, window: float = 1.0,
                       send_log: bool = False, blob_size: int = 2000) -> Path:
        s = self.services
        conns = "\n".join(
            f"  {a}: {{plugin: ledger, account: {self.account(a)}, heavy_limit: {heavy_limit}, window: {window}"
            + (f", send_log: '{s.redis}'" if send_log else "") + "}"
            for a in accounts)
        text = f"""\
pipeline: {self.pipeline_name}
connections:
{conns}
state: {s.postgres}
budgets: {{backend: redis, url: '{s.redis}'}}
executor: {{broker: '{s.amqp}', backend: '{s.redis}', queue: {self.queue}, workers: 4, batch_size: 5}}
sources:
  ledger: {{count: {count}, partitions: {partitions}, page: {page}, delay: {delay}, blob_size: {blob_size}}}
sinks:
  db: {{plugin: postgres, url: '{s.postgres}', table_prefix: {self.table_prefix}}}
  files: {{plugin: filesystem, path: {self.files}, key: '{{account}}/{{extension}}/{{id}}.bin', fsync: false}}
"""
        path = self.tmp / "pipeline.yaml"
        path.write_text(text)
        return path


@pytest.fixture
def scenario(tmp_path: Path, services: Services) -> Any:
    sc = Scenario(tmp_path, services)
    yield sc
    _cleanup(sc)


def _cleanup(sc: Scenario) -> None:
    import redis
    import sqlalchemy as sa

    r = redis.Redis.from_url(sc.services.redis)
    keys = [k for pattern in (f"*{sc.tag}*",) for k in r.scan_iter(match=pattern, count=500)]
    if keys:
        r.delete(*keys)
    r.close()
    engine = sa.create_engine(sc.services.postgres)
    with engine.begin() as conn:
        tables = conn.execute(sa.text("select tablename from pg_tables where tablename like :p"),
                              {"p": f"{sc.table_prefix}%"}).scalars().all()
        for t in tables:
            conn.execute(sa.text(f'drop table if exists "{t}" cascade'))
    engine.dispose()


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, **(extra or {})}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("RCETL_BROKER_URL", None)
    env["COLUMNS"] = "200"  # rich wraps tables at 80 columns otherwise
    return env


def run_cli(*args: str, timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The `rcetl` command (with the test plugins) in a subprocess."""
    return subprocess.run([sys.executable, "-m", "tests.scaleout.cli", *args], cwd=ROOT, env=cli_env(env),
                          capture_output=True, text=True, timeout=timeout)


def run_json(pipeline: Path, *extra: str, timeout: float = 120, env: dict[str, str] | None = None) -> dict[str, Any]:
    proc = run_cli("run", str(pipeline), "--json", *extra, timeout=timeout, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert lines, f"no summary (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr[-4000:]}"
    return json.loads(lines[-1])


def sends(sc: Scenario, account: str) -> list[tuple[float, int]]:
    """(Redis time, worker pid) of every budget slot the test source took for ``account``."""
    import redis

    from tests.scaleout.ledger import SEND_LOG_KEY

    r = redis.Redis.from_url(sc.services.redis)
    try:
        raw = r.lrange(SEND_LOG_KEY.format(account=sc.account(account)), 0, -1)
    finally:
        r.close()
    out = []
    for item in raw:
        t, pid = item.decode().split()
        out.append((float(t), int(pid)))
    return sorted(out)


class Workers:
    """Worker subprocesses on one queue; stopped (or killed) by the fixture whatever happens."""

    def __init__(self, sc: Scenario) -> None:
        self.sc = sc
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, n: int = 2, concurrency: int = 2, pool: str = "threads",
              env: dict[str, str] | None = None, preload: Path | None = None) -> list[str]:
        names = []
        for _ in range(n):
            name = f"w{len(self.procs) + 1}-{self.sc.tag}@test"
            log = open(self.sc.tmp / f"{name.split('@')[0]}.log", "wb")
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.scaleout.cli", "worker", "-c", str(concurrency), "--pool", pool,
                 "--queue", self.sc.queue, "--broker", self.sc.services.amqp, "--backend", self.sc.services.redis,
                 "--hostname", name, "--loglevel", "INFO", *(["--preload", str(preload)] if preload else [])],
                cwd=ROOT, env=cli_env(env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            log.close()
            self.procs[name] = proc
            names.append(name)
        self.wait_ready(names)
        return names

    def wait_ready(self, names: list[str]) -> None:
        from rcetl.executors.celery_app import make_app

        app = make_app(self.sc.services.amqp, "disabled://", self.sc.queue)
        deadline = time.monotonic() + READY_TIMEOUT
        try:
            while time.monotonic() < deadline:
                for name in names:
                    if self.procs[name].poll() is not None:
                        raise AssertionError(f"worker {name} exited {self.procs[name].returncode}:\n{self.log(name)}")
                answered = {k for r in app.control.ping(destination=names, timeout=0.5) for k in r}
                if answered >= set(names):
                    return
            raise AssertionError(f"workers {names} not ready in {READY_TIMEOUT}s:\n"
                                 + "\n".join(self.log(n) for n in names))
        finally:
            app.close()

    def log(self, name: str) -> str:
        path = self.sc.tmp / f"{name.split('@')[0]}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def pid(self, name: str) -> int:
        return self.procs[name].pid

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


@pytest.fixture
def workers(scenario: Scenario) -> Any:
    w = Workers(scenario)
    yield w
    w.stop_all()


def start_run(pipeline: Path, *extra: str) -> subprocess.Popen[str]:
    """`rcetl run PIPELINE --json ...` in the background (the test watches the workers meanwhile)."""
    return subprocess.Popen([sys.executable, "-m", "tests.scaleout.cli", "run", str(pipeline), "--json", *extra],
                            cwd=ROOT, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def finish_run(proc: subprocess.Popen[str], timeout: float = 120) -> dict[str, Any]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=10)
        raise AssertionError(f"run did not finish in {timeout}s:\n{err[-4000:]}") from None
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    assert lines, f"no summary (exit {proc.returncode}):\n{out}\n{err[-4000:]}"
    return json.loads(lines[-1])


def wait_for(predicate: Any, timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def background() -> Any:
    """Background runs started by a test; killed at the end if still running."""
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
