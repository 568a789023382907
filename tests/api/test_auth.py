"""Sign-in, sessions and sign-out over real HTTP: cookie, server-side store, restart, revocation, 401s."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from medama_core import auth
from medama_core.app import ROUTES
from medama_core.permissions import Access
from tests.helpers import Client, LiveServer, live_server

ADMIN = {"username": "admin", "password": "CHANGE_ME_ON_FIRST_LOGIN"}


def error(result: Any) -> tuple[int, str]:
    """(status, message) of an error answer, checking it has the one shape."""
    body = result.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == result.status
    assert result.headers["content-type"] == "application/json"
    return result.status, body["error"]["message"]


def session_rows(server: LiveServer) -> list[tuple[bytes, str, int, int]]:
    with sqlite3.connect(server.config.appdb) as conn:
        return conn.execute("SELECT token_hash, user_id, date_created, date_expires FROM sessions").fetchall()


def test_full_cycle_login_use_logout_then_401(client: Client, server: LiveServer) -> None:
    assert error(client.get("/api/user")) == (401, "missing security token or cookie")
    result = client.post("/api/auth/login", json_body=ADMIN)
    assert result.status == 200
    assert result.body == b""
    cookie = client.cookies["_me_sess"]
    assert client.get("/api/user").json()["username"] == "admin"
    assert client.post("/api/websites", json_body={"hostname": "example.com"}).status == 201
    logout = client.post("/api/auth/logout")
    assert logout.status == 204
    (set_cookie,) = logout.header_values("set-cookie")
    assert set_cookie.startswith("_me_sess=;")
    assert "Expires=Thu, 01 Jan 1970 00:00:00 GMT" in set_cookie
    assert error(client.get("/api/user")) == (401, "missing security token or cookie")
    # The old cookie is dead on the server too (upstream kept it valid, spec §10.4).
    replay = client.get("/api/user", headers={"Cookie": f"_me_sess={cookie}"})
    assert error(replay) == (401, "unauthorised session")
    assert session_rows(server) == []


def test_cookie_attributes_and_server_side_storage(client: Client, server: LiveServer) -> None:
    result = client.post("/api/auth/login", json_body=ADMIN)
    (set_cookie,) = result.header_values("set-cookie")
    name_value, *attributes = [part.strip() for part in set_cookie.split(";")]
    assert sorted(attributes) == ["HttpOnly", "Path=/", "SameSite=Lax", "Secure"]  # no Expires/Max-Age
    token = name_value.removeprefix("_me_sess=")
    assert len(token) == 43  # 256 bits, base64url
    ((stored_hash, user_id, created, expires),) = session_rows(server)
    assert stored_hash == hashlib.sha256(token.encode()).digest()  # the token itself is not stored
    assert user_id.startswith("user_")
    assert expires - created == 30 * 24 * 3600
    assert abs(created - time.time()) < 60


def test_login_over_http_localhost(server: LiveServer) -> None:
    """Browsers keep Secure cookies on http://localhost; the server needs no TLS for it (docs/auth.md)."""
    client = Client(server.port, host="localhost")
    try:
        client.login()
        assert client.get("/api/user", headers={"Host": f"localhost:{server.port}"}).status == 200
    finally:
        client.close()


def test_sessions_survive_a_restart(tmp_path: Path) -> None:
    with live_server(tmp_path) as first:
        client = first.client()
        client.login()
        cookie = client.cookies["_me_sess"]
        client.close()
    with live_server(tmp_path) as second:
        client = second.client()
        client.cookies["_me_sess"] = cookie
        assert client.get("/api/user").status == 200
        assert client.post("/api/auth/logout").status == 204
        client.cookies["_me_sess"] = cookie
        assert error(client.get("/api/user")) == (401, "unauthorised session")
        client.close()


def test_expired_session_is_refused_and_deleted(client: Client, server: LiveServer) -> None:
    client.login()
    with sqlite3.connect(server.config.appdb) as conn:
        conn.execute("UPDATE sessions SET date_expires = :past", {"past": int(time.time()) - 1})
    assert error(client.get("/api/user")) == (401, "unauthorised session")
    assert session_rows(server) == []


def test_startup_purges_expired_sessions(tmp_path: Path) -> None:
    with live_server(tmp_path) as first:
        client = first.client()
        client.login()
        client.login()
        client.close()
        with sqlite3.connect(first.config.appdb) as conn:
            conn.execute(
                "UPDATE sessions SET date_expires = 1 WHERE token_hash = (SELECT min(token_hash) FROM sessions)"
            )
    with live_server(tmp_path) as second:
        deadline = time.monotonic() + 5
        while len(session_rows(second)) != 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(session_rows(second)) == 1


