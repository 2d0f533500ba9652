"""What every benchmark shares: the machine, figures with targets, a sandbox whose rate limiter
keeps a request log, pipeline files pointing at it, and ``rcetl run`` as a measured subprocess.

A figure is a ratio measured inside one run (rcetl against a baseline, or against the API's limit),
never an absolute time compared across runs: machines and loads differ, ratios travel.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: Where `make bench` (--full) keeps its results: tracked, the record of a full run.
RESULTS = ROOT / "bench" / "results"


def results_dir(quick: bool) -> Path:
    """Where a run writes its results: tracked files only for a full run (`make bench`); a quick
    run (CI, a developer's check) writes to ``RCETL_BENCH_RESULTS`` or the untracked
    ``bench/results/tmp/``, so running the guard never changes the repository."""
    if not quick:
        return RESULTS
    return Path(os.environ.get("RCETL_BENCH_RESULTS") or RESULTS / "tmp")
BIN = Path(sys.executable).parent
RCETL = str(BIN / "rcetl")


# --- the machine ------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    import psutil

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "cpu": cpu,
    }


# --- figures ----------------------------------------------------------------------------------


@dataclass
class Figure:
    """One measured figure and its target. ``op`` is ">=" or "<="; ``margin`` is the slack the quick
    run allows for noise before it fails CI (a ratio, in the figure's own unit)."""

    bench: str
    name: str
    value: float | None
    target: float | None = None
    op: str = ">="
    unit: str = ""
    margin: float = 0.0
    note: str = ""
    gate: bool = True  # False: reported for information, never fails a run
    floor: float | None = None  # regression guard: the level reached so far (bench/run.py FLOORS)

    @property
    def met(self) -> bool | None:
        if self.value is None or self.target is None:
            return None
        return self.value >= self.target if self.op == ">=" else self.value <= self.target

    def _beyond(self, bar: float | None) -> bool:
        if not self.gate or self.value is None or bar is None:
            return False
        return self.value < bar - self.margin if self.op == ">=" else self.value > bar + self.margin

    @property
    def clearly_missed(self) -> bool:
        """Misses its target by more than the noise margin: a failure of the target."""
        return self._beyond(self.target)

    @property
    def regressed(self) -> bool:
        """Worse than the level reached so far (its floor) by more than the noise margin."""
        return self._beyond(self.floor)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["met"] = self.met
        return d


def fmt(v: float | None) -> str:
    if v is None:
        return "—"
    if isinstance(v, int) or (abs(v) >= 100 and float(v).is_integer()):
        return f"{int(v):,}"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}" if abs(v) < 1 else f"{v:.2f}"


# --- a sandbox that logs every metered request --------------------------------------------------


class RequestLog:
    """Wraps the sandbox's rate limiter: ``(real monotonic time, user, group, allowed)`` per metered
    request, the user being the account (its ``str``).

    Only the benchmark process touches the sandbox object; rcetl sees a plain HTTP server."""

    def __init__(self, sandbox: Any) -> None:
        self.entries: list[tuple[float, str, str, bool]] = []
        self._lock = threading.Lock()
        limiter = sandbox.app.limiter
        inner = limiter.hit

        def hit(user: Any, group: str) -> Any:
            verdict = inner(user, group)
            with self._lock:
                self.entries.append((time.monotonic(), str(user), group, verdict.allowed))
            return verdict

        limiter.hit = hit

    def times(self, group: str) -> list[float]:
        with self._lock:
            return [t for t, _, g, _ in self.entries if g == group]

    def refused(self, group: str | None = None) -> int:
        with self._lock:
            return sum(1 for _, _, g, ok in self.entries if not ok and (group is None or g == group))

    def mark(self) -> int:
        """Where the log stands now, to read what came after with :meth:`since`."""
        with self._lock:
            return len(self.entries)

    def since(self, mark: int) -> list[tuple[float, str, str, bool]]:
        with self._lock:
            return self.entries[mark:]


#: For "no rate limits" runs: the sandbox enforces nothing (``limits=False``) and its headers report
#: this plan. rcetl learns its budget from the headers (a pipeline's own ``limits`` may only lower
#: them), so with the standard plan's headers it would still pace itself at 10 Heavy a minute.
UNLIMITED = {"plan": {"Heavy": 10_000_000, "Medium": 10_000_000, "Light": 10_000_000, "Auth": 10_000_000},
             "limits": False}


def sandbox_env(sb: Any, account: int = 0) -> dict[str, str]:
    acct = sb.accounts[account]
    return {"RC_SERVER": sb.server, "RC_MEDIA": sb.media_server, "RC_CLIENT_ID": acct["client_id"],
            "RC_CLIENT_SECRET": acct["client_secret"], "RC_JWT": acct["jwt"]}


def write_pipeline(workdir: Path, *, time_scale: float, sources: dict[str, Any], sinks: dict[str, Any],
                   executor: dict[str, Any] | None = None, name: str = "bench") -> Path:
    """A pipeline file reaching the sandbox through ${RC_*} variables (never secrets in the file)."""
    workdir.mkdir(parents=True, exist_ok=True)
    doc = {
        "pipeline": name,
        "connections": {"rc": {"plugin": "ringcentral", "server": "${RC_SERVER}", "media_server": "${RC_MEDIA}",
                               "client_id": "${RC_CLIENT_ID}", "client_secret": "${RC_CLIENT_SECRET}",
                               "jwt": "${RC_JWT}", "time_scale": time_scale}},
        "state": "state.db",
        "sources": sources,
        "sinks": sinks,
    }
    if executor:
        doc["executor"] = executor
    path = workdir / "pipeline.yaml"
    path.write_text(json.dumps(doc, indent=2))  # JSON is YAML
    return path


# --- rcetl run as a measured subprocess --------------------------------------------------------


@dataclass
class Measured:
    rc: int
    wall: float
    peak_rss: int  # bytes, the rcetl process (and any child)
    rss_samples: list[tuple[float, int]] = field(default_factory=list)
    stdout: str = ""
    stderr: str = ""
    summary: dict[str, Any] | None = None
    #: CPU seconds the process (and the children it waited for) spent in user space and in the
    #: kernel, from wait4(2); None where the platform has no wait4.
    user_s: float | None = None
    sys_s: float | None = None


def _tree_rss(proc: Any) -> int:
    import psutil

    total = 0
    try:
        total += proc.memory_info().rss
        for child in proc.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                pass
    except psutil.Error:
        pass
    return total


_compiled = False


def compile_rcetl() -> None:
    """Compile rcetl's own modules to bytecode once, as an installed rcetl has them (pip compiles
    them; an editable install does not): in a PYTHONDONTWRITEBYTECODE=1 shell every timed `rcetl run`
    would otherwise compile them again (~0.4 s of CPU a run, measured on an empty run), a fixed
    cost users never pay. The hand-written script's modules come compiled from site-packages."""
    global _compiled
    if not _compiled:
        import compileall

        for folder in ("core", "plugins", "sandbox"):
            compileall.compile_dir(str(ROOT / folder), quiet=2)
        _compiled = True


def measure(cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
            interval: float = 0.02, timeout: float = 900) -> Measured:
    """Run ``cmd``, sampling its resident set (with children) every ``interval`` seconds."""
    import psutil

    compile_rcetl()

    full_env = {**os.environ, **(env or {})}
    full_env.setdefault("PYTHONUNBUFFERED", "1")
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=full_env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ps = psutil.Process(proc.pid)
    samples: list[tuple[float, int]] = []
    out: dict[str, str] = {}

    def drain(name: str, stream: Any) -> None:
        out[name] = stream.read()

    readers = [threading.Thread(target=drain, args=(n, s), daemon=True)
               for n, s in (("stdout", proc.stdout), ("stderr", proc.stderr))]
    for r in readers:
        r.start()
    while True:
        exited, usage = _reap(proc)
        if exited:
            break
        rss = _tree_rss(ps)
        if rss:
            samples.append((time.perf_counter() - start, rss))
        if time.perf_counter() - start > timeout:
            proc.kill()
            _, usage = _reap(proc, block=True)
            break
        time.sleep(interval)
    wall = time.perf_counter() - start
    for r in readers:
        r.join()
    m = Measured(proc.returncode, wall, max((s for _, s in samples), default=0), samples,
                 out.get("stdout", ""), out.get("stderr", ""),
                 user_s=usage.ru_utime if usage else None, sys_s=usage.ru_stime if usage else None)
    text = m.stdout.strip()
    if text.startswith("{") or "\n{" in text:
        try:
            m.summary = json.loads(text[text.index("{"):])
        except ValueError:
            m.summary = None
    return m


def _reap(proc: subprocess.Popen[str], block: bool = False) -> tuple[bool, Any]:
    """Whether the child has exited (its exit code then set on ``proc``) and its resource usage
    (None where wait4(2) is missing). Popen's own ``poll()`` reaps the child with waitpid and drops
    its usage, which is why it is not used here."""
    if not hasattr(os, "wait4"):
        code = proc.wait() if block else proc.poll()
        return code is not None, None
    pid, status, usage = os.wait4(proc.pid, 0 if block else os.WNOHANG)
    if pid == 0:
        return False, None
    proc.returncode = os.waitstatus_to_exitcode(status)
    return True, usage


def rcetl_run(pipeline: Path, env: dict[str, str], **kw: Any) -> Measured:
    m = measure([RCETL, "run", str(pipeline), "--json"], env=env, cwd=pipeline.parent, **kw)
    if m.rc not in (0,) or m.summary is None:
        tail = (m.stderr or m.stdout)[-2000:]
        raise RuntimeError(f"rcetl run {pipeline} exited {m.rc}:\n{tail}")
    return m


def streams_count(summary: dict[str, Any], stream: str, what: str = "records") -> int:
    return int((summary.get("streams") or {}).get(stream, {}).get(what, 0))


def mb(n: float) -> float:
    return n / 2**20


def cli(stem: str, doc: str, run: Any) -> None:
    """The command line of one benchmark run alone: ``--quick``, print its figures, write its JSON."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (CI)")
    args = parser.parse_args()
    figures, raw = run(args.quick)
    for f in figures:
        print(f"{f.name}: {fmt(f.value)} {f.unit} (target {f.op} {fmt(f.target)}) {f.note}")
    folder = results_dir(args.quick)
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{stem}{'-quick' if args.quick else ''}.json"
    out.write_text(json.dumps({"figures": [f.to_json() for f in figures], "raw": raw}, indent=2, default=str) + "\n")
    print(f"written {out}")
