"""Handlers reach the running sandbox only through the ``Services`` protocol (``ctx.services``),
never through the app or the server object. (No import circle anywhere, the sandbox included, is
checked by tests/core/test_imports.py.)"""

from __future__ import annotations

from pathlib import Path

import rcetl.sandbox

PACKAGE = Path(rcetl.sandbox.__file__).resolve().parent


def test_handlers_use_the_services_protocol():
    for p in PACKAGE.glob("*.py"):
        text = p.read_text("utf-8")
        assert "ctx.app" not in text and ".owner." not in text, p.name


def test_ctx_is_typed_by_the_protocol_not_the_app():
    text = (PACKAGE / "ctx.py").read_text("utf-8")
    assert "from .services import Services" in text and "from .app" not in text
