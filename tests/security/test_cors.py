"""CORS: credentials only for the configured origins on the private API; the event routes never send them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import Client, LiveServer, live_server

ALLOWED = "https://dash.example"
STRANGERS = ("https://evil.example", "null", "https://dash.example.evil.example", "http://dash.example",
             "https://DASH.example", "https://dash.example:8443")  # fmt: skip
PRIVATE_PATHS = ("/api/user", "/api/websites", "/api/tenant/settings", "/api/website/example.com/summary")
EVENT_PATHS = ("/api/event/ping", "/api/event/hit")


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("cors"), level="warn", corsorigins=(ALLOWED,)) as server:
        yield server


@pytest.fixture(scope="module")
def unconfigured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("nocors"), level="warn") as server:
        yield server


def signed_in(server: LiveServer) -> Client:
    client = server.client()
    client.login()
    return client


def preflight(client: Client, path: str, origin: str, method: str = "GET") -> dict[str, str]:
    headers = {"Origin": origin, "Access-Control-Request-Method": method,
               "Access-Control-Request-Headers": "content-type"}  # fmt: skip
    result = client.request("OPTIONS", path, headers=headers)
    assert result.status == 204, (path, result.status)
    return result.headers


def test_configured_origin_gets_credentials_on_private_routes(configured: LiveServer) -> None:
    client = signed_in(configured)
    try:
        for path in PRIVATE_PATHS:
            result = client.get(path, headers={"Origin": ALLOWED})
            assert result.headers["access-control-allow-origin"] == ALLOWED, path
            assert result.headers["access-control-allow-credentials"] == "true", path
            assert "Origin" in result.headers.get("vary", ""), path
            allowed = preflight(client, path, ALLOWED, "PATCH")
            assert allowed["access-control-allow-origin"] == ALLOWED
            assert allowed["access-control-allow-credentials"] == "true"
        login = client.post("/api/auth/login", json_body={"username": "admin", "password": "CHANGE_ME_ON_FIRST_LOGIN"},
                            headers={"Origin": ALLOWED})  # fmt: skip
        assert login.headers["access-control-allow-credentials"] == "true"
    finally:
        client.close()


@pytest.mark.parametrize("origin", STRANGERS)
def test_other_origins_get_nothing_on_private_routes(configured: LiveServer, origin: str) -> None:
    client = signed_in(configured)
    try:
        for path in PRIVATE_PATHS:
            result = client.get(path, headers={"Origin": origin})
            assert "access-control-allow-origin" not in result.headers, (path, origin)
            assert "access-control-allow-credentials" not in result.headers, (path, origin)
            refused = preflight(client, path, origin, "DELETE")
            assert "access-control-allow-origin" not in refused and "access-control-allow-credentials" not in refused
    finally:
        client.close()


@pytest.mark.parametrize("origin", (ALLOWED, *STRANGERS))
def test_event_routes_are_open_and_never_credentialed(configured: LiveServer, origin: str) -> None:
    client = configured.client()
    try:
        for path in EVENT_PATHS:
            method = "POST" if path.endswith("hit") else "GET"
            result = client.request(method, path, body=b"{}" if method == "POST" else None,
                                    headers={"Origin": origin, "Content-Type": "text/plain"})  # fmt: skip
            assert result.headers.get("access-control-allow-origin") == "*", (path, origin)
            assert "access-control-allow-credentials" not in result.headers, (path, origin)
            opened = preflight(client, path, origin, method)
            assert opened.get("access-control-allow-origin") == "*"
            assert "access-control-allow-credentials" not in opened
    finally:
        client.close()


def test_without_configured_origins_nothing_is_credentialed(unconfigured: LiveServer) -> None:
    client = signed_in(unconfigured)
    try:
        for path in (*PRIVATE_PATHS, *EVENT_PATHS, "/", "/script.js"):
            for origin in (ALLOWED, *STRANGERS):
                result = client.get(path, headers={"Origin": origin})
                assert "access-control-allow-credentials" not in result.headers, (path, origin)
                assert result.headers.get("access-control-allow-origin") in (None, "*"), (path, origin)
                opened = preflight(client, path, origin, "PATCH")
                assert "access-control-allow-credentials" not in opened
    finally:
        client.close()


def test_credentials_never_go_with_a_wildcard(configured: LiveServer, unconfigured: LiveServer) -> None:
    """Browsers refuse `*` with credentials; a server sending both has a confused policy."""
    for server in (configured, unconfigured):
        client = signed_in(server)
        try:
            for path in (*PRIVATE_PATHS, *EVENT_PATHS, "/", "/openapi.yaml"):
                for origin in (ALLOWED, *STRANGERS):
                    result = client.get(path, headers={"Origin": origin})
                    both = (result.headers.get("access-control-allow-origin"),
                            result.headers.get("access-control-allow-credentials"))  # fmt: skip
                    assert both != ("*", "true"), (path, origin)
        finally:
            client.close()
