"""``import rcetl`` loads only the errors; every other name of the public API is imported from its
module when first used (PEP 562). Each name still is its module's object, the names type checkers
see (the ``if TYPE_CHECKING:`` imports) are the names served, and the modules ``import rcetl``
used to load are still reached as ``rcetl.<module>``."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import rcetl

INIT = Path(rcetl.__file__)


def test_every_public_name_is_its_modules_object():
    for name in rcetl.__all__:
        if name == "__version__":
            continue
        value = getattr(rcetl, name)
        module = rcetl._MODULE_OF.get(name, "errors")
        assert value is getattr(importlib.import_module(f"rcetl.{module}"), name), name


def test_lazy_names_are_the_type_checking_imports_and_all():
    tree = ast.parse(INIT.read_text())
    checked = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for stmt in node.body:
                if isinstance(stmt, ast.ImportFrom):
                    checked.update({alias.name: stmt.module for alias in stmt.names})
    assert checked == rcetl._MODULE_OF
    errors = {n for n in rcetl.__all__ if n in vars(importlib.import_module("rcetl.errors"))}
    assert set(rcetl.__all__) == {*checked, *errors, "__version__"}


def test_import_rcetl_loads_only_the_errors():
    probe = "import sys, rcetl; print(sorted(m for m in sys.modules if m.startswith('rcetl')))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['rcetl', 'rcetl.errors']"


def test_modules_import_rcetl_loaded_are_attributes():
    probe = "import rcetl; print(rcetl.records.Record.__name__, rcetl.content.check_content.__name__)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["Record", "check_content"]


def test_unknown_names_are_attribute_errors():
    assert not hasattr(rcetl, "no_such_name")
    assert "RecordSink" in dir(rcetl)
