"""The sandbox's hooks: the ``rcetl sandbox`` command group and the embedded server a pipeline
connection can name (``server: sandbox``). Only the public API ``import rcetl`` is used."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import rcetl


@rcetl.hookimpl
def rcetl_cli(app: Any) -> None:
    from .cli import app as sandbox_app

    app.add_typer(sandbox_app, name="sandbox")


#: Where the embedded sandbox listens when it can (``rcetl sandbox serve`` uses 18080/18081).
EMBEDDED_PORT = 18480


def _free(port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@contextmanager
def start(options: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Run a sandbox for the length of a pipeline run; options are the connection's ``sandbox:``."""
    from .server import Sandbox

    opts = dict(options)
    if "port" not in opts:
        # Stable ports when free: the URIs inside records then stay the same from run to run, as
        # the real API's do, so a re-run finds nothing changed. Busy (a parallel run): any port.
        sb = None
        if _free(EMBEDDED_PORT) and _free(EMBEDDED_PORT + 1):
            try:
                sb = Sandbox(**opts, port=EMBEDDED_PORT, media_port=EMBEDDED_PORT + 1).start()
            except (OSError, SystemExit):  # lost a race for the port (werkzeug exits on EADDRINUSE)
                sb = None
        if sb is None:
            sb = Sandbox(**opts).start()
    else:
        sb = Sandbox(**opts).start()
    try:
        yield sb.info()
    finally:
        sb.stop()


@rcetl.hookimpl
def rcetl_embedded_servers() -> list[rcetl.EmbeddedServerSpec]:
    return [rcetl.EmbeddedServerSpec(name="sandbox", start=start,
                                     description="local RingCentral API simulator (seeded data, real rate limits)")]
