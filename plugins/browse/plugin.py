"""The browse plugin's hooks: the ``rcetl browse`` command."""

from __future__ import annotations

from typing import Any

import rcetl


@rcetl.hookimpl
def rcetl_cli(app: Any) -> None:
    from .cli import browse

    app.command("browse")(browse)
