"""The couchdb sink's cases for the contract suite (tests/kit/test_builtin_sinks_contract.py runs
them) on the CouchDB-protocol server of conftest: binaries as attachments of their record's document
(``inline``), streamed to documents of their own (``streamed``: ``inline_max_bytes: 0``), and
records only (``binaries: false``)."""

from __future__ import annotations

from typing import Any

import pytest

from rcetl.testing import SinkCase

from .conftest import unique_db

#: Options the sink must refuse: another scheme, a database in the URL, illegal database names.
BAD = [{"url": "mongodb://localhost"}, {"url": "http://127.0.0.1:5984/db"}, {"url": "http://h", "database": "Upper"},
       {"url": "http://h", "database": "_users"}, {"url": "http://h", "batch_size": 0}]

VARIANTS: dict[str, dict[str, Any]] = {"inline": {}, "streamed": {"inline_max_bytes": 0},
                                       "records": {"binaries": False}}


def couchdb_case(request: pytest.FixtureRequest, variant: str = "inline") -> SinkCase:
    url = request.getfixturevalue("couchdb_url")
    return SinkCase("couchdb", {"url": url, "database": unique_db("contract"), **VARIANTS[variant]},
                    label=f"couchdb-{variant}")
