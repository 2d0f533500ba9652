"""Console output shared by the commands: logging setup, errors, and exit codes.

Everything that reaches the terminal or a log passes through :func:`rcetl.redact`, so a secret
interpolated into a pipeline never appears in output.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from ..errors import RcetlError
from ..secrets import redact


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        if record.exc_info:
            payload["exception"] = redact(self.formatException(record.exc_info))
        for key in ("event", "stream", "counts"):
            if hasattr(record, key):
                payload[key] = getattr(record, key)
        return json.dumps(payload, default=str)


def setup_logging(verbosity: int, log_format: str) -> None:
    level = logging.WARNING if verbosity < 0 else logging.INFO if verbosity == 0 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Third-party libraries are noisy at INFO; they speak up at -vv.
    for noisy in ("urllib3", "botocore", "boto3", "s3transfer", "google", "werkzeug", "dropbox", "pymongo",
                  "celery", "kombu", "amqp", "filelock", "secantus", "alembic"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbosity > 1 else logging.WARNING)


def fail(exc: BaseException) -> int:
    """Print one clear message for an error and return the exit code."""
    if isinstance(exc, RcetlError):
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return exc.exit_code
    print(f"error: {type(exc).__name__}: {redact(str(exc))}", file=sys.stderr)
    return 1


def console(stderr: bool = False):  # -> rich.console.Console
    """A Rich console; off a terminal (pipes, CI logs) tables get a wide line instead of 80 columns."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=None if stream.isatty() else 160)


def _piped(stream: Any) -> bool:
    """Output that a script, a pipe or a CI log reads: names must stay whole there."""
    import os

    return not stream.isatty() or bool(os.environ.get("CI"))


def print_table(title: str, columns: list[str], rows: list[list[str]], *, stderr: bool = False,
                fold: tuple[str, ...] = (), terminal: Any = None) -> None:
    """Print a table the way its reader needs it; every table rcetl prints goes through here.

    On a terminal: a Rich table that fits the terminal's width whatever it is; columns in ``fold``
    (names a user greps for or copies) wrap onto more lines and are never cut with an ellipsis.
    Piped or in CI: the title as a ``# comment`` line, then a header and one line per row, columns
    separated by tabs and nothing cut or wrapped, so ``rcetl plugins list | grep message-store``
    finds its line and ``cut -f2`` takes a column. (Commands also offer ``--json``.) ``terminal``:
    a Rich console to print the table on (tests).
    """
    stream = sys.stderr if stderr else sys.stdout
    if terminal is None and _piped(stream):
        lines = [f"# {title}", "\t".join(columns)]
        lines += ["\t".join(redact(str(cell)).replace("\t", " ").replace("\n", " ") for cell in row) for row in rows]
        print("\n".join(lines), file=stream)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for i, col in enumerate(columns):
        if col in fold:  # as wide as its longest cell (up to 40), folded beyond: never cut
            widest = max([len(col)] + [len(str(row[i])) for row in rows])
            table.add_column(col, overflow="fold", min_width=min(widest, 40))
        else:
            table.add_column(col)
    for row in rows:
        table.add_row(*(redact(str(cell)) for cell in row))
    (terminal or Console(stderr=stderr, highlight=False)).print(table)
