"""rcetl's contract suite against the couchdb sink on a real CouchDB-protocol server (see conftest):
records and binaries as attachments of their record's document, binaries streamed to documents of
their own (``inline_max_bytes: 0``), and records only (``binaries: false``)."""

from __future__ import annotations

import pytest

import rcetl.plugins.sinks.couchdb as couchdb_plugin
from rcetl.testing import RecordSinkContract, SinkCase, SinkContract

from .conftest import unique_db

BAD = [{"url": "mongodb://localhost"}, {"url": "http://127.0.0.1:5984/db"}, {"url": "http://h", "database": "Upper"},
       {"url": "http://h", "database": "_users"}, {"url": "http://h", "batch_size": 0}]


def _case(url: str, label: str, **options: object) -> SinkCase:
    return SinkCase("couchdb", {"url": url, "database": unique_db(), **options}, (couchdb_plugin,), label=label)


class TestCouchDBRecordsAndAttachments(SinkContract):
    bad_configs = BAD

    @pytest.fixture(params=["inline", "streamed"])
    def sink_case(self, request: pytest.FixtureRequest, couchdb_url: str) -> SinkCase:
        extra = {"inline_max_bytes": 0} if request.param == "streamed" else {}
        return _case(couchdb_url, f"couchdb-{request.param}", **extra)

    def stored_data(self, sink, record):  # the raw JSON, exact (ids above 2^53 included)
        return sink.stored_json(record)


class TestCouchDBRecordsOnly(RecordSinkContract):
    bad_configs = BAD

    @pytest.fixture
    def sink_case(self, couchdb_url: str) -> SinkCase:
        return _case(couchdb_url, "couchdb-records", binaries=False)

    def stored_data(self, sink, record):
        return sink.stored_json(record)

    def test_records_only_is_not_a_blob_sink(self, harness) -> None:
        assert harness.kinds == frozenset({"records"})
