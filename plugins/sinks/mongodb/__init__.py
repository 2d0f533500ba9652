"""The MongoDB sink: one collection per stream, and with ``gridfs: true`` the binaries too.

This module holds the sink's options; ``sink`` (pymongo) loads only when a pipeline uses it (it
is registered by dotted path in ``rcetl.plugins.sinks.builtin``). With ``gridfs: true`` one MongoDB
database is a complete archive: metadata, recordings, faxes, voicemail and attachments.
"""

from __future__ import annotations

from pydantic import Field, field_validator

import rcetl

from .. import split_url


class MongoSinkConfig(rcetl.PluginConfig):
    """Archive records (and optionally binaries, in GridFS) into MongoDB."""

    url: str = Field(description="mongodb:// or mongodb+srv:// URL; put the password in ${ENV_VAR}")
    database: str = Field("rcetl", pattern=r"^[A-Za-z0-9_-]{1,63}$")
    collection_prefix: str = Field("rc_", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,30}$")
    gridfs: bool = Field(False, description="also store binaries in GridFS (the sink becomes a blob sink too)")
    batch_size: int = Field(1000, ge=1, le=100_000, description="documents per bulk_write")

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        split_url(value, ("mongodb", "mongodb+srv"), "a mongodb:// or mongodb+srv:// URL")
        return value
