"""``rcetl worker`` (a Celery worker that runs rcetl's tasks) and ``rcetl workers status``."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import typer

app = typer.Typer(help="Celery workers of a scaled-out rcetl: their health, tasks, queue and budgets.",
                  no_args_is_help=True)

BROKER_HELP = "Celery broker URL (default: $RCETL_BROKER_URL, else RabbitMQ on 127.0.0.1)."
DEFAULT_BROKER = "amqp://guest:guest@127.0.0.1:5672//"


def _broker(value: str | None) -> str:
    return value or os.environ.get("RCETL_BROKER_URL") or DEFAULT_BROKER


def register(root: typer.Typer) -> None:
    root.command("worker")(worker)
    root.add_typer(app, name="workers")


def worker(
    concurrency: int = typer.Option(2, "--concurrency", "-c", min=1, help="Tasks worked on at once by this worker."),
    queue: str = typer.Option(os.environ.get("RCETL_QUEUE", "rcetl"), "--queue", "-Q",
                              help="The queue to take tasks from (the pipeline's executor.queue)."),
    broker: str | None = typer.Option(None, "--broker", help=BROKER_HELP),
    backend: str | None = typer.Option(None, "--backend", help="Result backend (default: $RCETL_RESULT_BACKEND, "
                                          "else the broker's Redis or rpc://); must match the submitting side."),
    pool: str = typer.Option("threads", "--pool", help="threads (default: the work waits on the network), "
                             "prefork (a process per task slot) or solo."),
    hostname: str | None = typer.Option(None, "--hostname", "-n", help="Worker name (default rcetl@HOST-PID)."),
    loglevel: str = typer.Option("INFO", "--loglevel", "-l", help="Celery log level."),
    preload: list[Path] | None = typer.Option(None, "--preload", help="Open this pipeline's engine (sinks, state, "
                                              "connections) before taking tasks, not with the first task of a run "
                                              "(repeatable)."),
) -> None:
    """Start a Celery worker that runs rcetl tasks sent by `rcetl run PIPELINE --executor celery`.

    Each worker process keeps each pipeline file it has seen open, so sinks and API
    connections are opened once. Stop it with Ctrl-C (warm shutdown: running tasks finish)."""
    if pool not in ("threads", "prefork", "solo"):
        raise typer.BadParameter("use threads, prefork or solo", param_hint="--pool")
    from ..executors.celery_app import make_app, preload_pipelines

    files = [_readable(p) for p in preload or []]
    celery_app = make_app(_broker(broker), backend or os.environ.get("RCETL_RESULT_BACKEND") or None, queue)
    if files:
        if pool == "prefork":  # each child opens its own (connections must not cross a fork)
            from celery.signals import worker_process_init

            worker_process_init.connect(lambda **_: preload_pipelines(files), weak=False)
        else:
            preload_pipelines(files)
    name = hostname or f"rcetl@{socket.gethostname()}-{os.getpid()}"
    celery_app.worker_main(["worker", f"--concurrency={concurrency}", f"--queues={queue}", f"--pool={pool}",
                            f"--hostname={name}", f"--loglevel={loglevel}", "--without-gossip", "--without-mingle"])


def _readable(path: Path) -> Path:
    if not path.is_file():
        raise typer.BadParameter(f"{path}: no such pipeline file", param_hint="--preload")
    return path


@app.command("status")
def status(
    broker: str | None = typer.Option(None, "--broker", help=BROKER_HELP),
    queue: str = typer.Option(os.environ.get("RCETL_QUEUE", "rcetl"), "--queue", "-Q", help="The task queue."),
    redis_url: str | None = typer.Option(None, "--redis", help="The Redis of the pipelines' budgets "
                                            "(budgets.url; default: $RCETL_REDIS_URL, else 127.0.0.1:6379/0)."),
    prefix: str = typer.Option("rcetl", "--prefix", help="Budget key prefix in Redis."),
    timeout: float = typer.Option(2.0, "--timeout", help="Seconds to wait for workers to answer."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (for monitoring)."),
) -> None:
    """Which worker holds which task, the queue depth, and budget use per credential."""
    report = collect_status(_broker(broker), queue, redis_url or os.environ.get("RCETL_REDIS_URL")
                            or "redis://127.0.0.1:6379/0", prefix, timeout)
    if as_json:
        print(json.dumps(report, indent=2, default=str))
    else:
        _print_status(report)
    if not report["workers"]:
        raise typer.Exit(1)


def collect_status(broker: str, queue: str, redis_url: str, prefix: str, timeout: float) -> dict[str, Any]:
    from ..executors.celery_app import make_app

    celery_app = make_app(broker, "disabled://", queue)
    report: dict[str, Any] = {"broker": _safe_url(broker), "queue": queue, "workers": {}, "queue_depth": None,
                              "budgets": {}, "names": {}, "problems": []}
    try:
        # ping waits the whole timeout for whoever answers; then ask exactly those, which returns
        # as soon as each has replied
        names = sorted({name for reply in celery_app.control.ping(timeout=timeout) for name in reply})
        inspect = celery_app.control.inspect(destination=names, limit=len(names), timeout=timeout)
        active = (inspect.active() or {}) if names else {}
        reserved = (inspect.reserved() or {}) if names else {}
        stats = (inspect.stats() or {}) if names else {}
        for name in names:
            report["workers"][name] = {
                "concurrency": (stats.get(name) or {}).get("pool", {}).get("max-concurrency"),
                "pid": (stats.get(name) or {}).get("pid"),
                "active": [_describe(t) for t in active.get(name, [])],
                "reserved": [_describe(t) for t in reserved.get(name, [])],
            }
    except Exception as exc:  # noqa: BLE001 - show what can be shown
        report["problems"].append(f"broker: {type(exc).__name__}: {exc}")
    try:
        with celery_app.connection_for_write() as conn:
            ok = conn.default_channel.queue_declare(queue=queue, passive=True)
            report["queue_depth"] = ok.message_count
    except Exception as exc:  # noqa: BLE001 - a queue nobody declared yet is empty
        report["queue_depth"] = 0 if "NOT_FOUND" in str(exc) else None
        if report["queue_depth"] is None:
            report["problems"].append(f"queue depth: {type(exc).__name__}: {exc}")
    try:
        report["budgets"] = budget_use(redis_url, prefix)
        report["names"] = credential_names(redis_url, prefix)
    except Exception as exc:  # noqa: BLE001
        report["problems"].append(f"redis {_safe_url(redis_url)}: {type(exc).__name__}: {exc}")
    celery_app.close()
    return report


def _describe(task: dict[str, Any]) -> dict[str, Any]:
    """A task as `celery inspect` reports it, reduced to what an operator asks: what and since when."""
    args = task.get("args") or []
    message = args[0] if args and isinstance(args[0], dict) else {}
    t = message.get("task") or {}
    label = f"{t.get('stream', '?')}{'[' + t['partition'] + ']' if t.get('partition') else ''}@{t.get('connection', '?')}"
    started = task.get("time_start")
    return {"id": task.get("id"), "task": label, "source": t.get("source"),
            "run_id": (message.get("run_id") or "")[:12],
            "pipeline": (message.get("pipeline") or {}).get("path"),
            "running_for": round(time.time() - started, 1) if isinstance(started, (int, float)) else None}


def budget_use(redis_url: str, prefix: str) -> dict[str, dict[str, Any]]:
    """Read the Redis budget keys (see rcetl.budget.redis): per credential and API group, the
    requests in the current window, the limit learned from headers, and any 429 penalty."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    sec, usec = client.time()
    now = sec + usec / 1e6
    out: dict[str, dict[str, Any]] = {}
    for raw in client.scan_iter(match=f"{prefix}:budget:*:slots", count=500):
        key = _text(raw)
        inner = key[len(f"{prefix}:budget:{{"):-len("}:slots")]
        cred, _, group = inner.rpartition(":")
        base = key[:-len(":slots")]
        meta = {_text(k): _text(v) for k, v in client.hgetall(f"{base}:meta").items()}
        # the window is in Redis once learned from headers; until then each slot expires by itself
        window = float(meta["window"]) if "window" in meta else None
        used = client.zcount(key, now - window, "+inf") if window else client.zcard(key)
        penalty = max(0.0, float(client.get(f"{base}:penalty") or 0) - now)
        out.setdefault(cred, {})[group] = {"used": int(used), "limit": int(meta["limit"]) if "limit" in meta else None,
                                           "window": window, "penalty": round(penalty, 1)}
    return out


