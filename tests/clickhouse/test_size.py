"""The database's size on disk as ClickHouse counts it (GET /api/user/usage), on 18.16 and on chDB."""

from __future__ import annotations

from medama_core.store.clickhouse import bulk, schema
from medama_core.store.clickhouse.client import Client
from tests.clickhouse.test_writes import row


def test_the_size_grows_with_the_rows(ch: Client) -> None:
    empty = schema.database_bytes(ch)
    bulk.insert_views(ch, [row(bid=f"s{i}", pathname=f"/{i}") for i in range(200)])
    assert schema.database_bytes(ch) > empty >= 0
