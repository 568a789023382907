"""`medama user list|add|role|remove|totp-off`: accounts managed offline in the app store, under the API's rules;
on me_meta.db and on PostgreSQL (`-appdb postgres://…`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests import stores
from tests.helpers import live_server

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.engines("sqlite", "pgch")


def user(appdb: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "medama.py"), "user", *args, "-appdb", appdb],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def refused(done: subprocess.CompletedProcess[str], message: str) -> bool:
    return done.returncode == 1 and done.stderr.startswith("ERROR: ") and message in done.stderr


def test_add_list_role_remove_while_the_server_runs(tmp_path: Path) -> None:
    with live_server(tmp_path, level="warn") as server:
        appdb = server.config.appdb
        admin = server.client()
        admin.login()
        for site in ("a.example", "b.example"):
            assert admin.post("/api/websites", json_body={"hostname": site}).status == 201
        done = user(appdb, "add", "vera", "-websites", "A.example", stdin="vera-pass\n")
        assert (done.returncode, done.stdout) == (0, "added vera as viewer, may read a.example\n"), done.stderr
        vera = server.client()
        vera.login("vera", "vera-pass")
        assert vera.get("/api/websites").json() == [{"hostname": "a.example"}]
        listed = user(appdb, "list").stdout.splitlines()
        assert listed[0].split() == ["USERNAME", "ROLE", "2FA", "CREATED", "WEBSITES"]
        assert [line.split()[:3] + line.split()[4:] for line in listed[1:]] == [
            ["admin", "admin", "off", "all"], ["vera", "viewer", "off", "a.example"]]  # fmt: skip
        # A role change is read at the server's next request.
        assert user(appdb, "role", "vera", "admin").stdout == "vera is now an admin\n"
        assert vera.get("/api/users").status == 200
        assert user(appdb, "role", "vera", "viewer").returncode == 0
        assert vera.get("/api/users").status == 403
        # Removing an admin gives its websites to the oldest admin left; its sessions end.
        assert user(appdb, "add", "ada", "-role", "admin", stdin="ada-pass-1\n").returncode == 0
        with stores.app_store(appdb) as (conn, m):
            m.transfer_websites(conn, m.get_user_by_username(conn, "admin").id, m.get_user_by_username(conn, "ada").id)
        done = user(appdb, "remove", "ada")
        assert done.stdout == "removed ada; its websites now belong to admin\n", done.stderr
        assert {w["hostname"] for w in admin.get("/api/websites").json()} == {"a.example", "b.example"}
        assert user(appdb, "remove", "vera").returncode == 0
        assert vera.get("/api/user").status == 401
        vera.close()
        admin.close()


def test_refusals_change_nothing(tmp_path: Path) -> None:
    with live_server(tmp_path, level="warn") as server:
        appdb = server.config.appdb
    assert refused(user(appdb, "role", "admin", "viewer"), "the last admin cannot be made a viewer")
    assert refused(user(appdb, "remove", "admin"), "admin is the only account")
    assert refused(user(appdb, "add", "admin", stdin="some-pass\n"), "there is already a user named 'admin'")
    assert refused(user(appdb, "add", "vera", "-websites", "nowhere.example", stdin="vera-pass\n"), "no website named")
    assert refused(user(appdb, "add", "vera", stdin="1234\n"), "5 to 128 characters")
    assert refused(user(appdb, "remove", "nobody"), "no user named 'nobody'")
    assert user(appdb, "add", "vera", "-role", "owner", stdin="vera-pass\n").returncode == 2  # a bad flag value
    assert user(appdb, "role", "admin").returncode == 2  # usage
    assert user(appdb, "add", "vera", stdin="vera-pass\n").returncode == 0
    assert refused(user(appdb, "remove", "admin"), "the last admin cannot be removed while other accounts exist")
    with stores.app_store(appdb) as (conn, m):
        assert [(u.username, u.role) for u in m.list_users(conn)] == [("admin", "admin"), ("vera", "viewer")]


def test_totp_off_is_the_way_back_in_without_the_app(tmp_path: Path) -> None:
    with live_server(tmp_path, level="warn") as server:
        appdb = server.config.appdb
        with stores.app_store(appdb) as (conn, m):
            admin_id = m.get_user_by_username(conn, "admin").id
            assert m.set_totp_secret(conn, admin_id, "JBSWY3DPEHPK3PXP", 1)
            assert m.enable_totp(conn, admin_id, 0, [])
        client = server.client()
        assert (
            client.post(
                "/api/auth/login", json_body={"username": "admin", "password": "CHANGE_ME_ON_FIRST_LOGIN"}
            ).status
            == 401
        )
        assert user(appdb, "list").stdout.splitlines()[1].split()[2] == "on"
        assert user(appdb, "totp-off", "admin").stdout == "two-factor login of admin is off\n"
        client.login()
        client.close()


def test_a_bad_app_store_url_is_one_line_and_exit_2(tmp_path: Path) -> None:
    for url, said in (
        ("postgres://nobody@127.0.0.1:1/medama", "-appdb: "),
        ("clickhouse://127.0.0.1/medama", "-appdb: clickhouse:// is not an app store"),
    ):
        done = user(url, "list")
        assert done.returncode == 2 and done.stderr.startswith("ERROR: " + said), done.stderr
        assert len(done.stderr.splitlines()) == 1, done.stderr
