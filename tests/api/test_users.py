"""/user over real HTTP: read, change (with every validation error), delete with all the account's data."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from medama_core import passwords, throttle
from tests.api.test_auth import error
from tests.helpers import Client, LiveServer, live_server
from tests.stores import marked

DEFAULT_PASSWORD = "CHANGE_ME_ON_FIRST_LOGIN"
CONFIRM = {"currentPassword": DEFAULT_PASSWORD}  # DELETE /user's body: the account's password


def add_user(
    server: LiveServer, username: str, password: str = "other-pass", role: str = "admin", websites: tuple[str, ...] = ()
) -> str:
    """An account written straight into me_meta.db (an admin, as upstream's are, unless `role` says otherwise),
    with the sites a viewer may read."""
    user_id = f"user_{username}"
    with sqlite3.connect(server.config.appdb) as conn:
        conn.execute(
            "INSERT INTO users (id, username, password, date_created, date_updated, settings, role)"
            " VALUES (:id, :username, :password, 1, 1, '{}', :role)",
            {"id": user_id, "username": username, "password": passwords.hash_password(password), "role": role},
        )
        conn.executemany("INSERT INTO site_grants VALUES (?, ?)", [(user_id, site) for site in websites])
    return user_id


def add_rows(server: LiveServer, hostname: str, views: int = 2, events: int = 3) -> None:
    """Analytics rows for a site, written straight into the database."""
    now_ms = int(time.time() * 1000)
    with sqlite3.connect(server.config.analyticsdb) as conn, marked(conn):
        for i in range(views):
            conn.execute(
                "INSERT INTO views (bid, hostname, pathname, is_unique_user, is_unique_page, ua_browser, ua_os,"
                " ua_device_type, date_created) VALUES (:bid, :hostname, '/', :unique, 1, 'Firefox', 'Linux',"
                " 'Desktop', :date)",
                {"bid": f"{hostname}-{i}", "hostname": hostname, "unique": int(i % 2 == 0), "date": now_ms - i},
            )
        for i in range(events):
            conn.execute(
                "INSERT INTO events (bid, batch_id, group_name, name, value, date_created)"
                " VALUES (:bid, :batch, :group, 'plan', 'pro', :date)",
                {"bid": f"{hostname}-0", "batch": f"b{i}", "group": hostname, "date": now_ms},
            )


def count_rows(server: LiveServer, hostname: str) -> tuple[int, int]:
    with sqlite3.connect(server.config.analyticsdb) as conn:
        views = conn.execute("SELECT count(*) FROM views WHERE hostname = :h", {"h": hostname}).fetchone()[0]
        events = conn.execute("SELECT count(*) FROM events WHERE group_name = :h", {"h": hostname}).fetchone()[0]
    return views, events


def test_get_user(client: Client) -> None:
    client.login()
    body = client.get("/api/user").json()
    assert set(body) == {"username", "settings", "dateCreated", "dateUpdated", "passwordChangeRequired", "role",
                         "totpEnabled"}  # fmt: skip
    assert (body["role"], body["totpEnabled"]) == ("admin", False)
    assert body["username"] == "admin"
    assert body["settings"] == {"language": "en"}
    assert abs(body["dateCreated"] - time.time()) < 60


def test_patch_username_password_and_settings_round_trip(client: Client, server: LiveServer) -> None:
    client.login()
    other = server.client()
    other.login()
    result = client.patch(
        "/api/user",
        json_body={
            "username": "owner",
            "password": "new-password",
            "currentPassword": DEFAULT_PASSWORD,
            "settings": {"language": "en"},
        },
    )
    assert result.status == 200
    assert result.json()["username"] == "owner"
    assert client.get("/api/user").json()["username"] == "owner"
    # The changed password signs out every other session, not this one.
    assert error(other.get("/api/user")) == (401, "unauthorised session")
    client.post("/api/auth/logout")
    assert client.post("/api/auth/login", json_body={"username": "admin", "password": "new-password"}).status == 401
    client.login("owner", "new-password")
    other.close()


def test_patch_with_an_empty_object_changes_nothing_but_the_date(client: Client) -> None:
    client.login()
    before = client.get("/api/user").json()
    after = client.patch("/api/user", json_body={}).json()
    assert {k: v for k, v in after.items() if k != "dateUpdated"} == {
        k: v for k, v in before.items() if k != "dateUpdated"
    }


def test_renaming_to_a_taken_username_is_409(client: Client, server: LiveServer) -> None:
    add_user(server, "taken")
    client.login()
    assert error(client.patch("/api/user", json_body={"username": "taken"})) == (409, "user already exists")
    assert client.patch("/api/user", json_body={"username": "admin"}).status == 200  # your own name is fine


@pytest.mark.parametrize(
    "body, message",
    [
        ({"username": "ab"}, "username: must be 3 to 48 characters long"),
        ({"username": "a" * 49}, "username: must be 3 to 48 characters long"),  # upstream's 120 locked people out
        ({"username": 7}, "username: must be a string"),
        ({"username": None}, "username: must be a string"),
        ({"password": "1234", "currentPassword": DEFAULT_PASSWORD}, "password: must be 5 to 128 characters long"),
        ({"password": "p" * 129}, "password: must be 5 to 128 characters long"),
        ({"password": ["list"]}, "password: must be a string"),
        ({"password": "new-password"}, "currentPassword is required to change the password"),
        ({"password": "new-password", "currentPassword": 7}, "currentPassword: must be a string"),
        ({"password": "new-password", "currentPassword": ""}, "currentPassword: must be 1 to 128 characters long"),
        ({"settings": "en"}, "settings: must be an object"),
        ({"settings": {"language": "fr"}}, "settings.language: must be one of en"),
        ({"settings": {"language": 1}}, "settings.language: must be one of en"),
        ("username", "request body must be a JSON object"),
    ],
)
def test_patch_validation(client: Client, body: Any, message: str) -> None:
    client.login()
    assert error(client.patch("/api/user", json_body=body)) == (400, message)


def test_patch_needs_json(client: Client) -> None:
    client.login()
    assert (
        error(client.patch("/api/user", body=b'{"username":"abc"}', headers={"Content-Type": "text/plain"}))[0] == 415
    )
    assert error(client.patch("/api/user"))[0] == 400


def test_delete_removes_the_user_sites_views_events_and_session(client: Client, server: LiveServer) -> None:
    client.login()
    cookie = client.cookies["_me_sess"]
    for hostname in ("a.example.com", "b.example.com"):
        assert client.post("/api/websites", json_body={"hostname": hostname}).status == 201
        add_rows(server, hostname)
    add_rows(server, "kept.example.org")  # another site's rows stay
    result = client.delete("/api/user", json_body=CONFIRM)
    assert result.status == 204
    assert result.header_values("set-cookie")[0].startswith("_me_sess=;")
    assert count_rows(server, "a.example.com") == (0, 0)
    assert count_rows(server, "b.example.com") == (0, 0)
    assert count_rows(server, "kept.example.org") == (2, 3)
    with sqlite3.connect(server.config.appdb) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM websites").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM sessions").fetchone()[0] == 0
    assert error(client.get("/api/user", headers={"Cookie": f"_me_sess={cookie}"}))[0] == 401


def test_after_deleting_the_last_user_the_next_start_recreates_admin(tmp_path: Path) -> None:
    with live_server(tmp_path) as server:
        client = server.client()
        client.login()
        assert client.delete("/api/user", json_body=CONFIRM).status == 204
        assert (
            client.post(
                "/api/auth/login", json_body={"username": "admin", "password": "CHANGE_ME_ON_FIRST_LOGIN"}
            ).status
            == 401
        )
        client.close()
    with live_server(tmp_path) as server:
        client = server.client()
        client.login()
        client.close()


def test_deleting_one_user_leaves_the_others(client: Client, server: LiveServer) -> None:
    add_user(server, "second", "second-pass")
    second = server.client()
    second.login("second", "second-pass")
    assert second.post("/api/websites", json_body={"hostname": "second.example"}).status == 201
    client.login()
    assert client.delete("/api/user", json_body=CONFIRM).status == 204
    assert second.get("/api/websites").json() == [{"hostname": "second.example"}]
    second.close()


def test_a_username_with_a_lone_surrogate_escape_is_400(client: Client) -> None:
    client.login()
    raw = b'{"username": "\\ud800abc"}'
    assert error(client.patch("/api/user", body=raw, headers={"Content-Type": "application/json"}))[0] == 400


# --- the current password (CONTRACT 3): a session cookie alone cannot take the account over or delete it ---


def test_a_new_password_needs_the_current_one(client: Client, server: LiveServer) -> None:
    client.login()
    missing = client.patch("/api/user", json_body={"password": "taken-over"})
    assert error(missing) == (400, "currentPassword is required to change the password")
    wrong = client.patch("/api/user", json_body={"password": "taken-over", "currentPassword": "not-it"})
    assert error(wrong) == (403, "current password is wrong")
    assert client.get("/api/user").status == 200, "a wrong current password does not end the session"
    other = server.client()
    assert other.post("/api/auth/login", json_body={"username": "admin", "password": "taken-over"}).status == 401
    other.login()  # the old password still works
    other.close()
    right = client.patch("/api/user", json_body={"password": "new-password", "currentPassword": DEFAULT_PASSWORD})
    assert right.status == 200
    client.post("/api/auth/logout")
    client.login("admin", "new-password")


def test_a_username_or_settings_change_needs_no_current_password(client: Client) -> None:
    client.login()
    assert client.patch("/api/user", json_body={"username": "renamed"}).json()["username"] == "renamed"
    assert client.patch("/api/user", json_body={"settings": {"language": "en"}}).status == 200


def test_deleting_the_account_needs_the_current_password(client: Client, server: LiveServer) -> None:
    client.login()
    assert error(client.delete("/api/user")) == (400, "currentPassword is required to delete the account")
    assert error(client.delete("/api/user", json_body={})) == (400, "currentPassword is required to delete the account")
    assert error(client.delete("/api/user", json_body={"currentPassword": "not-it"})) == (
        403,
        "current password is wrong",
    )
    assert error(client.delete("/api/user", json_body=[DEFAULT_PASSWORD]))[0] == 400
    with sqlite3.connect(server.config.appdb) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone()[0] == 1
    assert client.delete("/api/user", json_body=CONFIRM).status == 204


def test_wrong_current_passwords_are_throttled_like_sign_in_failures(client: Client, server: LiveServer) -> None:
    client.login()
    for _ in range(throttle.FREE_ATTEMPTS):
        assert client.delete("/api/user", json_body={"currentPassword": "guess"}).status == 403
    refused = client.delete("/api/user", json_body=CONFIRM)  # even the right one waits now
    assert refused.status == 429 and int(refused.headers["retry-after"]) >= 1
    assert (
        client.patch("/api/user", json_body={"password": "x-y-z-w", "currentPassword": DEFAULT_PASSWORD}).status == 429
    )
    # The same account from the same network: signing in waits as well.
    other = server.client()
    assert other.post("/api/auth/login", json_body={"username": "admin", "password": DEFAULT_PASSWORD}).status == 429
    other.close()


# First login: the default password is reported until changed, can never be set again, and is warned about.

DEFAULT_WARNING = "this account's password is still the default"


def warnings(server: LiveServer) -> list[str]:
    return [line for line in server.log_stream.getvalue().splitlines() if DEFAULT_WARNING in line]


def test_the_default_password_must_be_changed_and_cannot_be_chosen_again(tmp_path: Path) -> None:
    with live_server(tmp_path) as server:
        assert len(warnings(server)) == 1 and '"username": "admin"' in warnings(server)[0]
        client = server.client()
        client.login()
        assert client.get("/api/user").json()["passwordChangeRequired"] is True
        refused = client.patch("/api/user", json_body={"password": DEFAULT_PASSWORD})
        assert error(refused) == (
            400,
            "password: the new password must not be the default CHANGE_ME_ON_FIRST_LOGIN, which everyone can read "
            "in the docs",
        )
        changed = client.patch("/api/user", json_body={"password": "a-better-one", "currentPassword": DEFAULT_PASSWORD})
        assert changed.status == 200 and changed.json()["passwordChangeRequired"] is False
        assert client.get("/api/user").json()["passwordChangeRequired"] is False
        client.close()
    with live_server(tmp_path) as server:
        assert warnings(server) == []  # no warning once it is changed
        client = server.client()
        client.login("admin", "a-better-one")
        assert client.get("/api/user").json()["passwordChangeRequired"] is False
        client.close()


def set_flag(server_or_path: LiveServer | Path, value: int | None) -> None:
    path = server_or_path if isinstance(server_or_path, Path) else Path(server_or_path.config.appdb)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE users SET password_is_default = :v", {"v": value})
    conn.close()


def test_accounts_from_before_the_flag_are_checked_once_at_start(tmp_path: Path) -> None:
    with live_server(tmp_path) as server:
        add_user(server, "someone", "not-the-default")
    set_flag(tmp_path / "me_meta.db", None)  # as after the migration that added the column, or upstream's file
    with live_server(tmp_path) as server:
        assert len(warnings(server)) == 1 and '"username": "admin"' in warnings(server)[0]
        with sqlite3.connect(server.config.appdb) as conn:
            flags = dict(conn.execute("SELECT username, password_is_default FROM users"))
        conn.close()
        assert flags == {"admin": 1, "someone": 0}


def test_a_login_with_the_default_password_sets_the_flag_without_hashing_again(tmp_path: Path) -> None:
    with live_server(tmp_path) as server:
        set_flag(server, 0)  # wrong on purpose: the login knows better
        client = server.client()
        assert client.get("/api/user").status == 401
        client.login()
        assert client.get("/api/user").json()["passwordChangeRequired"] is True
        client.close()
