"""Errors with a message a user can act on. The CLI turns them into one line and an exit code."""

from __future__ import annotations


class RcetlError(Exception):
    """Base of every error rcetl reports to a user; ``hint`` says how to fix it."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class ConfigError(RcetlError):
    """A pipeline file or a plugin option is wrong. Raised before any network call."""

    exit_code = 2


class PluginError(RcetlError):
    """A plugin failed to load, or implements a hook that does not exist."""

    exit_code = 2


class TransientError(RcetlError):
    """Worth retrying later: a timeout, a 5xx, a dropped connection, a full disk."""


class PermanentError(RcetlError):
    """Retrying will not help: bad credentials, a rejected row, a checksum mismatch."""


class ItemGone(RcetlError):
    """The source no longer has the item (retention); archived as gone, never retried."""


class IntegrityError(PermanentError):
    """Stored bytes differ from what was downloaded (size or checksum)."""


class ConflictError(PermanentError):
    """A blob key already holds different bytes and the conflict policy is ``error``."""
