"""rcetl-parquet-sink: an example third-party sink (records as Parquet files), on rcetl's public API only.

Registered through the ``rcetl`` entry point like every built-in. This module must import fast:
pyarrow loads only when a pipeline uses the sink or the ``rcetl parquet`` commands run.
"""

from __future__ import annotations

from typing import Any

import rcetl

__version__ = "0.1.0"


@rcetl.hookimpl
def rcetl_sinks() -> list[rcetl.SinkEntry]:
    # By dotted path: pyarrow is imported only when a pipeline names the sink.
    return [rcetl.SinkEntry("parquet", "rcetl_parquet_sink.sink:ParquetSink", extra="rcetl-parquet-sink",
                            requires=("pyarrow",))]


@rcetl.hookimpl
def rcetl_cli(app: Any) -> None:
    """``rcetl parquet view|files``: a plugin-contributed command group (see docs/plugin-authors.md)."""
    from .cli import app as parquet_app

    app.add_typer(parquet_app, name="parquet")
