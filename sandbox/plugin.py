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


@contextmanager
def start(options: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Run a sandbox for the length of a pipeline run; options are the connection's ``sandbox:``."""
    from .server import Sandbox

    with Sandbox(**dict(options)) as sb:
        yield sb.info()


@rcetl.hookimpl
def rcetl_embedded_servers() -> list[rcetl.EmbeddedServerSpec]:
    return [rcetl.EmbeddedServerSpec(name="sandbox", start=start,
                                     description="local RingCentral API simulator (seeded data, real rate limits)")]
