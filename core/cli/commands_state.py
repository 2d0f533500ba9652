"""``rcetl state``: checkpoints, run history and the failed-item queue of a pipeline."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import PIPELINE_ARG, load

app = typer.Typer(help="Show or reset a pipeline's checkpoints, run history and failed items.",
                  no_args_is_help=True)


@app.command("show")
def show(pipeline_file: Path = PIPELINE_ARG,
         json_output: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Checkpoints per stream and partition, the last runs, and items waiting to be retried."""
    import json
    from datetime import datetime, timezone

    from ..engine.opened import state_exists
    from ..state import StateStore
    from .output import print_table

    pipeline, _ = load(pipeline_file)
    if not state_exists(pipeline.state_url):  # never ran: say so rather than create an empty database
        if json_output:
            print(json.dumps({"checkpoints": [], "runs": [], "failed": []}))
        else:
            print(f"pipeline {pipeline.name!r} has not run yet: no checkpoints, runs or failed items")
        return
    store = StateStore(pipeline.state_url)
    checkpoints = store.checkpoints(pipeline.name)
    runs = store.runs(pipeline.name, limit=10)
    failed = store.failed(pipeline.name)
    if json_output:
        print(json.dumps({
            "checkpoints": [{"source": c.source, "stream": c.stream, "partition": c.partition, "value": c.value,
                             "updated_at": str(c.updated_at)} for c in checkpoints],
            "runs": [{"run_id": r.run_id, "status": r.status, "started_at": str(r.started_at),
                      "finished_at": str(r.finished_at)} for r in runs],
            "failed": [{"stream": f.stream, "account": f.account, "key": f.key, "error": f.error,
                        "attempts": f.attempts, "next_attempt_at": str(f.next_attempt_at)} for f in failed],
        }, indent=2, default=str))
        return

    def when(ts: object) -> str:
        if isinstance(ts, (int, float)):
            return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        return str(ts or "")

    print_table(f"checkpoints of {pipeline.name}", ["source", "stream", "partition", "position", "updated"],
                [[c.source, c.stream, c.partition or "-", json.dumps(c.value, default=str), when(c.updated_at)]
                 for c in checkpoints], fold=("source", "stream", "partition", "position"))
    print_table("recent runs", ["run", "status", "started", "finished"],
                [[run.run_id, run.status or "running", when(run.started_at), when(run.finished_at)] for run in runs],
                fold=("run",))
    print_table(f"failed items ({len(failed)})", ["stream", "key", "attempts", "next attempt", "error"],
                [[item.stream, str(item.key), str(item.attempts), when(item.next_attempt_at), item.error]
                 for item in failed[:50]], fold=("stream", "key"))


@app.command("reset")
def reset(pipeline_file: Path = PIPELINE_ARG,
          stream: str | None = typer.Option(None, "--stream", "-s", help="Only this stream's checkpoints."),
          yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")) -> None:
    """Forget checkpoints so the next run re-reads from the start (idempotent: no duplicates)."""
    from ..engine.opened import state_exists
    from ..state import StateStore

    pipeline, _ = load(pipeline_file)
    what = f"stream {stream!r}" if stream else "every stream"
    if not state_exists(pipeline.state_url):
        print(f"pipeline {pipeline.name!r} has not run yet: nothing to reset")
        return
    if not yes and not typer.confirm(f"Reset the checkpoints of {what} in pipeline {pipeline.name!r}?"):
        raise typer.Exit(1)
    n = StateStore(pipeline.state_url).reset(pipeline.name, stream)
    print(f"reset {n} checkpoint(s) of {what}")
