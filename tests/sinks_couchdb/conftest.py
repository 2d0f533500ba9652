"""Helpers of the couchdb sink's tests. The CouchDB-protocol server they run against (and the
``couchdb_url`` / ``couchdb_server_info`` fixtures) lives with every other test server in
tests/servers.py."""

from __future__ import annotations

import os


def unique_db(prefix: str = "rcetl-test") -> str:
    return f"{prefix}-{os.getpid()}-{os.urandom(4).hex()}"
