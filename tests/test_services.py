"""Where tests find their servers (tests/services.py): the environment's URL, else a container where
Docker answers, else the local service, else unavailable (a skip; a failure on CI, except SQL Server).

No Docker engine runs on this project's machines, so the container is a stand-in object here (the
one thing mocked, because it cannot run): the tests check the order of the choices, not Docker."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests import services


class FakeContainer:
    started = 0

    def start(self) -> FakeContainer:
        FakeContainer.started += 1
        return self

    def stop(self) -> None:
        pass


@pytest.fixture
def listening() -> Iterator[int]:
    """A port something listens on (the 'local service')."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


@pytest.fixture
def svc(monkeypatch: pytest.MonkeyPatch, listening: int) -> str:
    """A service of our own named TESTSVC whose local URL answers and whose container is a stand-in."""
    name = "TESTSVC"
    monkeypatch.setitem(services.SERVICES, name, services.Service(
        f"testsvc://127.0.0.1:{listening}/0", lambda: (FakeContainer(), lambda c: "testsvc://container:1/0")))
    monkeypatch.setattr(services, "_started", {})
    monkeypatch.delenv(f"RCETL_TEST_{name}_URL", raising=False)  # restored after the test
    monkeypatch.delenv("RCETL_REQUIRE_SERVICES", raising=False)
    monkeypatch.setattr(services, "docker_available", lambda: False)
    monkeypatch.setattr("atexit.register", lambda *a, **k: None)
    FakeContainer.started = 0
    return name


def test_the_environment_url_comes_first(svc: str, monkeypatch: pytest.MonkeyPatch, listening: int) -> None:
    monkeypatch.setattr(services, "docker_available", lambda: True)
    monkeypatch.setenv(f"RCETL_TEST_{svc}_URL", f"testsvc://127.0.0.1:{listening}/9")
    assert services.service_url(svc) == f"testsvc://127.0.0.1:{listening}/9"
    assert FakeContainer.started == 0


def test_a_container_where_docker_answers_and_its_url_reaches_subprocesses(svc: str, monkeypatch) -> None:
    monkeypatch.setattr(services, "docker_available", lambda: True)
    assert services.service_url(svc) == "testsvc://container:1/0"
    assert services.service_url(svc) == "testsvc://container:1/0"
    assert FakeContainer.started == 1  # once per process
    import os

    assert os.environ[f"RCETL_TEST_{svc}_URL"] == "testsvc://container:1/0"


def test_the_local_service_without_docker(svc: str, listening: int) -> None:
    assert services.service_url(svc) == f"testsvc://127.0.0.1:{listening}/0"
    assert FakeContainer.started == 0


def _nothing_answers(svc: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    monkeypatch.setitem(services.SERVICES, svc, services.Service(f"testsvc://127.0.0.1:{port}/0",
                                                                 services.SERVICES[svc].container))
    monkeypatch.setitem(services.LOCAL_DEFAULTS, svc, f"testsvc://127.0.0.1:{port}/0")


def test_missing_is_a_skip_on_a_laptop_and_a_failure_on_ci(svc: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _nothing_answers(svc, monkeypatch)
    with pytest.raises(pytest.skip.Exception, match=f"{svc} not reachable"):
        services.service_url(svc)
    monkeypatch.setenv("RCETL_REQUIRE_SERVICES", "1")
    with pytest.raises(pytest.fail.Exception, match="required service unavailable"):
        services.service_url(svc)


def test_a_url_that_does_not_answer_is_never_replaced(svc: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "docker_available", lambda: True)
    monkeypatch.setenv(f"RCETL_TEST_{svc}_URL", "testsvc://127.0.0.1:1/0")
    monkeypatch.setenv("RCETL_REQUIRE_SERVICES", "1")
    with pytest.raises(pytest.fail.Exception, match="does not answer"):
        services.service_url(svc)
    assert FakeContainer.started == 0


def test_sql_server_is_the_one_skip_allowed_on_ci_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RCETL_TEST_MSSQL_URL", raising=False)
    monkeypatch.setattr(services, "docker_available", lambda: False)
    monkeypatch.setenv("RCETL_REQUIRE_SERVICES", "1")
    with pytest.raises(pytest.skip.Exception, match="SQL Server: no RCETL_TEST_MSSQL_URL and no Docker"):
        services.service_url("MSSQL")
    monkeypatch.setenv("RCETL_REQUIRE_SERVICES", "all")  # the GitHub workflow, which runs SQL Server
    with pytest.raises(pytest.fail.Exception, match="SQL Server"):
        services.service_url("MSSQL")


def test_a_missing_test_dependency_follows_the_same_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RCETL_REQUIRE_SERVICES", raising=False)
    with pytest.raises(pytest.skip.Exception, match="rcetl_no_such_module is not installed"):
        services.require_module("rcetl_no_such_module")
    monkeypatch.setenv("RCETL_REQUIRE_SERVICES", "1")
    with pytest.raises(pytest.fail.Exception):
        services.require_module("rcetl_no_such_module")


#: Direct skips still in the suite, each with why it is not a silent hole; shrink this, never grow it.
DIRECT_SKIPS_LEFT = {
    "tests/sinks_lake/test_spark.py": "reached only when selected outside `make test-spark` (deselected otherwise)",
}


def test_no_test_skips_on_its_own() -> None:
    """A missing service or dependency goes through tests/services.py (a failure on CI); a test
    that concerns one backend is parametrised for it. So no test calls pytest.skip, importorskip or
    skipif itself."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent
    pattern = re.compile(r"pytest\.skip\(|importorskip\(|mark\.skipif\(|mark\.skip\(")
    offenders = sorted(
        str(path.relative_to(root.parent)) for path in root.rglob("*.py")
        if path.name not in ("services.py", "test_services.py") and pattern.search(path.read_text())
    )
    assert offenders == sorted(DIRECT_SKIPS_LEFT), (
        f"tests that skip on their own: {sorted(set(offenders) - set(DIRECT_SKIPS_LEFT))}; "
        f"no longer skipping (remove from DIRECT_SKIPS_LEFT): {sorted(set(DIRECT_SKIPS_LEFT) - set(offenders))}")
