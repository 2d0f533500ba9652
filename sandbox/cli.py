"""``rcetl sandbox serve|export`` (also ``python -m rcetl.sandbox``)."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import typer

app = typer.Typer(name="sandbox", help="A local RingCentral API simulator (demo, tests, benchmarks).", no_args_is_help=True)

DEFAULT_PORT = 18080


def _data_options(seed: int, size: str, anchor: str | None, accounts: int, calls: int | None,
                  recordings: int | None, messages: int | None, recording_bytes: int | None,
                  data: Path | None) -> dict[str, Any]:
    return dict(seed=seed, size=size, anchor=anchor, accounts=accounts, calls=calls, recordings=recordings,
                messages=messages, recording_bytes=recording_bytes, data=str(data) if data else None)


def _sandbox(**options: Any):  # noqa: ANN202 - a Sandbox (imported lazily: --help stays fast)
    """The sandbox the options describe; a bad option or --data file is one message and exit 2."""
    from .server import Sandbox

    try:
        return Sandbox(**options)
    except ValueError as e:  # options.py and datafile.py say what is wrong and where
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None


SEED = typer.Option(1, help="Same seed (and anchor), same data, byte for byte.")
SIZE = typer.Option("small", help="tiny | small | medium | large")
ANCHOR = typer.Option(None, help="Data timestamps end here (ISO 8601); default: start of the current UTC day.")
ACCOUNTS = typer.Option(1, help="Serve N independent accounts, each with its own JWT and rate budget.")
CALLS = typer.Option(None, help="Exact number of call-log records per account.")
RECORDINGS = typer.Option(None, help="Exact number of recordings per account.")
MESSAGES = typer.Option(None, help="Exact number of messages per account.")
RECORDING_BYTES = typer.Option(None, help="Make every recording a WAV of exactly this many bytes (streamed).")
DATA = typer.Option(None, help="Serve exactly the records in this JSON file (see docs/sandbox.md).")


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(DEFAULT_PORT, help="Platform port (0: any free port)."),
    media_port: int | None = typer.Option(None, help="Media port; default port+1 (or any free port when port is 0)."),
    seed: int = SEED, size: str = SIZE, anchor: str | None = ANCHOR, accounts: int = ACCOUNTS,
    calls: int | None = CALLS, recordings: int | None = RECORDINGS, messages: int | None = MESSAGES,
    recording_bytes: int | None = RECORDING_BYTES, data: Path | None = DATA,
    time_scale: float = typer.Option(1.0, help="Run rate windows, penalties and token lifetimes F times faster."),
    faults: str | None = typer.Option(None, help="e.g. '5xx=0.05,drop=0.05,429=0.02,slow=0.01:2,revoke=@50'."),
    no_limits: bool = typer.Option(False, "--no-limits",
                                   help="Disable rate limits; headers report 1000000000 per group unless --limits says otherwise."),
    limits: str | None = typer.Option(None, "--limits",
                                      help="Plan limits per group and 60 s window, e.g. 'heavy=5,medium=40' (others standard)."),
    no_rate_headers: bool = typer.Option(False, "--no-rate-headers",
                                         help="Enforce the limits but leave out the X-Rate-Limit-* headers."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON line with the connection details once ready."),
) -> None:
    """Serve the simulated RingCentral API until interrupted."""
    if media_port is None:
        media_port = port + 1 if port else 0
    sb = _sandbox(time_scale=time_scale, faults=faults, limits=not no_limits, plan=limits, rate_headers=not no_rate_headers,
                  host=host, port=port, media_port=media_port,
                  **_data_options(seed, size, anchor, accounts, calls, recordings, messages, recording_bytes, data))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with sb:
        info = sb.info()
        if as_json:
            print(json.dumps(info), flush=True)
        else:
            print(f"RingCentral sandbox at {info['server']} (media {info['media_server']}, admin {info['admin']})")
            print(f"  client id:     {info['client_id']}\n  client secret: {info['client_secret']}\n  JWT:           {info['jwt']}")
            for acct in info["accounts"][1:]:
                print(f"  account {acct['account_id']} JWT: {acct['jwt']}")
            print("Press Ctrl-C to stop.", flush=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass


@app.command()
def export(
    out: Path = typer.Option(..., "--out", help="Where to write the ground truth JSON."),  # noqa: B008
    seed: int = SEED, size: str = SIZE, anchor: str | None = ANCHOR, accounts: int = ACCOUNTS,
    calls: int | None = CALLS, recordings: int | None = RECORDINGS, messages: int | None = MESSAGES,
    recording_bytes: int | None = RECORDING_BYTES, data: Path | None = DATA,
    host: str = typer.Option("127.0.0.1", help="Host the URIs in records name."),
    port: int = typer.Option(DEFAULT_PORT, help="Platform port the URIs in records name (media: port+1)."),
) -> None:
    """Write every record the sandbox would serve, with the SHA-256 and size of every binary."""
    sb = _sandbox(host=host, port=port, media_port=port + 1,
                 **_data_options(seed, size, anchor, accounts, calls, recordings, messages, recording_bytes, data))
    truth = sb.ground_truth()
    out.write_text(json.dumps(truth, ensure_ascii=False), encoding="utf-8")
    n = truth["accounts"]
    typer.echo(f"wrote {out}: {sum(len(a['call_log']) for a in n)} calls, {sum(len(a['recordings']) for a in n)} recordings, "
               f"{sum(len(a['messages']) for a in n)} messages", err=True)


def main(argv: list[str] | None = None) -> None:
    app(args=argv if argv is not None else sys.argv[1:], prog_name="python -m rcetl.sandbox")
