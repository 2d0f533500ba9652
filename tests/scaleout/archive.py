"""What a scale-out test checks in the archive: every account complete, byte-exact, no duplicate."""

from __future__ import annotations

import hashlib
from pathlib import Path

import sqlalchemy as sa

from tests.scaleout.conftest import Scenario
from tests.scaleout.ledger import blob_bytes, item_id


def expected_ids(sc: Scenario, accounts: list[str], count: int, partitions: int) -> set[str]:
    return {item_id(sc.account(a), f"p{p}", n) for a in accounts for p in range(partitions) for n in range(count)}


def archived_rows(sc: Scenario) -> list[tuple[str, str]]:
    """(account, key) of every row in the record sink's entries table."""
    engine = sa.create_engine(sc.services.postgres)
    try:
        with engine.connect() as conn:
            # streams the SQL sink has no typed table for go to its generic `records` table
            table = sa.Table(f"{sc.table_prefix}records", sa.MetaData(), autoload_with=conn)
            query = sa.select(table.c.account, table.c.record_key).where(table.c.stream == "entries")
            return [(str(a), str(k)) for a, k in conn.execute(query)]
    finally:
        engine.dispose()


def check_archive(sc: Scenario, accounts: list[str], count: int, partitions: int, blob_size: int = 2000) -> None:
    want = expected_ids(sc, accounts, count, partitions)
    rows = archived_rows(sc)
    keys = [k for _, k in rows]
    assert len(keys) == len(set(keys)), "duplicate rows in the record sink"
    assert set(keys) == want, f"missing {sorted(want - set(keys))[:5]}, extra {sorted(set(keys) - want)[:5]}"
    files = {p.relative_to(sc.files).as_posix(): p for p in Path(sc.files).rglob("*.bin")}
    assert len(files) == len(want), f"{len(files)} files for {len(want)} records"
    for a in accounts:
        acct = sc.account(a)
        for p in range(partitions):
            for n in range(count):
                path = files.get(f"{acct}/p{p}/{item_id(acct, f'p{p}', n)}.bin")
                assert path is not None, f"no file for {acct} p{p} #{n}"
                data = path.read_bytes()
                want_bytes = blob_bytes(acct, f"p{p}", n, blob_size)
                assert hashlib.sha256(data).digest() == hashlib.sha256(want_bytes).digest(), f"bytes differ: {path}"
