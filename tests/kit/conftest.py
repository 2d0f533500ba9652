"""Server fixtures the kit tests share with the sink tests: moto (S3), fake-gcs-server, the Dropbox
fake, and the database servers of tests/sinks_db (SecantusDB in-process for MongoDB)."""

from tests.sinks_blob.conftest import dropbox_fake, gcs_url, s3_url  # noqa: F401 - fixtures re-exported
from tests.sinks_db.conftest import mongodb_url  # noqa: F401
