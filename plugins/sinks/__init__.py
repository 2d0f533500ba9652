"""The built-in sinks, and the small pieces they share: a connection URL's password kept out of every
output, and a batch of records named in an error message (cheap: imported whenever a sink registers)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar
from urllib.parse import SplitResult, unquote, urlsplit

import rcetl


def register_url_password(password: str | None) -> None:
    """Mask a URL's password in every log line and error, as written and percent-decoded."""
    if password:
        rcetl.register_secret(unquote(password))
        rcetl.register_secret(password)


def split_url(value: str, schemes: tuple[str, ...], expected: str) -> SplitResult:
    """``value`` split, its scheme one of ``schemes`` (else ``ValueError("expected " + expected)``),
    its password registered as a secret."""
    parts = urlsplit(value)
    if parts.scheme not in schemes:
        raise ValueError(f"expected {expected}")
    register_url_password(parts.password)
    return parts


def some(names: Sequence[str], noun: str) -> str:
    """``record a`` for one, ``3 records (a, b, c)`` for several, at most five named."""
    shown = ", ".join(names[:5])
    if len(names) == 1:
        return f"{noun} {shown}"
    return f"{len(names)} {noun}s ({shown}{', ...' if len(names) > 5 else ''})"


class OptionalBlobs(rcetl.RecordSink):
    """A record sink that stores binaries too when a boolean option says so (CouchDB's ``binaries``,
    MongoDB's ``gridfs``): the option is named by ``blobs_option``, and the class storing binaries is
    the subclass that is also an :class:`rcetl.BlobSink`; :meth:`configured` picks one of the two."""

    #: The boolean option of ``config_model`` that turns on storing binaries.
    blobs_option: ClassVar[str]

    @classmethod
    def configured(cls, config: rcetl.PluginConfig) -> type[rcetl.Sink]:
        records: type[OptionalBlobs] = next(k for k in cls.__mro__ if "blobs_option" in vars(k))
        if not getattr(config, records.blobs_option):
            return records
        return next(k for k in records.__subclasses__() if issubclass(k, rcetl.BlobSink))
