"""rcetl-parquet-sink: RingCentral records as a Parquet data lake, on rcetl's public API only.

Registered through the ``rcetl`` entry point like every built-in. This module must import fast:
pyarrow loads only when a pipeline uses the sink or the ``rcetl parquet`` commands run.
"""

from __future__ import annotations

from typing import Any

import rcetl

__version__ = "0.1.0"


def _make_sink(name: str, config: rcetl.PluginConfig, ctx: rcetl.RunContext) -> rcetl.Sink:
    from .sink import ParquetSink

    return ParquetSink(name, config, ctx)  # type: ignore[arg-type]


@rcetl.hookimpl
def rcetl_sinks() -> list[rcetl.SinkSpec]:
    from .config import ParquetConfig

    return [rcetl.SinkSpec(name="parquet", config=ParquetConfig, factory=_make_sink, kinds=frozenset({"records"}),
                           description="Records as Parquet files partitioned by stream and date (local, S3, GCS, HDFS)")]


@rcetl.hookimpl
def rcetl_cli(app: Any) -> None:
    """``rcetl parquet view|compact``: a plugin-contributed command group (see docs/plugin-authors.md)."""
    from .cli import app as parquet_app

    app.add_typer(parquet_app, name="parquet")
