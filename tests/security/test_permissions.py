"""The permission table: every operation of openapi.yaml, called as every kind of caller, answers as written here.

One live server holds two sites, an admin, a viewer granted one site and a
viewer granted none, the admin's API keys (read, admin, expired, revoked)
and share links of the granted site (open, password-protected, expired).
Each operation gets one probe request built so that an allowed caller gets a
known answer that changes nothing (an invalid body: 400; a missing id: 404;
a read: 200), while a refusal comes from the access check before the body is
read (401 unknown caller, 403 known but not allowed, 404 a site the caller may
not know of). A route missing from TABLE fails `test_every_operation_is_in_the_table`.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import pytest

from medama_core import apikeys, auth, sharelinks
from medama_core.app import API_PREFIX, ROUTES
from medama_core.permissions import Access
from tests.helpers import Client, LiveServer, Result, live_server

yaml = pytest.importorskip("yaml")

SITE, OTHER, DOOMED = "granted.example", "other.example", "doomed.example"
ADMIN_PASSWORD = "admin-pass-1"
VIEWER_PASSWORD = "viewer-pass-1"
SPARK = "?hostnames={hostname}&start=2024-06-01T00:00:00Z&end=2024-06-01T23:59:59Z&interval=hour"

# The callers, in the table's column order.
CALLERS = (
    "admin",  # a signed-in admin (session cookie)
    "viewer+",  # a signed-in viewer granted SITE
    "viewer-",  # a signed-in viewer granted no site
    "key:read",  # the admin's API key of scope read
    "key:admin",  # the admin's API key of scope admin
    "key:expired",  # an admin-scope key past its expiry
    "key:revoked",  # an admin-scope key deleted by its owner
    "share",  # an open share link of SITE (no password)
    "share+pw",  # a password-protected share, with the cookie its password gave
    "share-pw",  # the same share without that cookie
    "share:expired",  # a share link past its expiry
    "nobody",  # no credentials at all
)


def row(admin: int, viewer_in: int, viewer_out: int, key_read: int, key_admin: int) -> tuple[int, ...]:
    """A private route: expired and revoked keys, share links and nobody are all unknown callers (401)."""
    return (admin, viewer_in, viewer_out, key_read, key_admin, 401, 401, 401, 401, 401, 401, 401)


def public(status: int) -> tuple[int, ...]:
    return (status,) * len(CALLERS)


# Share routes: only the link opens them; accounts and keys call them with the password share, uncookied.
SHARED = (401, 401, 401, 401, 401, 401, 401, 200, 200, 401, 404, 401)

# (method, path) -> each caller's status, in CALLERS order.
TABLE: dict[tuple[str, str], tuple[int, ...]] = {
    ("GET", "/health"): public(200),
    ("GET", "/event/ping"): public(200),
    ("POST", "/event/hit"): public(400),
    ("POST", "/event"): public(400),
    ("POST", "/send"): public(400),
    ("GET", "/auth/config"): public(200),
    ("POST", "/auth/login"): public(400),
    ("POST", "/auth/logout"): public(204),
    #                                     admin viewer+ viewer- key:read key:admin
    ("GET", "/user"): row(200, 200, 200, 200, 200),
    ("PATCH", "/user"): row(400, 400, 400, 403, 400),
    ("DELETE", "/user"): row(400, 400, 400, 403, 400),
    ("GET", "/user/usage"): row(200, 403, 403, 403, 200),
    ("GET", "/user/keys"): row(200, 200, 200, 403, 403),
    ("POST", "/user/keys"): row(400, 400, 400, 403, 403),
    ("DELETE", "/user/keys/{id}"): row(404, 404, 404, 403, 403),
    ("POST", "/user/totp"): row(200, 200, 200, 403, 403),
    ("POST", "/user/totp/confirm"): row(400, 400, 400, 403, 403),
    ("DELETE", "/user/totp"): row(400, 400, 400, 403, 403),
    ("GET", "/users"): row(200, 403, 403, 403, 200),
    ("POST", "/users"): row(400, 403, 403, 403, 400),
    ("PATCH", "/users/{username}"): row(400, 403, 403, 403, 400),
    ("DELETE", "/users/{username}"): row(404, 403, 403, 403, 404),
    ("GET", "/settings/usage"): row(200, 403, 403, 403, 200),
    ("PATCH", "/settings/usage"): row(400, 403, 403, 403, 400),
    ("GET", "/tenant/settings"): row(200, 403, 403, 403, 200),
    ("PATCH", "/tenant/settings"): row(400, 403, 403, 403, 400),
    ("GET", "/websites"): row(200, 200, 200, 200, 200),
    ("POST", "/websites"): row(400, 403, 403, 403, 400),
    ("GET", "/websites/sparklines"): row(200, 200, 404, 200, 200),
    ("GET", "/websites/{hostname}"): row(200, 200, 401, 200, 200),  # upstream's 401 for another's site
    ("PATCH", "/websites/{hostname}"): row(400, 403, 401, 403, 400),
    ("DELETE", "/websites/{hostname}"): row(204, 403, 404, 403, 204),
    ("POST", "/websites/{hostname}/import"): row(400, 403, 404, 403, 400),
    ("GET", "/websites/{hostname}/shares"): row(200, 403, 404, 403, 200),
    ("POST", "/websites/{hostname}/shares"): row(400, 403, 404, 403, 400),
    ("DELETE", "/websites/{hostname}/shares/{id}"): row(204, 403, 404, 403, 204),
    # A site's own settings, its chart's notes, its raw export (insights): read with the site, changed by admins.
    ("GET", "/websites/{hostname}/settings"): row(200, 200, 404, 200, 200),
    ("PATCH", "/websites/{hostname}/settings"): row(400, 403, 404, 403, 400),
    ("GET", "/websites/{hostname}/annotations"): row(200, 200, 404, 200, 200),
    ("POST", "/websites/{hostname}/annotations"): row(400, 403, 404, 403, 400),
    ("DELETE", "/websites/{hostname}/annotations/{id}"): row(404, 403, 404, 403, 404),
    ("GET", "/websites/{hostname}/export"): row(200, 200, 404, 200, 200),
    ("GET", "/website/{hostname}/live"): row(200, 200, 404, 200, 200),  # the pages open now: never a share's
    # How much background work the site's numbers wait for (longtail): read with the site, never a share's.
    ("GET", "/website/{hostname}/progress"): row(200, 200, 404, 200, 200),
    # Goals: read with the site, defined by admins; their numbers are not a share's.
    ("GET", "/websites/{hostname}/goals"): row(200, 200, 404, 200, 200),
    ("POST", "/websites/{hostname}/goals"): row(400, 403, 404, 403, 400),
    ("DELETE", "/websites/{hostname}/goals/{id}"): row(404, 403, 404, 403, 404),
    ("GET", "/website/{hostname}/goals"): row(200, 200, 404, 200, 200),
    ("GET", "/drops"): row(200, 200, 200, 200, 200),
    **{
        ("GET", f"/website/{{hostname}}/{name}"): row(200, 200, 404, 200, 200)
        for name in (
            "summary",
            "pages",
            "entries",
            "exits",
            "time",
            "referrers",
            "sources",
            "mediums",
            "campaigns",
            "browsers",
            "os",
            "devices",
            "countries",
            "languages",
            "properties",
            "imported",
        )
    },  # fmt: skip
    ("GET", "/share/{share}"): SHARED,
    ("POST", "/share/{share}/auth"): public(400),
    **{
        ("GET", f"/share/{{share}}/{name}"): SHARED
        for name in (
            "summary",
            "pages",
            "entries",
            "exits",
            "time",
            "referrers",
            "sources",
            "mediums",
            "campaigns",
            "browsers",
            "os",
            "devices",
            "countries",
            "languages",
            "properties",
            "imported",
        )
    },  # fmt: skip
}

# An invalid JSON body: every write an allowed caller makes answers 400 before it changes anything.
INVALID = b"[]"


@dataclass
class World:
    server: LiveServer
    admin: Client
    headers: dict[str, dict[str, str]]  # caller -> credentials sent on every request
    shares: dict[str, str]  # caller -> the share id its share routes name
    secrets: list[str] = field(default_factory=list)  # every secret made, to look for in logs and answers


def documented_operations() -> set[tuple[str, str]]:
    text = resources.files("medama_core").joinpath("static", "openapi.yaml").read_text(encoding="utf-8")
    document = yaml.safe_load(text)
    return {
        (method.upper(), path) for path, item in document["paths"].items() for method in item if method != "parameters"
    }


def _ok(result: Result, *statuses: int) -> Result:
    assert result.status in statuses, (result.status, result.body[:300])
    return result


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with live_server(tmp_path_factory.mktemp("permissions"), level="info") as server:
        admin = server.client()
        admin.login()
        _ok(
            admin.patch(
                "/api/user", json_body={"password": ADMIN_PASSWORD, "currentPassword": "CHANGE_ME_ON_FIRST_LOGIN"}
            ),
            200,
        )
        for site in (SITE, OTHER):
            _ok(admin.post("/api/websites", json_body={"hostname": site}), 201)
        for name, sites in (("viewer-in", [SITE]), ("viewer-out", [])):
            body = {"username": name, "password": VIEWER_PASSWORD, "role": "viewer", "websites": sites}
            _ok(admin.post("/api/users", json_body=body), 201)
        viewer_in, viewer_out = server.client(), server.client()
        viewer_in.login("viewer-in", VIEWER_PASSWORD)
        viewer_out.login("viewer-out", VIEWER_PASSWORD)
        keys = {}
        for name, scope in (("read", "read"), ("admin", "admin"), ("expired", "admin"), ("revoked", "admin")):
            made = _ok(admin.post("/api/user/keys", json_body={"name": name, "scope": scope}), 201).json()
            keys[name] = made
        _ok(admin.delete(f"/api/user/keys/{keys['revoked']['id']}"), 204)
        with sqlite3.connect(server.config.appdb) as conn:
            conn.execute(
                "UPDATE api_keys SET date_expires = ? WHERE id = ?", (int(time.time()) - 1, keys["expired"]["id"])
            )
        open_share = _ok(admin.post(f"/api/websites/{SITE}/shares", json_body={"k": 0}), 201).json()
        pw_share = _ok(admin.post(f"/api/websites/{SITE}/shares", json_body={"password": "share-pass"}), 201).json()
        expired = _ok(admin.post(f"/api/websites/{SITE}/shares", json_body={"dateExpires": int(time.time()) + 60}), 201)
        expired_id = expired.json()["id"]
        with sqlite3.connect(server.config.appdb) as conn:
            conn.execute("UPDATE shares SET date_expires = ? WHERE id = ?", (int(time.time()) - 1, expired_id))
        opener = server.client()
        _ok(opener.post(f"/api/share/{pw_share['id']}/auth", json_body={"password": "share-pass"}), 204)
        share_cookie = opener.cookies[sharelinks.COOKIE_NAME]
        bearer = {name: {"Authorization": f"Bearer {made['key']}"} for name, made in keys.items()}
        cookie = lambda client: {"Cookie": f"{auth.COOKIE_NAME}={client.cookies[auth.COOKIE_NAME]}"}  # noqa: E731
        share_header = {"Cookie": f"{sharelinks.COOKIE_NAME}={share_cookie}"}
        headers = {
            "admin": cookie(admin),
            "viewer+": cookie(viewer_in),
            "viewer-": cookie(viewer_out),
            "key:read": bearer["read"],
            "key:admin": bearer["admin"],
            "key:expired": bearer["expired"],
            "key:revoked": bearer["revoked"],
            "share": {},
            "share+pw": share_header,
            "share-pw": {},
            "share:expired": {},
            "nobody": {},
        }
        shares = {"share": open_share["id"], "share+pw": pw_share["id"], "share-pw": pw_share["id"]}
        shares["share:expired"] = expired_id
        secrets = [made["key"] for made in keys.values()] + [
            "share-pass",
            share_cookie,
            ADMIN_PASSWORD,
            VIEWER_PASSWORD,
        ]
        try:
            yield World(server, admin, headers, shares, secrets)
        finally:
            for client in (admin, viewer_in, viewer_out, opener):
                client.close()


@dataclass
class Probe:
    url: str  # with {hostname}, {share}, {id}, {username} still to fill
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    setup: Callable[[World], dict[str, str]] | None = None  # run before each caller; its values fill the url


def _recreate_doomed(world: World) -> dict[str, str]:
    """DELETE /websites/{hostname} deletes: each caller gets a fresh site, granted to the granted viewer."""
    _ok(world.admin.post("/api/websites", json_body={"hostname": DOOMED}), 201, 409)
    _ok(world.admin.patch("/api/users/viewer-in", json_body={"websites": [SITE, DOOMED]}), 200)
    return {"hostname": DOOMED}


def _fresh_share(world: World) -> dict[str, str]:
    made = _ok(world.admin.post(f"/api/websites/{SITE}/shares", json_body={}), 201).json()
    return {"id": made["id"]}


def probe(method: str, path: str) -> Probe:
    """The request each caller makes to (method, path)."""
    url = API_PREFIX + path + (SPARK if path == "/websites/sparklines" else "")
    if (method, path) == ("POST", "/auth/logout"):  # a session of its own: the caller's must survive
        return Probe(url, headers={"Cookie": f"{auth.COOKIE_NAME}={auth.new_token()}"})
    if (method, path) == ("DELETE", "/websites/{hostname}"):
        return Probe(url, setup=_recreate_doomed)
    if (method, path) == ("DELETE", "/websites/{hostname}/shares/{id}"):
        return Probe(url, setup=_fresh_share)
    if (method, path) == ("POST", "/user/totp"):
        return Probe(url)  # no body: an allowed caller gets a pending secret, replaced by the next
    if method in ("GET", "HEAD"):
        return Probe(url)
    if (method, path) in (("DELETE", "/user/keys/{id}"), ("DELETE", "/users/{username}")):
        return Probe(url)  # an id no one has: an allowed caller gets 404, a refused one 401 or 403
    return Probe(url, body=INVALID, headers={"Content-Type": "application/json"})


def call(world: World, caller: str, method: str, path: str) -> Result:
    found = probe(method, path)
    values = {
        "hostname": SITE,
        "id": "missing-id",
        "username": "no-such-user",
        "share": world.shares.get(caller, world.shares["share-pw"]),
    }
    if found.setup is not None:
        values |= found.setup(world)
    url = found.url.format(**values) if "{" in found.url else found.url
    client = world.server.client()
    try:
        headers = {**world.headers[caller], **found.headers}
        return client.request(method, url, body=found.body, headers=headers)
    finally:
        client.close()


def test_every_operation_is_in_the_table() -> None:
    """A new route (in app.ROUTES or openapi.yaml) without a row here fails: decide who may call it first."""
    served = {(r.method, r.path) for r in ROUTES}
    assert set(TABLE) == served, (sorted(served - set(TABLE)), sorted(set(TABLE) - served))
    assert documented_operations() == served
    assert all(len(statuses) == len(CALLERS) for statuses in TABLE.values())


def test_the_table_follows_the_routes_declared_access() -> None:
    """Cross-check: public routes answer everyone alike, share routes only their links, the rest only accounts."""
    for route in ROUTES:
        statuses = dict(zip(CALLERS, TABLE[(route.method, route.path)], strict=True))
        if route.access is Access.PUBLIC:
            assert len(set(statuses.values())) == 1, route.path
        elif route.access is Access.SHARE_READ:
            assert statuses["share"] == 200 and statuses["nobody"] == 401 and statuses["admin"] == 401
        else:
            assert statuses["nobody"] == statuses["share"] == statuses["key:revoked"] == 401, route.path
            assert statuses["admin"] < 401 or route.method == "DELETE", route.path  # admins reach everything


def test_every_operation_answers_every_caller_as_the_table_says(world: World) -> None:
    failures = []
    for (method, path), statuses in TABLE.items():
        for caller, expected in zip(CALLERS, statuses, strict=True):
            result = call(world, caller, method, path)
            if result.status != expected:
                failures.append(
                    f"{method} {path} as {caller}: {result.status}, expected {expected}: {result.body[:120]!r}"
                )
            elif expected >= 400:
                assert result.json()["error"]["code"] == expected  # the one error shape
    assert not failures, "\n".join(failures)


def test_no_secret_appears_in_the_log_or_in_any_answer(world: World) -> None:
    """Keys, passwords and share cookies are shown once, where they are made; never logged or answered again."""
    answers = []
    for (method, path), _ in TABLE.items():
        if method == "GET":
            for caller in ("admin", "key:admin", "share", "share+pw"):
                answers.append(call(world, caller, method, path).body)
    listed = world.admin.get("/api/user/keys").body + world.admin.get(f"/api/websites/{SITE}/shares").body
    log = world.server.log_stream.getvalue().encode()
    hashes = []
    with sqlite3.connect(world.server.config.appdb) as conn:
        hashes += [bytes(row[0]).hex() for row in conn.execute("SELECT key_hash FROM api_keys")]
        hashes += [str(row[0]) for row in conn.execute("SELECT password FROM shares WHERE password IS NOT NULL")]
        hashes += [str(row[0]) for row in conn.execute("SELECT password FROM users")]
    for secret in [*world.secrets, *hashes]:
        for where, text in (("log", log), ("answers", b"".join(answers)), ("lists", listed)):
            assert secret.encode() not in text, f"a secret is in the {where}"
    assert b'"key":' not in listed and json.loads(world.admin.get("/api/user/keys").body)[0]["name"]


def test_a_key_does_no_more_than_its_owners_role(world: World) -> None:
    """A viewer's admin-scope key reads the viewer's granted site, and nothing the viewer could not."""
    viewer = world.server.client()
    try:
        viewer.login("viewer-in", VIEWER_PASSWORD)
        made = _ok(viewer.post("/api/user/keys", json_body={"name": "mine", "scope": "admin"}), 201).json()
        assert apikeys.well_formed(made["key"])
        bearer = {"Authorization": f"Bearer {made['key']}"}
        assert viewer.get(f"/api/website/{SITE}/summary", headers=bearer).status == 200
        assert viewer.get(f"/api/website/{OTHER}/summary", headers=bearer).status == 404
        assert viewer.get("/api/tenant/settings", headers=bearer).status == 403
        assert viewer.request("DELETE", f"/api/websites/{SITE}", headers=bearer).status == 403
        listed = {w["hostname"] for w in viewer.get("/api/websites", headers=bearer).json()}
        assert SITE in listed and OTHER not in listed
    finally:
        viewer.close()


def test_demo_mode_is_read_only_for_every_caller(tmp_path: Any) -> None:
    """-demo: every write of every kind of caller is 403 `user in demo mode`; reads still work."""
    with live_server(tmp_path, level="warn") as setup:
        admin = setup.client()
        admin.login()
        _ok(admin.post("/api/websites", json_body={"hostname": SITE}), 201)
        _ok(
            admin.post(
                "/api/users", json_body={"username": "viewer-in", "password": VIEWER_PASSWORD, "websites": [SITE]}
            ),
            201,
        )
        key = _ok(admin.post("/api/user/keys", json_body={"name": "k", "scope": "admin"}), 201).json()["key"]
        share = _ok(admin.post(f"/api/websites/{SITE}/shares", json_body={}), 201).json()["id"]
        admin.close()
    with live_server(tmp_path, level="warn", demo=True) as server:  # the same databases, now in demo mode
        admin, viewer, client = server.client(), server.client(), server.client()
        admin.login()
        viewer.login("viewer-in", VIEWER_PASSWORD)
        callers = {
            "admin": {"Cookie": f"{auth.COOKIE_NAME}={admin.cookies[auth.COOKIE_NAME]}"},
            "viewer": {"Cookie": f"{auth.COOKIE_NAME}={viewer.cookies[auth.COOKIE_NAME]}"},
            "key": {"Authorization": f"Bearer {key}"},
        }
        failures = []
        for route in ROUTES:
            if route.method == "GET" or route.access in (Access.PUBLIC, Access.SHARE_READ):
                continue
            url = API_PREFIX + route.path.format(hostname=SITE, id="x", username="viewer-in", share=share)
            for name, headers in callers.items():
                headers = {**headers, "Content-Type": "application/json"}
                result = client.request(route.method, url, body=INVALID, headers=headers)
                if (result.status, result.json()["error"]["message"]) != (403, auth.DEMO_MODE):
                    failures.append((route.method, route.path, name, result.status))
        assert not failures, failures
        assert admin.get(f"/api/share/{share}/summary").status == 200
        assert client.get(f"/api/website/{SITE}/pages", headers=callers["key"]).status == 200
        for each in (admin, viewer, client):
            each.close()
