"""Implements a misspelt hook (rcetl_sink instead of rcetl_sinks): rcetl must say so, by name."""

import rcetl


@rcetl.hookimpl
def rcetl_sink():
    return []
