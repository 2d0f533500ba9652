"""The ``lake`` sink: the archive as a Hive-partitioned Parquet dataset (see docs/sinks/lake.md).

This module holds the options and registers the sink by dotted path; pyarrow loads only when a
pipeline uses it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

import rcetl

SCHEMES = ("s3", "gs", "gcs", "hdfs", "file")


class LakeConfig(rcetl.PluginConfig):
    """Archive records as ``<path>/stream=<stream>/date=<YYYY-MM-DD>/part-0.parquet``."""

    path: str = Field(description="a folder (relative to the pipeline file) or s3://bucket/prefix, "
                                  "gs://bucket/prefix, hdfs://namenode:8020/path")
    filesystem_options: dict[str, Any] = Field(
        default_factory=dict,
        description="keyword arguments of pyarrow's S3FileSystem / GcsFileSystem / HadoopFileSystem, e.g. "
                    "{region: us-east-1, endpoint_override: 'minio:9000', scheme: http}; secrets via ${ENV}")
    compression: Literal["zstd", "snappy", "gzip", "none"] = Field("zstd", description="Parquet codec")
    lock_timeout: float = Field(600.0, gt=0, description="seconds to wait for another writer of a partition")

    @field_validator("path")
    @classmethod
    def _check_path(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("path must name a folder or a URL, e.g. archive/lake or s3://bucket/rcetl")
        if "://" in value and value.split("://", 1)[0] not in SCHEMES:
            raise ValueError(f"unsupported scheme; use a folder or one of {', '.join(s + '://' for s in SCHEMES)}")
        return value.rstrip("/")

    @field_validator("filesystem_options")
    @classmethod
    def _secrets(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in ("secret_key", "session_token", "access_token", "kerb_ticket"):
            if isinstance(value.get(name), str):
                rcetl.register_secret(value[name])
        return value


@rcetl.hookimpl
def rcetl_sinks() -> list[rcetl.SinkEntry]:
    return [rcetl.SinkEntry("lake", "rcetl.plugins.sinks.lake.sink:LakeSink", extra="rcetl[lake]",
                            requires=("pyarrow",))]
