"""Several accounts with roles: admins manage them under /users, viewers read the sites granted to them.

Also: a me_meta.db shaped like upstream's (no roles) opens with every user an
admin, and the last admin cannot be removed or made a viewer.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from medama_core import passwords
from tests.helpers import Client, LiveServer, Result, live_server

ADMIN_PASSWORD = "admin-pass-1"


def error(result: Result) -> tuple[int, str]:
    return result.status, result.json()["error"]["message"]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(tmp_path, level="warn") as running:
        yield running


@pytest.fixture
def admin(server: LiveServer) -> Iterator[Client]:
    client = server.client()
    client.login()
    assert (
        client.patch(
            "/api/user", json_body={"password": ADMIN_PASSWORD, "currentPassword": "CHANGE_ME_ON_FIRST_LOGIN"}
        ).status
        == 200
    )
    for site in ("a.example", "b.example"):
        assert client.post("/api/websites", json_body={"hostname": site}).status == 201
    yield client
    client.close()


def signed_in(server: LiveServer, username: str, password: str) -> Client:
    client = server.client()
    client.login(username, password)
    return client


def test_an_admin_invites_a_viewer_who_reads_only_the_granted_site(server: LiveServer, admin: Client) -> None:
    made = admin.post("/api/users", json_body={"username": "vera", "password": "vera-pass", "websites": ["A.example"]})
    assert made.status == 201
    assert made.json() | {"dateCreated": 0, "dateUpdated": 0} == {
        "username": "vera", "role": "viewer", "websites": ["a.example"], "totpEnabled": False,
        "dateCreated": 0, "dateUpdated": 0,
    }  # fmt: skip
    vera = signed_in(server, "vera", "vera-pass")
    try:
        assert vera.get("/api/user").json()["role"] == "viewer"
        assert vera.get("/api/websites").json() == [{"hostname": "a.example"}]
        assert vera.get("/api/website/a.example/summary").status == 200
        assert error(vera.get("/api/website/b.example/summary")) == (404, "website not found")
        assert error(vera.patch("/api/websites/a.example", json_body={"hostname": "c.example"})) == (
            403, "not allowed for this account or key")  # fmt: skip
        assert error(vera.post("/api/websites", json_body={"hostname": "c.example"}))[0] == 403
        assert error(vera.get("/api/users"))[0] == 403
        assert error(vera.get("/api/tenant/settings"))[0] == 403
        # A viewer changes their own password (with the current one), nothing of anyone else's.
        assert (
            vera.patch("/api/user", json_body={"password": "vera-new-1", "currentPassword": "vera-pass"}).status == 200
        )
        # The admin widens the grant; the viewer sees it at the next request.
        assert admin.patch("/api/users/vera", json_body={"websites": ["a.example", "b.example"]}).status == 200
        assert [w["hostname"] for w in vera.get("/api/websites").json()] == ["a.example", "b.example"]
        assert vera.get("/api/website/b.example/summary").status == 200
    finally:
        vera.close()
    listed = admin.get("/api/users").json()
    assert [(u["username"], u["role"], u["websites"]) for u in listed] == [
        ("admin", "admin", []), ("vera", "viewer", ["a.example", "b.example"])]  # fmt: skip


def test_account_changes_are_checked(server: LiveServer, admin: Client) -> None:
    assert admin.post("/api/users", json_body={"username": "vera", "password": "vera-pass"}).status == 201
    assert error(admin.post("/api/users", json_body={"username": "vera", "password": "other-pass"}))[0] == 409
    bad = [
        ({"username": "ab", "password": "valid-pass"}, "username"),
        ({"username": "abc", "password": "1234"}, "password"),
        ({"username": "abc", "password": "CHANGE_ME_ON_FIRST_LOGIN"}, "password"),
        ({"username": "abc", "password": "valid-pass", "role": "owner"}, "role"),
        ({"username": "abc", "password": "valid-pass", "websites": ["nowhere.example"]}, "websites"),
        ({"username": "abc", "password": "valid-pass", "websites": ["not a host"]}, "websites"),
        ({"username": "abc", "password": "valid-pass", "websites": "a.example"}, "websites"),
    ]
    for body, field in bad:
        status, message = error(admin.post("/api/users", json_body=body))
        assert (status, message.split(":")[0]) == (400, field), (body, message)
    assert [u["username"] for u in admin.get("/api/users").json()] == ["admin", "vera"]  # none of those was made
    assert error(admin.patch("/api/users/nobody", json_body={"role": "admin"})) == (404, "user not found")
    assert error(admin.delete("/api/users/nobody")) == (404, "user not found")
    # An admin's own account is changed under /user, never from the list (no accidental lock-out).
    assert error(admin.patch("/api/users/admin", json_body={"role": "viewer"}))[0] == 409
    assert error(admin.delete("/api/users/admin"))[0] == 409


def test_the_last_admin_stays(server: LiveServer, admin: Client) -> None:
    assert admin.post("/api/users", json_body={"username": "vera", "password": "vera-pass"}).status == 201
    # Deleting oneself as the last admin, with a viewer left, would leave no one to manage the accounts.
    refused = admin.delete("/api/user", json_body={"currentPassword": ADMIN_PASSWORD})
    assert error(refused) == (409, "the last admin cannot be removed while other accounts exist: make another "
                                   "account an admin first")  # fmt: skip
    # With a second admin, each may go, and the sites the removed one added stay, with the remover.
    assert (
        admin.post("/api/users", json_body={"username": "ada", "password": "ada-pass-1", "role": "admin"}).status == 201
    )
    ada = signed_in(server, "ada", "ada-pass-1")
    try:
        assert ada.post("/api/websites", json_body={"hostname": "ada.example"}).status == 201
        assert ada.delete("/api/users/admin").status == 204
        assert [u["username"] for u in ada.get("/api/users").json()] == ["ada", "vera"]
        with sqlite3.connect(server.config.appdb) as conn:
            owners = dict(
                conn.execute("SELECT w.hostname, u.username FROM websites w JOIN users u ON u.id = w.user_id")
            )
        conn.close()
        assert owners == {"a.example": "ada", "b.example": "ada", "ada.example": "ada"}
        assert admin.get("/api/user").status == 401  # the removed account's session ended with it
    finally:
        ada.close()


def test_a_new_password_set_by_an_admin_ends_that_accounts_sessions(server: LiveServer, admin: Client) -> None:
    assert admin.post("/api/users", json_body={"username": "vera", "password": "vera-pass"}).status == 201
    vera = signed_in(server, "vera", "vera-pass")
    try:
        assert admin.patch("/api/users/vera", json_body={"password": "reset-pass"}).status == 200
        assert vera.get("/api/user").status == 401
        vera.login("vera", "reset-pass")
        assert admin.patch("/api/users/vera", json_body={"role": "admin"}).json()["role"] == "admin"
        assert vera.get("/api/users").status == 200  # the role is read at every request
    finally:
        vera.close()


def test_an_upstream_database_opens_with_every_user_an_admin(tmp_path: Path) -> None:
    """A me_meta.db as the Go server writes it (spec §9: users without a role column) keeps working."""
    path = tmp_path / "me_meta.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(
            """
            CREATE TABLE users (id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE, password TEXT NOT NULL,
                date_created INTEGER NOT NULL, date_updated INTEGER NOT NULL, settings JSON NOT NULL DEFAULT '{}');
            CREATE TABLE websites (hostname TEXT PRIMARY KEY, user_id TEXT NOT NULL, date_created INTEGER,
                date_updated INTEGER, settings JSON NOT NULL DEFAULT '{}', FOREIGN KEY (user_id) REFERENCES users(id));
            CREATE TABLE migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER);
            """
        )
        for user_id, name in (("user_1", "first"), ("user_2", "second")):
            conn.execute(
                "INSERT INTO users VALUES (?, ?, ?, 1, 1, '{}')",
                (user_id, name, passwords.hash_password(name + "-pass")),
            )
        conn.execute("INSERT INTO websites VALUES ('first.example', 'user_1', 1, 1, '{}')")
        conn.execute("INSERT INTO websites VALUES ('second.example', 'user_2', 1, 1, '{}')")
    conn.close()
    with live_server(tmp_path, level="warn") as server:
        second = signed_in(server, "second", "second-pass")
        try:
            assert second.get("/api/user").json()["role"] == "admin"
            assert {w["hostname"] for w in second.get("/api/websites").json()} == {"first.example", "second.example"}
            assert {(u["username"], u["role"]) for u in second.get("/api/users").json()} == {
                ("first", "admin"), ("second", "admin")}  # fmt: skip
        finally:
            second.close()


def test_a_name_with_a_slash_is_refused_since_no_url_could_address_it(server: LiveServer, admin: Client) -> None:
    """Found by the Schemathesis workflow: "a/b" was created, then DELETE /api/users/a%2Fb answered 404 (the
    server decodes the path before routing), so the account could never be changed or removed there."""
    status, message = error(admin.post("/api/users", json_body={"username": "a/b", "password": "valid-pass"}))
    assert (status, message.split(":")[0]) == (400, "username")
    status, message = error(admin.patch("/api/user", json_body={"username": "ad/min"}))
    assert (status, message.split(":")[0]) == (400, "username")
    # Other characters a URL must escape stay usable: the account is found again under its escaped name.
    assert admin.post("/api/users", json_body={"username": "a?b#c d", "password": "valid-pass"}).status == 201
    assert admin.delete("/api/users/a%3Fb%23c%20d").status == 204
    assert [u["username"] for u in admin.get("/api/users").json()] == ["admin"]
