"""The session cookie's `Secure` attribute: always, but on plain HTTP with -securecookie=false; and what
a real browser on a non-secure origin (http://medama.test:PORT/, not localhost) does with each."""

from __future__ import annotations

import http.client
import json
import os
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import CHROMIUM, CHROMIUM_ARGS
from tests.helpers import Client, LiveServer, live_server

ADMIN = {"username": "admin", "password": "CHANGE_ME_ON_FIRST_LOGIN"}


def login_cookie(client: Client, headers: dict[str, str] | None = None) -> str:
    result = client.post("/api/auth/login", json_body=ADMIN, headers=headers)
    assert result.status == 200, result.body
    return result.headers["set-cookie"]


def attributes(cookie: str) -> list[str]:
    return [part.strip() for part in cookie.split(";")[1:]]


@pytest.fixture
def plain(tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(tmp_path, securecookie=False, trustedproxies=("loopback",)) as server:
        yield server


def test_by_default_the_cookie_is_secure_and_the_config_says_so(tmp_path: Path) -> None:
    with live_server(tmp_path) as server:
        client = server.client()
        assert client.get("/api/auth/config").json() == {"secureCookie": True}  # no login needed
        assert attributes(login_cookie(client)) == ["Path=/", "HttpOnly", "Secure", "SameSite=Lax"]
        logout = client.post("/api/auth/logout")
        assert "Secure" in attributes(logout.headers["set-cookie"])
        client.close()


def test_with_securecookie_false_plain_http_gets_a_cookie_without_secure(plain: LiveServer) -> None:
    client = plain.client()
    assert client.get("/api/auth/config").json() == {"secureCookie": False}
    assert attributes(login_cookie(client)) == ["Path=/", "HttpOnly", "SameSite=Lax"]
    assert client.get("/api/user").status == 200
    logout = client.post("/api/auth/logout")
    assert "Secure" not in attributes(logout.headers["set-cookie"]) and "Expires" in logout.headers["set-cookie"]
    client.close()


def test_a_trusted_proxy_saying_https_always_gets_secure(plain: LiveServer) -> None:
    client = plain.client()
    for proto in ("https", "HTTPS", "http, https"):
        assert "Secure" in attributes(login_cookie(client, {"X-Forwarded-Proto": proto})), proto
    assert "Secure" not in attributes(login_cookie(client, {"X-Forwarded-Proto": "http"}))
    client.close()


def test_a_forwarded_proto_from_an_untrusted_peer_is_ignored(tmp_path: Path) -> None:
    # Not a risk either way (Secure only makes the cookie stricter), but only proxies are believed.
    with live_server(tmp_path, securecookie=False) as server:
        client = server.client()
        assert "Secure" not in attributes(login_cookie(client, {"X-Forwarded-Proto": "https"}))
        client.close()


def test_our_tls_listener_always_gets_secure(tmp_path: Path) -> None:
    pytest.importorskip("cryptography")
    from tests.deploy.certs import CA

    ca = CA.create()
    cert, key, _ = ca.write(tmp_path, "stats.example")
    (tmp_path / "ca.pem").write_bytes(ca.pem())
    context = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    context.check_hostname = False
    overrides: dict[str, Any] = {"tlscert": str(cert), "tlskey": str(key), "httpsport": 0, "httpport": 0}
    with live_server(tmp_path, securecookie=False, **overrides) as server:
        conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=context, timeout=10)
        conn.request("GET", "/api/auth/config")
        assert json.loads(conn.getresponse().read()) == {"secureCookie": False}
        conn.request("POST", "/api/auth/login", json.dumps(ADMIN), {"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        assert response.status == 200
        assert "Secure" in attributes(response.getheader("Set-Cookie", ""))
        conn.close()


# A real browser on an origin that is not secure: a name other than localhost, over plain HTTP.


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        args = [*CHROMIUM_ARGS, "--host-resolver-rules=MAP medama.test 127.0.0.1"]
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        yield browser
        browser.close()


def browser_login(chromium: Any, port: int) -> tuple[bool, int, int]:
    """Open http://medama.test:PORT/, log in with fetch as the dashboard does; (secure context?, login, /user)."""
    context = chromium.new_context()
    try:
        page = context.new_page()
        page.goto(f"http://medama.test:{port}/api/health")
        secure, login, user = page.evaluate(
            """async (body) => {
                const login = await fetch('/api/auth/login', {method: 'POST', body,
                    headers: {'Content-Type': 'application/json'}, credentials: 'include'});
                const user = await fetch('/api/user', {credentials: 'include'});
                return [window.isSecureContext, login.status, user.status];
            }""",
            json.dumps(ADMIN),
        )
        return bool(secure), int(login), int(user)
    finally:
        context.close()


@pytest.mark.browser
def test_chromium_on_plain_http_drops_the_secure_cookie_and_keeps_the_other(
    chromium: Any, tmp_path: Path, plain: LiveServer
) -> None:
    assert browser_login(chromium, plain.port) == (False, 200, 200)  # -securecookie=false: login works
    with live_server(tmp_path / "default") as server:
        assert browser_login(chromium, server.port) == (False, 200, 401)  # the default: the cookie is dropped
