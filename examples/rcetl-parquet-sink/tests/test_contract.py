"""rcetl's contract suite against the parquet sink (local folder)."""

from rcetl.testing import RecordSinkContract


class TestParquetSink(RecordSinkContract):
    plugin = "parquet"
    config = {"path": "lake"}
    bad_configs = [{"path": ""}, {"path": "lake", "compression": "lzma"}, {"path": "/proc/rcetl-parquet/lake"}]
