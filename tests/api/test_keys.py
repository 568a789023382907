"""API keys: made from a signed-in browser, shown once, used as `Authorization: Bearer`, revoked at once."""

from __future__ import annotations

import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medama_core import apikeys
from tests.helpers import Client, LiveServer, Result, live_server

SITE = "example.com"


def error(result: Result) -> tuple[int, str]:
    return result.status, result.json()["error"]["message"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, engine: str) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("keys"), level="warn") as running:
        client = running.client()
        client.login()
        assert client.post("/api/websites", json_body={"hostname": SITE}).status == 201
        client.close()
        yield running


@pytest.fixture
def admin(server: LiveServer) -> Iterator[Client]:
    client = server.client()
    client.login()
    yield client
    client.close()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_a_key_reads_stats_with_curl_and_stops_once_revoked(server: LiveServer, admin: Client) -> None:
    made = admin.post("/api/user/keys", json_body={"name": "curl", "scope": "read"})
    assert made.status == 201
    key = made.json()["key"]
    assert apikeys.well_formed(key)
    url = f"{server.url}/api/website/{SITE}/summary"
    curl = ["curl", "-sS", "-o", "/dev/stdout", "-w", "\n%{http_code}", "-H", f"Authorization: Bearer {key}", url]
    out = subprocess.run(curl, capture_output=True, text=True, timeout=30, check=True).stdout
    assert out.endswith("\n200") and '"current"' in out
    listed = admin.get("/api/user/keys").json()
    assert [k["name"] for k in listed] == ["curl"] and "key" not in listed[0]
    assert listed[0]["lastUsed"] is not None and abs(listed[0]["lastUsed"] - time.time()) < 60
    assert admin.delete(f"/api/user/keys/{made.json()['id']}").status == 204
    out = subprocess.run(curl, capture_output=True, text=True, timeout=30, check=True).stdout
    assert out.endswith("\n401") and "unknown, expired or revoked API key" in out
    assert error(admin.delete(f"/api/user/keys/{made.json()['id']}")) == (404, "API key not found")


def test_scopes_and_what_no_key_may_do(server: LiveServer, admin: Client) -> None:
    read = admin.post("/api/user/keys", json_body={"name": "r"}).json()  # read by default
    full = admin.post("/api/user/keys", json_body={"name": "a", "scope": "admin"}).json()
    assert (read["scope"], full["scope"]) == ("read", "admin")
    client = server.client()
    try:
        assert client.get("/api/websites", headers=bearer(read["key"])).json() == [{"hostname": SITE}]
        assert error(client.get("/api/tenant/settings", headers=bearer(read["key"])))[0] == 403
        assert error(client.patch("/api/user", json_body={"username": "x-y-z"}, headers=bearer(read["key"])))[0] == 403
        assert client.get("/api/tenant/settings", headers=bearer(full["key"])).status == 200
        # No key manages keys or two-factor login: a leaked key cannot mint another or lock the owner out.
        for method, path in (("GET", "/api/user/keys"), ("POST", "/api/user/totp"), ("DELETE", "/api/user/totp")):
            assert error(client.request(method, path, headers=bearer(full["key"])))[0] == 403
        # A bad key is refused even with a valid cookie alongside: the key says who is asking.
        both = {**bearer(apikeys.PREFIX + "A" * 43), "Cookie": f"_me_sess={admin.cookies['_me_sess']}"}
        assert error(client.get("/api/user", headers=both)) == (401, "unknown, expired or revoked API key")
    finally:
        client.close()


def test_expiry(server: LiveServer, admin: Client) -> None:
    assert error(admin.post("/api/user/keys", json_body={"name": "old", "dateExpires": int(time.time()) - 5}))[0] == 400
    made = admin.post("/api/user/keys", json_body={"name": "soon", "dateExpires": int(time.time()) + 3600}).json()
    client = server.client()
    try:
        assert client.get("/api/user", headers=bearer(made["key"])).status == 200
        with sqlite3.connect(server.config.appdb) as conn:
            conn.execute("UPDATE api_keys SET date_expires = ? WHERE id = ?", (int(time.time()), made["id"]))
        conn.close()
        assert error(client.get("/api/user", headers=bearer(made["key"])))[0] == 401
    finally:
        client.close()


def test_bad_key_requests_are_400(admin: Client) -> None:
    for body in (
        {},
        {"name": ""},
        {"name": "x" * 65},
        {"name": "k", "scope": "write"},
        {"name": "k", "dateExpires": "soon"},
    ):
        assert error(admin.post("/api/user/keys", json_body=body))[0] == 400, body


def test_only_the_hash_is_stored(server: LiveServer, admin: Client) -> None:
    key = admin.post("/api/user/keys", json_body={"name": "stored"}).json()["key"]
    with sqlite3.connect(server.config.appdb) as conn:
        stored = [bytes(row[0]) for row in conn.execute("SELECT key_hash FROM api_keys")]
    conn.close()
    assert apikeys.key_hash(key) in stored
    files = [Path(server.config.appdb), *Path(server.config.appdb).parent.glob("me_meta.db-*")]
    assert not any(key.encode() in path.read_bytes() for path in files if path.exists())


@settings(max_examples=200, deadline=None)  # pure and fast; a loaded CI machine must not fail it
@given(st.one_of(st.none(), st.text(max_size=80), st.from_regex(r"[Bb]earer +\S{0,60}", fullmatch=True)))
def test_any_authorization_header_is_a_token_or_none(header: str | None) -> None:
    token = apikeys.bearer_token(header)
    assert token is None or (header is not None and token in header and " " not in token)
    assert isinstance(apikeys.well_formed(token or ""), bool)
