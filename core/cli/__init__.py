"""The ``rcetl`` command: one module per command group, composed in :mod:`.main`."""
