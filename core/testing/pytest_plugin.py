"""rcetl's pytest plugin (entry point ``pytest11``): fixtures for plugin authors.

- ``rcetl_sandbox``: a running RingCentral sandbox (session-wide; skips when rcetl.sandbox is absent)
- ``rcetl_ground_truth``: what that sandbox holds (or the built-in fixture data set without it)
- ``rcetl_dataset``: the contract suite's records and binaries (:class:`rcetl.testing.ContractDataset`)
- ``rcetl_pipeline``: write a pipeline YAML around your sinks and run it (:class:`PipelineBuilder`)
- ``rcetl_run_context``: a :class:`rcetl.RunContext` whose relative paths resolve in ``tmp_path``

Importing this module costs little: the sandbox and the engine load when a fixture is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SANDBOX_OPTIONS: dict[str, Any] = {"seed": 1, "size": "tiny", "time_scale": 600.0}


@pytest.fixture(scope="session")
def rcetl_sandbox() -> Iterator[Any]:
    """A running sandbox (seed 1, tiny, 600x clock) shared by the tests of one session/worker."""
    try:
        from rcetl.sandbox import Sandbox
    except ImportError as exc:
        pytest.skip(f"rcetl's sandbox is not installed ({exc})")
    with Sandbox(**SANDBOX_OPTIONS) as sandbox:
        yield sandbox


@pytest.fixture(scope="session")
def rcetl_ground_truth(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The sandbox's ground truth (ids, counts, SHA-256 of every binary); the built-in cut without it."""
    from rcetl.testing.dataset import builtin_ground_truth

    try:
        import rcetl.sandbox  # noqa: F401
    except ImportError:
        return builtin_ground_truth()
    return request.getfixturevalue("rcetl_sandbox").ground_truth()


@pytest.fixture
def rcetl_dataset() -> Any:
    from rcetl.testing.dataset import load_dataset

    return load_dataset()


@pytest.fixture
def rcetl_run_context(tmp_path: Path) -> Any:
    from rcetl.testing.harness import make_context

    return make_context(tmp_path)


@pytest.fixture
def rcetl_pipeline(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """``rcetl_pipeline(sinks={...}, sources=None, connections=None, observers=None, plugins=())``."""
    from rcetl.testing.pipeline import PipelineBuilder

    builder = PipelineBuilder(tmp_path, sandbox=lambda: request.getfixturevalue("rcetl_sandbox"))
    try:
        yield builder
    finally:
        builder.close()
