"""The SQL sinks are registered in ``rcetl.plugins.sinks.builtin`` (by dotted path, see there).

Nothing is left here; this module can be deleted by its owner once no test imports it.
"""
