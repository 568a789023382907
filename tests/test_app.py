"""The application shell over a real socket: error shape, static files, compression, CORS, headers."""

from __future__ import annotations

import gzip
import sys
import tracemalloc
from pathlib import Path

from medama_core.app import GIL_SWITCH_INTERVAL_S, peer_network
from medama_core.assets import Assets
from tests.helpers import Client, LiveServer, live_server


def test_unknown_api_path_is_404_json(client: Client) -> None:
    result = client.get("/api/does/not/exist")
    assert result.status == 404
    assert result.headers["content-type"] == "application/json"
    assert result.json() == {"error": {"code": 404, "message": "api path not found"}}


def test_api_get_carries_commit_header_but_events_do_not(client: Client) -> None:
    assert client.get("/api/nope").headers["x-api-commit"] == "development"
    assert "x-api-commit" not in client.get("/api/event/nope").headers


def test_openapi_document_is_served(client: Client) -> None:
    result = client.get("/openapi.yaml")
    assert result.status == 200
    assert result.headers["content-type"].startswith("application/yaml")
    assert "etag" in result.headers


def test_spa_fallback_and_etag_revalidation(client: Client) -> None:
    index = client.get("/some/deep/link")
    assert index.status == 200 and index.headers["content-type"].startswith("text/html")
    assert index.headers["cache-control"] == "no-cache"
    again = client.get("/login", headers={"If-None-Match": index.headers["etag"]})
    assert again.status == 304 and again.body == b""
    assert client.get("/../etc/passwd").status == 200  # never a file outside the dashboard: the SPA shell


def test_tracker_script_is_served_with_cache_headers(client: Client) -> None:
    result = client.get("/script.js")
    assert result.status == 200, result.body
    assert result.headers["content-type"].startswith("application/javascript")
    assert result.headers["cache-control"] == "public, max-age=21600, stale-while-revalidate=86400"
    assert client.get("/scripts/default.js").body == result.body
    assert client.get("/scripts/missing.js").status == 404
    assert client.get("/script.js", headers={"If-None-Match": result.headers["etag"]}).status == 304


def test_head_mirrors_get_without_body(client: Client) -> None:
    got = client.get("/openapi.yaml")
    head = client.request("HEAD", "/openapi.yaml")
    assert head.status == 200 and head.body == b""
    assert head.headers["content-length"] == got.headers["content-length"]


def test_static_method_not_allowed(client: Client) -> None:
    result = client.delete("/script.js")
    assert result.status == 405 and result.headers["allow"] == "GET, HEAD"


def test_gzip_only_when_accepted_and_worth_it(client: Client, tmp_path: Path) -> None:
    plain = client.get("/openapi.yaml")
    zipped = client.get("/openapi.yaml", headers={"Accept-Encoding": "br, gzip;q=0.5"})
    if len(plain.body) >= 1024:
        assert zipped.headers["content-encoding"] == "gzip"
        assert gzip.decompress(zipped.body) == plain.body
        assert "content-encoding" not in client.get("/openapi.yaml", headers={"Accept-Encoding": "gzip;q=0"}).headers
    small = client.get("/api/nope", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in small.headers


def test_cors_is_permissive_on_events_and_static(client: Client) -> None:
    result = client.get("/script.js", headers={"Origin": "https://site.example"})
    assert result.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in result.headers
    pre = client.request(
        "OPTIONS",
        "/api/event/hit",
        headers={"Origin": "https://site.example", "Access-Control-Request-Method": "POST"},
    )
    assert pre.status == 204 and pre.headers["access-control-allow-origin"] == "*"
    assert "POST" in pre.headers["access-control-allow-methods"]


def test_cors_credentialed_only_for_listed_origins(tmp_path: Path) -> None:
    with live_server(tmp_path, corsorigins=("https://dash.example",)) as server:
        c = server.client()
        ok = c.get("/api/nope", headers={"Origin": "https://dash.example"})
        assert ok.headers["access-control-allow-origin"] == "https://dash.example"
        assert ok.headers["access-control-allow-credentials"] == "true"
        other = c.get("/api/nope", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
        pre = c.request(
            "OPTIONS",
            "/api/websites",
            headers={"Origin": "https://dash.example", "Access-Control-Request-Method": "PATCH"},
        )
        assert pre.status == 204 and "PATCH" in pre.headers["access-control-allow-methods"]
        events = c.get("/api/event/ping", headers={"Origin": "https://evil.example"})
        assert events.headers["access-control-allow-origin"] == "*"
        c.close()


def test_access_log_has_status_and_duration(server: LiveServer, client: Client) -> None:
    client.get("/api/nope")
    lines = [line for line in server.log_stream.getvalue().splitlines() if '"request"' in line]
    assert any('"status": 404' in line and '"duration_ms"' in line and '"path": "/api/nope"' in line for line in lines)


def test_asset_lookups_remember_nothing_of_names_that_are_not_files() -> None:
    # Each miss used to be cached: 5,000 requests for 16,000-letter /scripts/ names took RSS from 160
    # to 226 MiB, and 100,000 random dashboard paths 33 MiB more, never given back (issue 14).
    found = Assets()
    assert found.lookup("/scripts/default.js", "default") is not None
    shell = found.lookup("/warm-up", "default")  # the SPA shell, for any other path
    assert shell is not None
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(3000):
            assert found.lookup(f"/scripts/{i:05d}{'x' * 240}.js", "default") is None
            assert found.lookup(f"/scripts/{i:05d}{'x' * 16_000}.js", "default") is None
            assert found.lookup(f"/page/{i}/{'y' * 200}", "default") is shell
            assert found.lookup(f"/assets/{i}.js", "default") is shell
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 64 * 1024, f"{grown} bytes kept after 12,000 lookups of names that are not files"
    assert found.lookup("/__init__.py", "default") is shell  # the package's own files are not served


def test_connection_caps_group_peers_by_network() -> None:
    network = peer_network(("203.0.113.0/24", "loopback"))
    assert network("198.51.100.7") == network("198.51.100.250") == "198.51.100.0/24"
    assert network("198.51.101.7") == "198.51.101.0/24"
    assert network("::ffff:198.51.100.9") == "198.51.100.0/24"  # an IPv4 client of a dual-stack listener
    assert network("2001:db8:1:2::1") == network("2001:db8:1:ffff::2") == "2001:db8:1::/48"
    assert network("2001:db8:2::1") == "2001:db8:2::/48"
    for exempt in ("203.0.113.9", "127.0.0.1", "127.1.2.3", "::1", ""):  # trusted proxies; not an IP
        assert network(exempt) is None, exempt
    assert peer_network(())("127.0.0.1") == "127.0.0.0/24"


def test_serve_shortens_the_gil_switch_interval_while_it_runs(tmp_path: Path) -> None:
    # While the loop thread is busy, a database call waits about one switch interval at each GIL hand-off
    # (app.GIL_SWITCH_INTERVAL_S): serve sets the short one, and puts the process's own back when it stops.
    before = sys.getswitchinterval()
    assert before != GIL_SWITCH_INTERVAL_S
    with live_server(tmp_path):
        assert sys.getswitchinterval() == GIL_SWITCH_INTERVAL_S
    assert sys.getswitchinterval() == before
