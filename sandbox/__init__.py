"""A local RingCentral: the REST API simulator rcetl's demo, tests and benchmarks run against.

``from rcetl.sandbox import Sandbox``; see docs/sandbox.md. Imported lazily so that loading the
plugin (for ``rcetl --help``) costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .server import Sandbox

__all__ = ["Sandbox"]


def __getattr__(name: str) -> Any:
    if name == "Sandbox":
        from .server import Sandbox

        return Sandbox
    raise AttributeError(name)
