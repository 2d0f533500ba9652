"""Options of the ``parquet`` sink (cheap to import: no pyarrow)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

import rcetl


class ParquetConfig(rcetl.PluginConfig):
    """Archive records as Parquet files: ``<path>/stream=<stream>/date=<YYYY-MM-DD>/part-<hash>.parquet``."""

    path: str = Field(description="a folder (relative to the pipeline file) or a URL: s3://bucket/lake, "
                                  "gs://bucket/lake, hdfs://namenode/lake, or any fsspec URL")
    compression: Literal["zstd", "snappy", "gzip", "none"] = Field("zstd", description="Parquet codec")
    filesystem_options: dict[str, Any] = Field(default_factory=dict,
                                               description="passed to the pyarrow/fsspec file system (region, endpoint...)")

    @field_validator("path")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("path must name a folder or a URL, e.g. lake/ or s3://bucket/rcetl")
        return value.rstrip("/")
