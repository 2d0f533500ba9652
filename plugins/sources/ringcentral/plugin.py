"""Registers the ``ringcentral`` connection with rcetl."""

from __future__ import annotations

from typing import TYPE_CHECKING

import rcetl

from .config import RingCentralConfig

if TYPE_CHECKING:
    from .connection import RingCentralConnection


def make_connection(name: str, config: rcetl.PluginConfig, ctx: rcetl.RunContext) -> RingCentralConnection:
    from .connection import RingCentralConnection  # lazily: it imports requests

    assert isinstance(config, RingCentralConfig)
    return RingCentralConnection(name, config, ctx)


@rcetl.hookimpl
def rcetl_connections() -> list[rcetl.ConnectionSpec]:
    return [
        rcetl.ConnectionSpec(
            name="ringcentral",
            config=RingCentralConfig,
            factory=make_connection,
            description="RingCentral REST API: JWT login, one shared token and rate budget per credential",
        )
    ]
