"""No import circle anywhere in rcetl (core/, plugins/, sandbox/), counting the imports made only for
type checking (``if TYPE_CHECKING:``), and the dependency rules of docs/architecture.md: the core
imports no plugin and no sandbox module; plugins and the sandbox reach the core only through the
public API (``import rcetl``) and its documented public modules.

Imports inside functions (made when a command runs, to keep start-up cheap) are not edges of the
graph: they run after every module involved is loaded, so they cannot form a circle at import time.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Source folder -> import name (setuptools' package-dir in pyproject.toml)
FOLDERS = {"core": "rcetl", "plugins": "rcetl.plugins", "sandbox": "rcetl.sandbox"}


def module_files() -> dict[str, Path]:
    modules = {}
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join([package, *parts])] = path
    return modules


def _top_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports run when the module is imported, and those under ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []
    body = list(tree.body)
    while body:
        node = body.pop(0)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, (ast.If, ast.Try)):  # TYPE_CHECKING blocks, optional imports
            body += node.body + getattr(node, "orelse", []) + [
                s for h in getattr(node, "handlers", []) for s in h.body] + getattr(node, "finalbody", [])
    return found


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in _top_level_imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = name.split(".") if is_package else name.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                # `from pkg import mod` depends on the module; `from mod import name` on mod
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm; small
    enough to write here rather than add a graph library to the test dependencies)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def area(module: str) -> str:
    return "sandbox" if module.startswith("rcetl.sandbox") else \
        "plugins" if module.startswith("rcetl.plugins") else "core"


@pytest.mark.parametrize("where", ["core", "plugins", "sandbox"])
def test_no_import_circle(where: str) -> None:
    found = [c for c in circles(import_graph()) if any(area(m) == where for m in c)]
    assert not found, "import circles (each a set of modules that import each other, TYPE_CHECKING " \
        "imports included):\n" + "\n".join(" <-> ".join(c) for c in found)


def test_the_graph_sees_type_checking_imports_and_relative_imports() -> None:
    graph = import_graph()
    assert "rcetl.interfaces" in graph["rcetl.hookspecs"]  # under `if TYPE_CHECKING:`
    assert "rcetl.hookspecs" in graph["rcetl.registry"]  # `from . import hookspecs`
    assert "rcetl.config.model" in graph["rcetl.config.validate"]  # `from .model import ...`
    assert "rcetl" in graph["rcetl.plugins.sinks.builtin"]  # `import rcetl`
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_core_imports_no_plugin_and_no_sandbox() -> None:
    graph = import_graph()
    wrong = sorted(f"{m} -> {t}" for m, targets in graph.items() if area(m) == "core"
                   for t in targets if area(t) != "core")
    assert not wrong, wrong
