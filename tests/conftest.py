"""Fixtures every test folder shares.

The developer's shell may have rcetl's switches set (``RCETL_DISABLE_PLUGIN_AUTOLOAD``,
``RCETL_TRACE_HOOKS``); tests that want them set them explicitly, so none leaks in from outside.
"""

from __future__ import annotations

import pytest

# The shared test servers (databases, brokers, object stores) and their fixtures: tests/servers.py.
pytest_plugins = ["tests.servers"]


@pytest.fixture(autouse=True)
def _no_rcetl_switches_from_the_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RCETL_DISABLE_PLUGIN_AUTOLOAD", "RCETL_TRACE_HOOKS"):
        monkeypatch.delenv(name, raising=False)
