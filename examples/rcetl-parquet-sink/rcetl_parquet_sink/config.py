"""Options of the ``parquet`` sink (cheap to import: no pyarrow)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

import rcetl


class ParquetConfig(rcetl.PluginConfig):
    """Archive records as ``<path>/stream=<stream>/date=<YYYY-MM-DD>/part-<hash>.parquet``."""

    path: str = Field(description="a folder (relative to the pipeline file) or a URL pyarrow knows (s3://...)")
    compression: Literal["zstd", "snappy", "gzip"] = Field("zstd", description="Parquet codec")

    @field_validator("path")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("path must name a folder or a URL, e.g. lake/ or s3://bucket/rcetl")
        return value.rstrip("/")
