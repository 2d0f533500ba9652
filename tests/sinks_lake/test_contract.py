"""rcetl's contract suite against the lake sink: a local folder, and S3 (moto server)."""

from __future__ import annotations

import pytest

import rcetl.plugins.sinks.lake as lake_plugin
from rcetl.testing import RecordSinkContract, SinkCase
from tests.servers import unique

BAD = [{"path": ""}, {"path": "lake", "compression": "lzma"}, {"path": "ftp://host/lake"},
       {"path": "/proc/rcetl-lake/lake"}]


class TestLakeSink(RecordSinkContract):
    bad_configs = BAD

    @pytest.fixture(params=["local", "s3"])
    def sink_case(self, request: pytest.FixtureRequest) -> SinkCase:
        if request.param == "local":
            return SinkCase("lake", {"path": "lake"}, (lake_plugin,), label="lake-local")
        url = request.getfixturevalue("s3_url")
        bucket = unique("rcetl-lake").lower()
        _create_bucket(url, bucket)
        host = url.split("://", 1)[1]
        return SinkCase("lake", {"path": f"s3://{bucket}/lake", "filesystem_options": {
            "endpoint_override": host, "scheme": "http", "region": "us-east-1",
            "access_key": "testing", "secret_key": "testing"}}, (lake_plugin,), label="lake-s3")

    def stored_data(self, sink, record):  # the raw JSON, exact
        return sink.stored_json(record)


def _create_bucket(url: str, bucket: str) -> None:
    import boto3

    boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket=bucket)
