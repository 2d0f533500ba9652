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


# Reports a test wants printed whatever the outcome (e.g. how many SIGKILLs interrupted real work):
# ``request.node.user_properties.append(("report", text))``. They travel back from xdist workers with
# the test's report, so they are shown in the terminal summary in every mode.
_REPORTS: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call":
        _REPORTS.extend(f"{report.nodeid}: {value}" for key, value in report.user_properties if key == "report")


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: ANN001 - pytest's TerminalReporter
    if _REPORTS:
        terminalreporter.section("test reports")
        for line in _REPORTS:
            terminalreporter.write_line(line)
