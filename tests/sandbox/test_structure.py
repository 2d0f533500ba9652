"""The sandbox's modules form no import circle (TYPE_CHECKING and function-level imports count
too), and handlers reach the running sandbox only through the ``Services`` protocol."""

from __future__ import annotations

import ast
from pathlib import Path

import rcetl.sandbox

PACKAGE = Path(rcetl.sandbox.__file__).resolve().parent


def _imports(path: Path) -> set[str]:
    """Sibling modules ``path`` imports, wherever the import statement stands."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                out.add(node.module.split(".")[0])
            else:
                out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rcetl.sandbox."):
            out.add(node.module.split(".")[2])
    return {m for m in out if (PACKAGE / f"{m}.py").exists()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node], found = 1, None
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_no_import_circle():
    graph = {p.stem: _imports(p) for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert graph["ctx"] and graph["app"], "the walk sees imports"
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_the_walk_finds_a_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_handlers_use_the_services_protocol():
    for p in PACKAGE.glob("*.py"):
        text = p.read_text("utf-8")
        assert "ctx.app" not in text and ".owner." not in text, p.name
