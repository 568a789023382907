"""Fixtures: one clickhouse-server for the session, and a fresh migrated database per test on each engine."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from medama_core.store.clickhouse.client import Client
from tests.engines import ENGINES, Server, clickhouse_server, fresh_client, server_binary


@pytest.fixture(scope="session")
def ch_server() -> Iterator[Server | None]:
    """The real server, or None when clickhouse-server is not installed (its tests then skip, saying so)."""
    if server_binary() is None:
        yield None
        return
    with clickhouse_server() as server:
        yield server


@pytest.fixture(params=ENGINES)
def ch(request: pytest.FixtureRequest, ch_server: Server | None) -> Iterator[Client]:
    """A Client on a new database: of the real clickhouse-server, then of chDB."""
    if request.param == "server" and ch_server is None:
        pytest.skip("SKIPPED LOUDLY: clickhouse-server is not installed (apt-get install clickhouse-server)")
    if request.param == "chdb":
        pytest.importorskip("chdb", reason="SKIPPED LOUDLY: chdb-core is not installed (requirements-dev.txt)")
    client = fresh_client(request.param, ch_server)
    yield client
    client.close()
