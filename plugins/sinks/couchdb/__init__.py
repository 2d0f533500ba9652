"""The CouchDB sink: one document per record, binaries as attachments (see docs/sinks/couchdb.md).

This module holds the options and registers the sink by dotted path; ``sink`` (the HTTP client)
loads only when a pipeline uses it, so ``rcetl --help`` and validation stay fast.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator

import rcetl

from .. import split_url

# CouchDB's rule for database names (https://docs.couchdb.org/en/stable/api/database/common.html).
DATABASE_NAME = r"^[a-z][a-z0-9_$()+/-]{0,237}$"


class CouchDBConfig(rcetl.PluginConfig):
    """Archive records (and, unless ``binaries: false``, their binaries as attachments) into CouchDB."""

    url: str = Field(description="http(s)://[user:password@]host:5984; put the password in ${ENV_VAR}")
    database: str = Field("rcetl", pattern=DATABASE_NAME, description="created on open when missing")
    username: str | None = Field(None, description="instead of credentials in the URL")
    password: str | None = Field(None, description="instead of credentials in the URL; use ${ENV_VAR}")
    binaries: bool = Field(True, description="store binaries as attachments (the sink is then a blob sink too)")
    inline_max_bytes: int = Field(
        4 << 20, ge=0, le=64 << 20,
        description="binaries up to this size are attachments of their record's document (sent inline "
                    "with its metadata in one revision); larger ones are streamed to a document of their own")
    batch_size: int = Field(500, ge=1, le=10_000, description="documents per _bulk_docs request")
    ca_certs: str | None = Field(None, description="CA bundle (PEM) for a TLS server with a private CA")
    verify_tls: bool = Field(True, description="verify the server's TLS certificate (off only for tests)")
    timeout: float = Field(60.0, gt=0, le=3600, description="seconds to wait for the server per request")

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        expected = "an http:// or https:// URL of the CouchDB server, e.g. http://127.0.0.1:5984"
        parts = split_url(value, ("http", "https"), expected)
        if not parts.hostname:
            raise ValueError(f"expected {expected}")
        if parts.path.strip("/"):
            raise ValueError("the URL names the server only; put the database name in `database:`")
        return value.rstrip("/")

    @field_validator("password")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        rcetl.register_secret(value)
        return value

    @field_validator("database")
    @classmethod
    def _no_reserved(cls, value: str) -> str:
        if re.match(r"^_", value):
            raise ValueError("names starting with '_' are CouchDB's own databases")
        return value


@rcetl.hookimpl
def rcetl_sinks() -> list[rcetl.SinkEntry]:
    # ``binaries: false`` makes it a record sink only (``CouchDBRecordSink.configured``).
    return [rcetl.SinkEntry("couchdb", "rcetl.plugins.sinks.couchdb.sink:CouchDBArchiveSink",
                            extra="rcetl[couchdb]", requires=("requests",))]
