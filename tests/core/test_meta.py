"""Meta-tests (after Datasette's): every hook is documented in docs/hooks.md, and every hook has a test."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from rcetl import hookspecs
from rcetl.hookspecs import all_hook_names, hook_doc

ROOT = Path(__file__).resolve().parents[2]
HOOKS_DOC = ROOT / "docs" / "hooks.md"
TESTS = Path(__file__).parent


def test_there_are_hooks() -> None:
    names = all_hook_names()
    assert len(names) >= 10
    assert names[0] == "rcetl_sources" and "rcetl_budget_exhausted" in names
    assert "hookspec" not in names and "all_hook_names" not in names


def doc_sections() -> dict[str, str]:
    text = HOOKS_DOC.read_text()
    parts = re.split(r"^## (\S+)\s*$", text, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


@pytest.mark.parametrize("hook", all_hook_names())
def test_every_hook_is_documented(hook: str) -> None:
    sections = doc_sections()
    assert hook in sections, f"docs/hooks.md has no `## {hook}` section"
    body = sections[hook]
    assert "**When:**" in body, f"docs/hooks.md: {hook} does not say when it is called"
    assert "**Returns:**" in body, f"docs/hooks.md: {hook} does not say what it may return"
    assert f"def {hook}(" in body, f"docs/hooks.md: {hook} has no signature"


def test_the_doc_has_no_hook_that_does_not_exist() -> None:
    documented = {name for name in doc_sections() if name.startswith("rcetl_")}
    assert documented == set(all_hook_names())


@pytest.mark.parametrize("hook", all_hook_names())
def test_every_hookspec_says_when_it_is_called(hook: str) -> None:
    assert hook_doc(hook).startswith("Called"), f"{hook}'s docstring must start with when it is called"


def _test_function_names() -> list[str]:
    """Every test function name in tests/core."""
    names = []
    for module in TESTS.glob("test_*.py"):
        tree = ast.parse(module.read_text())
        names += [n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")]
    return names


@pytest.mark.parametrize("hook", all_hook_names())
def test_every_hook_has_a_test(hook: str) -> None:
    assert any(hook in name for name in _test_function_names()), f"no test named after {hook} in tests/core"


def test_hookspecs_has_a_spec_for_every_listed_name() -> None:
    for name in all_hook_names():
        assert hasattr(getattr(hookspecs, name), "rcetl_spec")
