"""Entry point of the ``rcetl`` command.

Start-up must stay fast (``rcetl --help`` well under half a second), so this module imports only
typer; every command imports what it needs when it runs.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import typer

from ..errors import RcetlError
from . import commands_plugins, commands_run, commands_state, commands_verify, commands_worker

app = typer.Typer(
    name="rcetl",
    help="Archive RingCentral call logs, recordings, faxes, voicemail and messages into your own storage, "
    "completely and verifiably.\n\nStart with: rcetl validate PIPELINE.yaml, then rcetl run PIPELINE.yaml.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: Rich-formatted help costs ~150 ms of imports on every `--help`, a third of the
    # start-up budget; tables and progress still use Rich where they are worth it.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _global(
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More output (-vv for library debug logs)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only warnings and errors."),
    log_format: str = typer.Option("text", "--log-format", help="Log lines as 'text' or 'json' (for machines).",
                                   case_sensitive=False),
) -> None:
    from .output import setup_logging

    if log_format not in ("text", "json"):
        raise typer.BadParameter("use 'text' or 'json'", param_hint="--log-format")
    setup_logging(-1 if quiet else verbose, log_format)
    os.environ["RCETL_LOG_FORMAT"] = log_format


commands_run.register(app)
commands_verify.register(app)
app.add_typer(commands_plugins.app, name="plugins")
app.add_typer(commands_state.app, name="state")
commands_worker.register(app)  # `rcetl worker` and `rcetl workers status`


def _load_plugin_commands() -> None:
    # Plugins contribute command groups (the sandbox's `rcetl sandbox`); loading plugins costs a
    # few imports, so skip it when the command line names a built-in command.
    builtin = {"run", "validate", "schema", "plugins", "state", "verify", "purge", "worker", "workers"}
    words = [a for a in sys.argv[1:] if not a.startswith("-")]
    if words and words[0] in builtin:
        return
    from ..registry import get_plugin_manager

    get_plugin_manager().extend_cli(app)


def main(argv: list[str] | None = None) -> None:
    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    if not _is_console_script():
        _main()
        return
    try:
        _main()
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    _exit_without_teardown(code)


def _is_console_script() -> bool:
    """True in the installed ``rcetl`` command; False under ``python -m``, in tests and in programs
    that call :func:`main` themselves (they go on after it returns)."""
    script = getattr(sys.modules.get("__main__"), "__file__", None) or ""
    return os.path.basename(script).removesuffix(".exe") == "rcetl"


def _exit_without_teardown(code: object) -> NoReturn:
    """End the ``rcetl`` process as ``sys.exit(code)`` would, but without tearing down its ~700
    modules and their objects one by one: 50-150 ms of CPU after the last write of every run
    (measured), which nothing needs once the command is done (its databases, files and reports are
    closed; the exit handlers still run: logging's flush, plugins' own). A thread still running
    (not a daemon) gets the ordinary exit, which waits for it."""
    import atexit
    import threading

    main_thread = threading.main_thread()
    if any(t is not main_thread and not t.daemon and t.is_alive() for t in threading.enumerate()):
        raise SystemExit(code)
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # sys.exit("message"): Python prints it and exits with 1
        print(code, file=sys.stderr)
        status = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`rcetl ... | head`): Python's own exit says 120
            status = status or 120
    os._exit(status)


def _main() -> None:
    _load_plugin_commands()
    try:
        app()
    except RcetlError as exc:
        from .output import fail

        sys.exit(fail(exc))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
