"""GET /api/user/usage on either engine: the node's disk, and what each store takes on its engine."""

from __future__ import annotations

from tests import stores
from tests.api.test_export import VIEWS
from tests.helpers import Client, LiveServer

ENGINES = {"sqlite": ("sqlite", "sqlite"), "pgch": ("postgres", "clickhouse")}


def test_usage_reports_the_disk_and_each_stores_size(client: Client, server: LiveServer, engine: str) -> None:
    client.login()
    stores.insert_views(server.config.analyticsdb, VIEWS)
    body = client.get("/api/user/usage").json()
    assert set(body) == {"cpu", "memory", "disk", "databases"}
    assert 0 < body["disk"]["used"] <= body["disk"]["total"]  # the files' disk, or the node's when both are servers
    meta, analytics = body["databases"]["meta"], body["databases"]["analytics"]
    assert (meta["engine"], analytics["engine"]) == ENGINES[engine]
    assert meta["bytes"] > 0 and analytics["bytes"] > 0, body["databases"]
    full = client.get("/api/settings/usage").json()["databases"]  # the same fields there
    assert (full["meta"]["engine"], full["analytics"]["engine"]) == ENGINES[engine]
