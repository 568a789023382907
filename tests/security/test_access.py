"""Every authenticated route refuses a missing, expired, revoked or forged session: 401, the error shape, no data.

Also: every route declares its access, and a second user is answered on
every route of another's site exactly as for an unknown site; session tokens
are 256 random bits and only their SHA-256 reaches the disk; login brute
force is throttled per (client network, username) and per client network,
never for the owner on another network; a wrong username, a wrong password
and an account whose hash cannot be checked here take the same time to refuse.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import sqlite3
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from medama_core import auth, passwords
from medama_core.app import DEBUG_ROUTES, HIDDEN_SITE_STATUS, ROUTES, check_access_declared
from medama_core.http.router import Route
from medama_core.permissions import SITE_SCOPED, Access
from tests.helpers import Client, LiveServer, Result, live_server

SITE = "example.com"
PUBLIC = {"/health", "/event/ping", "/event/hit", "/event", "/send", "/auth/config", "/auth/login", "/auth/logout",
          "/share/{share}/auth"}  # fmt: skip
ADMIN, PASSWORD = "admin", "CHANGE_ME_ON_FIRST_LOGIN"
# A body each write route would accept from a logged-in user, so the session is the only thing wrong.
BODIES: dict[tuple[str, str], object] = {
    ("PATCH", "/user"): {"username": "intruder"},
    ("PATCH", "/settings/usage"): {"threads": 3},
    ("PATCH", "/tenant/settings"): {"blockedIPs": ["192.0.2.1"]},
    ("POST", "/websites"): {"hostname": "intruder.example"},
    ("PATCH", "/websites/{hostname}"): {"hostname": "intruder.example"},
}
# A query each read route needs besides the session, so the session is the only thing checked.
QUERIES = {
    "/websites/sparklines": f"?hostnames={SITE}&start=2024-06-01T00:00:00Z&end=2024-06-01T23:59:59Z&interval=hour"
}
# (method, route path, URL path): the API routes live under /api, the profiling pages (-profiler) outside it.
# Share links' routes answer to the link, not to a session: tests/security/test_permissions.py walks them.
PRIVATE = [
    (r.method, r.path, "/api" + r.path) for r in ROUTES if r.path not in PUBLIC and r.access is not Access.SHARE_READ
]
PRIVATE += [(r.method, r.path, r.path) for r in DEBUG_ROUTES]


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("access"), level="warn", profiler=True) as server:
        client = server.client()
        client.login(ADMIN, PASSWORD)
        assert client.post("/api/websites", json_body={"hostname": SITE}).status == 201
        client.close()
        yield server


def login_token(server: LiveServer) -> str:
    client = server.client()
    try:
        client.login(ADMIN, PASSWORD)
        return client.cookies[auth.COOKIE_NAME]
    finally:
        client.close()


def meta_db(server: LiveServer) -> sqlite3.Connection:
    return sqlite3.connect(server.config.appdb, timeout=10)


def expired_token(server: LiveServer) -> str:
    token = login_token(server)
    conn = meta_db(server)
    with conn:
        conn.execute("UPDATE sessions SET date_expires = ? WHERE token_hash = ?", (int(time.time()) - 1,
                     auth.token_hash(token)))  # fmt: skip
    conn.close()
    return token


def revoked_token(server: LiveServer) -> str:
    token = login_token(server)
    client = server.client()
    try:
        assert client.post("/api/auth/logout", headers={"Cookie": f"{auth.COOKIE_NAME}={token}"}).status == 204
    finally:
        client.close()
    return token


def forged_tokens(server: LiveServer) -> dict[str, str]:
    real = login_token(server)
    flipped = real[:-1] + ("A" if real[-1] != "A" else "B")
    hashed = base64.urlsafe_b64encode(auth.token_hash(real)).decode().rstrip("=")  # what the database holds
    return {
        "random": secrets.token_urlsafe(auth.TOKEN_BYTES),
        "one character changed": flipped,
        "stored hash as cookie": hashed,
        "too short": real[:20],
        "padded": real + "=",
        "sql": "' OR '1'='1",
        "upstream style": "MTIzNDU2Nzg5MDEy" + "A" * 40,
        "empty": "",
    }


def credentials(server: LiveServer) -> dict[str, dict[str, str]]:
    """Cookie headers for each way of not having a valid session."""
    cases = {"no session": {}}
    cases["expired"] = {"Cookie": f"{auth.COOKIE_NAME}={expired_token(server)}"}
    cases["revoked"] = {"Cookie": f"{auth.COOKIE_NAME}={revoked_token(server)}"}
    for name, token in forged_tokens(server).items():
        cases[f"forged ({name})"] = {"Cookie": f"{auth.COOKIE_NAME}={token}"}
    cases["other cookie name"] = {"Cookie": f"_me_session={login_token(server)}"}
    return cases


def test_every_private_route_refuses_every_bad_session(running: LiveServer) -> None:
    cases = credentials(running)
    client = running.client()
    failures = []
    try:
        for method, path, url in PRIVATE:
            body = BODIES.get((method, path))
            target = url.replace("{hostname}", SITE)
            for name, headers in cases.items():
                raw = json.dumps(body).encode() if body is not None else None
                all_headers = {**headers, "Content-Type": "application/json"} if raw is not None else headers
                result = client.request(method, target, body=raw, headers=all_headers)
                error = result.json().get("error") if result.body.startswith(b"{") else None
                if result.status != 401 or set(result.json()) != {"error"} or error["code"] != 401:
                    failures.append((method, path, name, result.status, result.body[:100]))
                if result.header_values("set-cookie"):
                    failures.append((method, path, name, "set a cookie"))
    finally:
        client.close()
    assert not failures, failures[:10]
    assert len(PRIVATE) >= 28


def test_nothing_changed_behind_the_refusals(running: LiveServer) -> None:
    client = running.client()
    try:
        client.login(ADMIN, PASSWORD)
        assert client.get("/api/user").json()["username"] == ADMIN
        assert [w["hostname"] for w in client.get("/api/websites").json()] == [SITE]
        assert client.get("/api/tenant/settings").json()["blockedIPs"] == []
    finally:
        client.close()


def test_a_valid_session_is_accepted_on_every_private_route(running: LiveServer) -> None:
    """The control: with a real session none of these answers 401, so the refusals above are about the cookie."""
    token = login_token(running)
    client = running.client()
    try:
        for method, path, url in PRIVATE:
            if method in ("PATCH", "POST", "DELETE"):
                continue  # writes were checked refused; here reads suffice
            target = url.replace("{hostname}", SITE) + QUERIES.get(path, "")
            result = client.request(method, target, headers={"Cookie": f"{auth.COOKIE_NAME}={token}"})
            assert result.status == 200, (method, path, result.status, result.body[:200])
    finally:
        client.close()


def test_tokens_are_random_256_bits_and_stored_only_hashed(running: LiveServer) -> None:
    tokens = [login_token(running) for _ in range(5)]
    assert len(set(tokens)) == 5
    for token in tokens:
        assert len(base64.urlsafe_b64decode(token + "=")) == 32  # 256 bits
    conn = meta_db(running)
    try:
        stored = {row[0] for row in conn.execute("SELECT token_hash FROM sessions")}
    finally:
        conn.close()
    for token in tokens:
        assert hashlib.sha256(token.encode()).digest() in stored
    files = [Path(running.config.appdb), *Path(running.config.appdb).parent.glob("me_meta.db-*")]
    data = b"".join(path.read_bytes() for path in files if path.exists())
    for token in tokens:
        assert token.encode() not in data, "a session token is on disk in the clear"


def test_login_brute_force_is_throttled_per_network_and_username_and_per_network(tmp_path: Path) -> None:
    with live_server(tmp_path, level="warn", trustedproxies=("loopback",)) as server:
        client = server.client()
        try:
            statuses = []
            for i in range(12):  # a new address of one /24 each time: the (network, username) counter must stop it
                result = client.post("/api/auth/login", json_body={"username": ADMIN, "password": f"guess-{i}"},
                                     headers={"X-Forwarded-For": f"198.51.100.{i + 1}"})  # fmt: skip
                statuses.append(result.status)
            assert statuses[:5] == [401] * 5
            assert set(statuses[5:]) == {429}, statuses
            right = client.post("/api/auth/login", json_body={"username": ADMIN, "password": PASSWORD},
                                headers={"X-Forwarded-For": "198.51.100.200"})  # fmt: skip
            assert right.status == 429 and int(right.headers["retry-after"]) >= 1  # a guesser cannot tell
            elsewhere = client.post("/api/auth/login", json_body={"username": ADMIN, "password": PASSWORD},
                                    headers={"X-Forwarded-For": "192.0.2.1"})  # fmt: skip
            assert elsewhere.status == 200, "the owner on another network was locked out"
            statuses = []
            for i in range(24):  # one address, a new username each time: the network's counter must stop it
                result = client.post("/api/auth/login", json_body={"username": f"user{i}", "password": "guess-1"},
                                     headers={"X-Forwarded-For": "203.0.113.9"})  # fmt: skip
                statuses.append(result.status)
            assert statuses[:20] == [401] * 20
            assert set(statuses[20:]) == {429}, statuses
        finally:
            client.close()


TIMING_SAMPLES = 24
TIMING_TOLERANCE = 0.30  # medians within 30%: one check costs ~50 ms, so a real difference would be 100%


def test_wrong_username_and_wrong_password_take_the_same_time(tmp_path: Path) -> None:
    """Interleaved, each from a network of its own, so no attempt is throttled."""
    with live_server(tmp_path, level="warn", trustedproxies=("loopback",)) as server:
        client = server.client()
        wrong_user: list[float] = []
        wrong_password: list[float] = []
        try:
            client.login(ADMIN, PASSWORD)  # warm-up: the first hash check loads the library
            for i in range(TIMING_SAMPLES):
                for username, samples in ((f"nobody-{i}", wrong_user), (ADMIN, wrong_password)):
                    headers = {"X-Forwarded-For": f"198.18.{2 * i + len(samples)}.1"}  # a network of its own
                    started = time.perf_counter()
                    result = client.post("/api/auth/login", json_body={"username": username, "password": "wrong-pw"},
                                         headers=headers)  # fmt: skip
                    samples.append(time.perf_counter() - started)
                    assert result.status == 401, result.body
                    assert result.json()["error"]["message"] == "user not found"
        finally:
            client.close()
    user_median, password_median = statistics.median(wrong_user), statistics.median(wrong_password)
    difference = abs(user_median - password_median) / max(user_median, password_median)
    print(f"wrong username: median {user_median * 1000:.1f} ms; wrong password: median {password_median * 1000:.1f} ms")
    assert difference <= TIMING_TOLERANCE, (user_median, password_median)
    assert min(user_median, password_median) > 0.005, "a password check that fast would not be one"


def test_a_deleted_users_session_is_refused(tmp_path: Path) -> None:
    with live_server(tmp_path, level="warn") as server:
        token = login_token(server)
        client = Client(server.port)
        try:
            headers = {"Cookie": f"{auth.COOKIE_NAME}={token}"}
            assert client.delete("/api/user", headers=headers, json_body={"currentPassword": PASSWORD}).status == 204
            assert client.get("/api/user", headers=headers).status == 401
            assert client.get("/api/websites", headers=headers).status == 401
        finally:
            client.close()


# --- who may see which site: every site-scoped route, two users ---

OWNER_SITE = "xss.example"
SAMPLES = Path(__file__).resolve().parent.parent / "importers" / "samples"
OTHER_PASSWORD = "intruder-pass"
CHROME_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
# A body each site-scoped write would accept from the site's owner (a rename to the same name changes nothing;
# an import of GoatCounter's sample export, as a dry run, stores nothing), with its query.
SITE_BODIES: dict[tuple[str, str], object] = {
    ("PATCH", "/websites/{hostname}"): {"hostname": OWNER_SITE},
    ("POST", "/websites/{hostname}/shares"): {"name": "a link"},
    ("POST", "/websites/{hostname}/import"): (SAMPLES / "goatcounter-export.csv").read_bytes(),
    ("PATCH", "/websites/{hostname}/settings"): {"outboundLinks": True},
    ("POST", "/websites/{hostname}/annotations"): {"start": "2024-06-01", "text": "a note"},
    ("POST", "/websites/{hostname}/goals"): {"page": "/signup/*"},
}
SITE_QUERIES = {("POST", "/websites/{hostname}/import"): "?from=goatcounter&dry_run=true"}
SITE_ROUTES = [r for r in ROUTES if "{hostname}" in r.path]


def key(route: Route[Any]) -> tuple[str, str]:
    return route.method, route.path


def add_user(server: LiveServer, username: str, password: str) -> None:
    """A second account in me_meta.db: a viewer granted no site."""
    with sqlite3.connect(server.config.appdb) as conn:
        conn.execute(
            "INSERT INTO users (id, username, password, date_created, date_updated, settings, role)"
            " VALUES (:id, :username, :password, 1, 1, '{}', 'viewer')",
            {"id": f"user_{username}", "username": username, "password": passwords.hash_password(password)},
        )


def test_every_route_declares_an_access_and_the_app_refuses_one_that_does_not() -> None:
    for route in (*ROUTES, *DEBUG_ROUTES):
        assert isinstance(route.access, Access), (route.method, route.path)
        assert (route.access is Access.PUBLIC) == (route.path in PUBLIC), (route.method, route.path)
        # A route about one site names it, and only such a route has a site-scoped access.
        assert ("{hostname}" in route.path) == (route.access in SITE_SCOPED), (route.method, route.path)
    assert {r.path.split("/")[1] for r in SITE_ROUTES} == {"website", "websites"}
    with pytest.raises(ValueError, match="declares no access"):
        check_access_declared((*ROUTES, Route("GET", "/new/{hostname}", ROUTES[0].handler)))


def test_a_second_user_gets_website_not_found_on_every_route_of_the_owners_site(tmp_path: Path) -> None:
    """Each route under /api/website/ and /api/websites/{hostname}: the owner is served, another user is
    answered exactly as for a site that does not exist (upstream's 401 where upstream had it), without data."""
    with live_server(tmp_path, level="warn") as server:
        add_user(server, "intruder", OTHER_PASSWORD)
        owner, intruder = server.client(), server.client()
        try:
            owner.login(ADMIN, PASSWORD)
            intruder.login("intruder", OTHER_PASSWORD)
            assert owner.post("/api/websites", json_body={"hostname": OWNER_SITE}).status == 201
            hit = {"b": "owner-view", "e": "load", "u": f"https://{OWNER_SITE}/secret-page", "r": "", "p": True,
                   "q": True, "t": "Europe/Paris", "d": {"plan": "secret-plan"}}  # fmt: skip
            headers = {"User-Agent": CHROME_UA, "Accept-Language": "fr-FR"}
            assert owner.post("/api/event/hit", json_body=hit, headers=headers).status == 204
            share = owner.post(f"/api/websites/{OWNER_SITE}/shares", json_body={}).json()["id"]
            note = owner.post(f"/api/websites/{OWNER_SITE}/annotations", json_body={"start": "2024-06-01", "text": "x"})
            goal = owner.post(f"/api/websites/{OWNER_SITE}/goals", json_body={"property": "plan"}).json()["id"]
            failures = []
            # Writes last: deleting the site ends it, so the owner's turn at it comes after everything else.
            last = ("DELETE", "/websites/{hostname}")
            for route in sorted(SITE_ROUTES, key=lambda r: (r.method == "DELETE", key(r) == last)):
                ident = share if "/shares/" in route.path else goal if "/goals/" in route.path else note.json()["id"]
                path = route.path.replace("{hostname}", OWNER_SITE).replace("{id}", ident)
                url = "/api" + path + SITE_QUERIES.get(key(route), "")
                body = SITE_BODIES.get(key(route))
                raw = {"body": body} if isinstance(body, bytes) else {"json_body": body}
                hidden = HIDDEN_SITE_STATUS.get((route.method, route.path), 404)
                refused = intruder.request(route.method, url, **raw)
                if (refused.status, refused.body) != (hidden, b'{"error":{"code":%d,"message":"website not found"}}'
                                                      % hidden):  # fmt: skip
                    failures.append(("intruder", route.method, route.path, refused.status, refused.body[:120]))
                unknown = intruder.request(route.method, url.replace(OWNER_SITE, "nothing.example"), **raw)
                if unknown.status != 404:
                    failures.append(("unknown site", route.method, route.path, unknown.status))
                served = owner.request(route.method, url, **raw)
                if served.status not in (200, 201, 204):
                    failures.append(("owner", route.method, route.path, served.status, served.body[:120]))
            assert not failures, failures
            assert intruder.get("/api/websites").json() == []
        finally:
            owner.close()
            intruder.close()


def test_the_owners_numbers_are_what_the_intruder_was_refused(tmp_path: Path) -> None:
    """The control for the test above: the stats routes do hold the owner's data, so a refusal hides something."""
    with live_server(tmp_path, level="warn") as server:
        add_user(server, "intruder", OTHER_PASSWORD)
        owner, intruder = server.client(), server.client()
        try:
            owner.login(ADMIN, PASSWORD)
            intruder.login("intruder", OTHER_PASSWORD)
            assert owner.post("/api/websites", json_body={"hostname": OWNER_SITE}).status == 201
            hit = {"b": "owner-view", "e": "load", "u": f"https://{OWNER_SITE}/secret-page", "r": "", "p": True,
                   "q": True, "t": "Europe/Paris", "d": {"plan": "secret-plan"}}  # fmt: skip
            headers = {"User-Agent": CHROME_UA, "Accept-Language": "fr-FR"}
            assert owner.post("/api/event/hit", json_body=hit, headers=headers).status == 204
            for name in ("summary", "pages", "properties"):
                url = f"/api/website/{OWNER_SITE}/{name}"
                assert owner.get(url).status == 200
                assert error_of(intruder.get(url)) == (404, "website not found"), name
            assert owner.get(f"/api/website/{OWNER_SITE}/summary").json()["current"]["pageviews"] == 1
            assert owner.get(f"/api/website/{OWNER_SITE}/pages").json()[0]["path"] == "/secret-page"
            assert owner.get(f"/api/website/{OWNER_SITE}/properties").json()[0]["name"] == "plan"
        finally:
            owner.close()
            intruder.close()


def error_of(result: Result) -> tuple[int, str]:
    return result.status, result.json()["error"]["message"]
