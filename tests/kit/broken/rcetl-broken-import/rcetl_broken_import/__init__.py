"""Imports a dependency its package forgot to declare."""

import rcetl_a_dependency_nobody_installed  # noqa: F401

import rcetl


@rcetl.hookimpl
def rcetl_sinks():
    return []
