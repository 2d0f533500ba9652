"""Keep secrets out of output, logs, state and error messages.

Values interpolated into secret fields (client secret, JWT, passwords, tokens) are registered here;
:func:`redact` replaces every registered value in a text. The CLI's log handler and error printer
pass everything through it, so a plugin that logs a URL with a password in it still leaks nothing.
"""

from __future__ import annotations

import threading

_lock = threading.Lock()
_secrets: set[str] = set()
MASK = "***"


def register_secret(value: str | None) -> None:
    """Remember ``value`` as secret (values shorter than 4 characters are too common to mask)."""
    if value and len(value) >= 4:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    if not _secrets or not text:
        return text
    with _lock:
        values = sorted(_secrets, key=len, reverse=True)
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    return text
