"""Every built-in sink passes the same contract suite third parties run (rcetl.testing).

SQLite and the local folder always run; MySQL/MariaDB and PostgreSQL when ``tests/services.py``
finds them, S3 against a moto server, GCS against fake-gcs-server, MongoDB against SecantusDB
(each skipped with the reason when its server or sink is missing, failed on CI).
"""

from __future__ import annotations

import importlib
import json
from typing import Any

import pytest

import rcetl
from rcetl.testing import BlobSinkContract, RecordSinkContract, SinkCase, SinkContract
from tests.services import service_url, unavailable
from tests.sinks_couchdb import cases as couchdb_cases
from tests.sinks_lake import cases as lake_cases


def _needs(module: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError as exc:
        unavailable(f"{module} cannot be imported: {exc}")


def _unique(prefix: str) -> str:
    import os

    return f"{prefix}{os.getpid()}{os.urandom(3).hex()}"


# Defects this suite found in built-in sinks, reported to their owners. Strict: each flips to a
# failure once fixed, so the entry is removed then.
KNOWN_DEFECTS: dict[tuple[str, str], str] = {}


def _known_defect(request: pytest.FixtureRequest, case: str) -> None:
    test = request.node.originalname if hasattr(request.node, "originalname") else request.node.name
    reason = KNOWN_DEFECTS.get((case, test))
    if reason:
        request.applymarker(pytest.mark.xfail(reason=reason, strict=True))


# --- record sinks ------------------------------------------------------------------------------


def _sqlite(request: pytest.FixtureRequest) -> SinkCase:
    return SinkCase("sqlite", {"url": "archive.db"}, label="sqlite")


def _server_sql(plugin: str, service: str) -> Any:
    def make(request: pytest.FixtureRequest) -> SinkCase:
        url = service_url(service)
        return SinkCase(plugin, {"url": url, "table_prefix": _unique("ct")[:30] + "_"}, label=plugin)

    return make


def _mongodb(request: pytest.FixtureRequest, **extra: Any) -> SinkCase:
    _needs("pymongo")
    url = request.getfixturevalue("mongodb_url")
    return SinkCase("mongodb", {"url": url, "database": _unique("contract"), **extra}, label="mongodb")


RECORD_SINKS = {"sqlite": _sqlite, "mysql": _server_sql("mysql", "MYSQL"),
                "postgres": _server_sql("postgres", "POSTGRES"), "mongodb": _mongodb,
                "lake": lake_cases.lake_local, "lake-s3": lake_cases.lake_s3, "lake-gcs": lake_cases.lake_gcs,
                "couchdb-records": lambda request: couchdb_cases.couchdb_case(request, "records")}


class TestBuiltinRecordSinks(RecordSinkContract):
    bad_configs = []

    @pytest.fixture(params=sorted(RECORD_SINKS))
    def sink_case(self, request: pytest.FixtureRequest) -> SinkCase:
        case = RECORD_SINKS[request.param](request)
        # Refused by validation: a URL of another database family, an illegal table prefix.
        self.bad_configs = {
            "sqlite": [{"url": "mysql://root@localhost/x"}, {"url": "a.db", "table_prefix": "1; DROP"}],
            "mysql": [{"url": "postgresql://u@h/db"}],
            "postgres": [{"url": "mysql://u@h/db"}],
            "mongodb": [{}],
            "lake": lake_cases.BAD, "lake-s3": lake_cases.BAD, "lake-gcs": lake_cases.BAD,
            "couchdb-records": couchdb_cases.BAD,
        }.get(request.param, [])
        return case

    def stored_data(self, sink: rcetl.RecordSink, record: rcetl.Record) -> dict[str, Any] | None:
        """The raw JSON column of the SQL sink (exact ids and hostile values, not only keys)."""
        if hasattr(sink, "stored_json"):  # couchdb, lake: the raw JSON text they keep
            return sink.stored_json(record)
        if not hasattr(sink, "engine"):
            return None
        import sqlalchemy as sa

        query, _, _ = sink._scoped(record.stream, record.account,
                                   lambda table, key: sa.select(table.c.raw).where(key == record.key))
        with sink.engine.connect() as conn:
            raw = conn.execute(query).scalar_one()
        return json.loads(raw) if isinstance(raw, str) else raw


# --- blob sinks --------------------------------------------------------------------------------


def _filesystem(request: pytest.FixtureRequest) -> SinkCase:
    return SinkCase("filesystem", {"path": "archive"}, label="filesystem")


def _s3(request: pytest.FixtureRequest) -> SinkCase:
    url = request.getfixturevalue("s3_url")
    mp = request.getfixturevalue("monkeypatch")
    mp.setenv("AWS_ACCESS_KEY_ID", "testing")
    mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return SinkCase("s3", {"bucket": _unique("rcetl-contract-"), "endpoint_url": url, "region": "us-east-1",
                           "addressing_style": "path", "create_bucket": True}, label="s3")


def _gcs(request: pytest.FixtureRequest) -> SinkCase:
    url = request.getfixturevalue("gcs_url")
    return SinkCase("gcs", {"bucket": _unique("rcetl-contract-"), "emulator_host": url, "create_bucket": True},
                    label="gcs")


def _dropbox(request: pytest.FixtureRequest) -> SinkCase:
    fake, host, ca = request.getfixturevalue("dropbox_fake")
    return SinkCase("dropbox", {"root": "/" + _unique("rcetl-contract-"), "access_token": "test-token",
                                "ca_certs": ca, "api_host": host, "content_host": host}, label="dropbox")


BLOB_SINKS = {"filesystem": _filesystem, "s3": _s3, "gcs": _gcs, "dropbox": _dropbox}


class TestBuiltinBlobSinks(BlobSinkContract):
    @pytest.fixture(params=sorted(BLOB_SINKS))
    def sink_case(self, request: pytest.FixtureRequest) -> SinkCase:
        case = BLOB_SINKS[request.param](request)
        self.bad_configs = {
            "filesystem": [{"path": "archive", "key": "{id.__class__}"}, {"path": "archive", "prefix": "../up"},
                           {"path": "/proc/rcetl-contract/archive"}],
            "s3": [{**case.config, "bucket": "Not_A_Bucket!"}],
            "gcs": [{**case.config, "bucket": ""}],
            "dropbox": [{**case.config, "root": "no-leading-slash"}],
        }.get(request.param, [])
        _known_defect(request, request.param)
        return case


class TestBuiltinMongoDBWithGridFS(SinkContract):
    """MongoDB with ``gridfs: true`` stores records and binaries: both contracts at once."""

    bad_configs = [{"url": "http://not-mongo"}]

    @pytest.fixture
    def sink_case(self, request: pytest.FixtureRequest) -> SinkCase:
        _known_defect(request, "mongodb-gridfs")
        return _mongodb(request, gridfs=True)


class TestBuiltinCouchDB(SinkContract):
    """CouchDB stores records and binaries (attachments): both contracts, inline and streamed."""

    bad_configs = couchdb_cases.BAD

    @pytest.fixture(params=["inline", "streamed"])
    def sink_case(self, request: pytest.FixtureRequest) -> SinkCase:
        return couchdb_cases.couchdb_case(request, request.param)

    def stored_data(self, sink: rcetl.RecordSink, record: rcetl.Record) -> dict[str, Any] | None:
        return sink.stored_json(record)  # type: ignore[attr-defined]
