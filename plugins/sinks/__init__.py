"""The built-in sinks, and the small pieces they share: a connection URL's password kept out of every
output, and a batch of records named in an error message (cheap: imported whenever a sink registers)."""

from __future__ import annotations

from collections.abc import Sequence
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