def _text(value: bytes | str) -> str:
    """Redis answers bytes unless the client decodes responses (its types allow both)."""
    return value.decode() if isinstance(value, bytes) else value


def credential_names(redis_url: str, prefix: str) -> dict[str, str]:
    """Which connection (pipeline/connection, account) each credential id is, as workers published."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        return {_text(k): _text(v) for k, v in client.hgetall(f"{prefix}:budget-names").items()}
    finally:
        client.close()


def _safe_url(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def _print_status(report: dict[str, Any]) -> None:
    from .output import print_table

    depth = report["queue_depth"]
    print(f"broker {report['broker']}, queue {report['queue']!r}: "
          f"{'?' if depth is None else depth} task(s) waiting; {len(report['workers'])} worker(s) answered")
    rows = []
    for name, w in report["workers"].items():
        tasks = w["active"] or [{"task": "(idle)", "run_id": "", "running_for": None}]
        for i, t in enumerate(tasks):
            rows.append([name if i == 0 else "", str(w["concurrency"] or "") if i == 0 else "", t["task"],
                         t["run_id"], "" if t["running_for"] is None else f"{t['running_for']:.0f}s"])
    print_table("workers", ["worker", "concurrency", "task", "run", "running for"], rows,
                fold=("worker", "task"))
    if report["budgets"]:
        rows = []
        for cred, groups in sorted(report["budgets"].items()):
            parts = [f"{g} {s['used']}/{s['limit'] or '?'}" + (f" penalty {s['penalty']:.0f}s" if s["penalty"] else "")
                     for g, s in sorted(groups.items())]
            rows.append([report.get("names", {}).get(cred, "?"), cred, ", ".join(parts)])
        print_table("budget use per credential (requests in the current window / limit)",
                    ["connection", "credential", "groups"], rows, fold=("connection", "credential"))
    from rich.console import Console

    console = Console()
    for problem in report["problems"]:
        console.print(f"[yellow]warning:[/yellow] {problem}", highlight=False)