@pytest.mark.parametrize(
    "body, expected",
    [
        ({"username": "admin", "password": "wrong-password"}, (401, "user not found")),
        ({"username": "nobody", "password": "CHANGE_ME_ON_FIRST_LOGIN"}, (401, "user not found")),
        ({"username": "ADMIN", "password": "CHANGE_ME_ON_FIRST_LOGIN"}, (401, "user not found")),  # case-sensitive
        (
            {"username": "ad", "password": "CHANGE_ME_ON_FIRST_LOGIN"},
            (400, "username: must be 3 to 48 characters long"),
        ),
        ({"username": "a" * 49, "password": "whatever"}, (400, "username: must be 3 to 48 characters long")),
        ({"username": "admin", "password": "1234"}, (400, "password: must be 5 to 128 characters long")),
        ({"username": "admin", "password": "x" * 129}, (400, "password: must be 5 to 128 characters long")),
        ({"password": "CHANGE_ME_ON_FIRST_LOGIN"}, (400, "username: required field is missing")),
        ({"username": "admin"}, (400, "password: required field is missing")),
        ({"username": 5, "password": "CHANGE_ME_ON_FIRST_LOGIN"}, (400, "username: must be a string")),
        ({"username": None, "password": "CHANGE_ME_ON_FIRST_LOGIN"}, (400, "username: must be a string")),
        (["admin", "CHANGE_ME_ON_FIRST_LOGIN"], (400, "request body must be a JSON object")),
    ],
    ids=lambda v: str(v)[:40] if not isinstance(v, tuple) else None,
)
def test_login_errors(client: Client, body: Any, expected: tuple[int, str]) -> None:
    assert error(client.post("/api/auth/login", json_body=body)) == expected
    assert "set-cookie" not in client.post("/api/auth/login", json_body=body).headers


@pytest.mark.parametrize(
    "raw, content_type, status",
    [
        (b'{"username": "admin", "password": "CHANGE_ME_ON_FIRST_LOGIN"}', "text/plain", 415),
        (b'{"username": "admin", "password": "CHANGE_ME_ON_FIRST_LOGIN"}', None, 415),
        (b"username=admin&password=x", "application/x-www-form-urlencoded", 415),
        (b"", None, 400),
        (b"", "application/json", 400),
        (b'{"username": "admin", "password": ', "application/json", 400),
        (b'{"username": NaN}', "application/json", 400),
        (b"\xff\xfe\x00", "application/json", 400),
        (b"[" * 100_000, "application/json", 400),
        (b'{"username": "\\ud800abc", "password": "secret"}', "application/json", 400),  # lone surrogate
    ],
)
def test_login_body_errors(client: Client, raw: bytes, content_type: str | None, status: int) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    assert error(client.post("/api/auth/login", body=raw, headers=headers))[0] == status


def test_json_with_charset_parameter_is_accepted(client: Client) -> None:
    raw = b'{"username": "admin", "password": "CHANGE_ME_ON_FIRST_LOGIN"}'
    result = client.post("/api/auth/login", body=raw, headers={"Content-Type": "application/json; charset=utf-8"})
    assert result.status == 200


def test_logout_needs_the_cookie_but_not_a_live_session(client: Client) -> None:
    assert error(client.post("/api/auth/logout")) == (400, "missing _me_sess cookie")
    result = client.post("/api/auth/logout", headers={"Cookie": "_me_sess=not-a-session"})
    assert result.status == 204
    assert result.header_values("set-cookie")[0].startswith("_me_sess=;")


# The only routes answered without a session: tracking (spec §2.4, and Plausible's and Umami's event APIs),
# signing in and out, what the login page needs to know (whether the cookie is Secure), and the liveness
# probe a load balancer polls.
PUBLIC_PATHS = {
    "/event/ping",
    "/event/hit",
    "/event",
    "/send",
    "/auth/config",
    "/auth/login",
    "/auth/logout",
    "/health",
}
# Share links' routes answer to the link, not to a session (tests/security/test_permissions.py).
PRIVATE_ROUTES = sorted(
    {
        (route.method, route.path)
        for route in ROUTES
        if route.path not in PUBLIC_PATHS and route.access not in (Access.PUBLIC, Access.SHARE_READ)
    }
)


def test_every_route_but_the_public_ones_is_private() -> None:
    assert len(PRIVATE_ROUTES) >= 13


@pytest.mark.parametrize("method, path", PRIVATE_ROUTES)
@pytest.mark.parametrize(
    "cookie, message",
    [
        (None, "missing security token or cookie"),
        ("_me_sess=", "missing security token or cookie"),
        ("other=1", "missing security token or cookie"),
        ("_me_sess=garbage", "unauthorised session"),
        ("_me_sess=" + "A" * 43, "unauthorised session"),
    ],
)
def test_private_routes_need_a_session(
    client: Client, method: str, path: str, cookie: str | None, message: str
) -> None:
    headers = {"Cookie": cookie} if cookie else {}
    result = client.request(method, "/api" + path.replace("{hostname}", "example.com"), headers=headers)
    assert error(result) == (401, message)


def test_session_of_a_deleted_user_is_gone(client: Client, server: LiveServer) -> None:
    client.login()
    cookie = client.cookies["_me_sess"]
    assert client.delete("/api/user", json_body={"currentPassword": ADMIN["password"]}).status == 204
    result = client.get("/api/user", headers={"Cookie": f"_me_sess={cookie}"})
    assert error(result) == (401, "unauthorised session")


def test_cookie_helpers() -> None:
    token = auth.new_token()
    assert auth.session_cookie(token) == f"_me_sess={token}; Path=/; HttpOnly; Secure; SameSite=Lax"
    assert auth.new_token() != token
    assert auth.token_hash(token) == hashlib.sha256(token.encode()).digest()
