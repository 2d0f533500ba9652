"""``rcetl browse``: a local, read-only web application over a pipeline's archive (find any call,
hear any recording, read any fax, see what RingCentral is about to delete). A plugin like any
other: it contributes its command through the ``rcetl_cli`` hook and reads the archive through
the public API (``rcetl.open_archive``)."""
