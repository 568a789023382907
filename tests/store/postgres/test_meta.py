"""App data on PostgreSQL gives what it gives on SQLite: one table of cases run against both engines.

Each case is a sequence of calls on a fresh database with the result each must give.
Both engines run every case; an expected `Differs(sqlite, postgres)` marks the only
places where the engines are allowed to answer differently.
"""

from __future__ import annotations

import hashlib
import inspect
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medama_core.store.meta_rows import (
    AlreadyExists,
    Annotation,
    ApiKey,
    Goal,
    MissingWebsite,
    Share,
    SiteSettings,
    Totp,
    User,
)
from medama_core.store.sqlite import db as sqlite_db
from medama_core.store.sqlite import meta as sqlite_meta

psycopg = pytest.importorskip("psycopg")

from medama_core.store.postgres import meta as pg_meta  # noqa: E402
from medama_core.store.postgres.errors import InvalidValue  # noqa: E402

T1, T2, T3 = (hashlib.sha256(name).digest() for name in (b"one", b"two", b"three"))
SETTINGS = sqlite_meta.DEFAULT_USER_SETTINGS


def alice(updated: int = 100, **changes: Any) -> User:
    fields = {"id": "user_a", "username": "alice", "password": "h1", "date_created": 100, "date_updated": updated}
    return User(**(fields | {"settings": SETTINGS, "password_is_default": False} | changes))


def bob() -> User:
    return User("user_b", "bob", "h2", 100, 100, SETTINGS, False)


@dataclass(frozen=True)
class Differs:
    """An expected result that is not the same on both engines (each documented in postgres/meta.py)."""

    sqlite: object
    postgres: object


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    expected: object


def call(name: str, *args: Any, expect: object = None, **kwargs: Any) -> Call:
    return Call(name, args, kwargs, expect)


USERS = [call("insert_user", "user_a", "alice", "h1", 100), call("insert_user", "user_b", "bob", "h2", 100)]
SITE_A = SiteSettings(
    outbound_links=True, click_events=False, download_extensions=("pdf", "7z"), retention_days=30, timezone="Asia/Tokyo"
)


def note(
    note_id: str, start: str, end: str | None = None, *, host: str = "a.example", created: int = 100
) -> Annotation:
    return Annotation(note_id, host, start, end, f"note {note_id}: «quoted», 'single'", created)


NOTES = [note("n1", "2024-06-01", "2024-06-10", created=200), note("n2", "2024-06-01"), note("n3", "2024-06-20")]

GOALS = [
    Goal("g2", "a.example", "Signed up «pro»", None, "plan", "pro", 200),
    Goal("g1", "a.example", "Pricing", "/pricing/*", None, None, 100),
    Goal("g3", "a.example", "Any download", None, "file-download", None, 200),
]

CASES: dict[str, list[Call]] = {
    "users": [
        call("count_users", expect=0),
        *USERS,
        call("count_users", expect=2),
        call("get_user", "user_a", expect=alice()),
        call("get_user", "nobody", expect=None),
        call("get_user_by_username", "alice", expect=alice()),
        call("get_user_by_username", "Alice", expect=None),  # case-sensitive, as upstream
        call("get_user_by_username", "alice ", expect=None),
    ],
    "duplicate user": [
        *USERS,
        call("insert_user", "user_c", "alice", "h3", 100, expect=Differs("IntegrityError", "AlreadyExists")),
        call("insert_user", "user_a", "carol", "h3", 100, expect=Differs("IntegrityError", "AlreadyExists")),
        call("count_users", expect=2),
    ],
    "update user": [
        *USERS,
        call("update_user", "user_a", 200, username="alicia", expect=alice(200, username="alicia")),
        call(
            "update_user",
            "user_a",
            300,
            settings='{"language":"fr"}',
            expect=alice(300, username="alicia", settings='{"language":"fr"}'),
        ),
        call("update_user", "user_a", 400, username="bob", expect="AlreadyExists"),
        call("get_user", "user_a", expect=alice(300, username="alicia", settings='{"language":"fr"}')),
        call("update_user", "nobody", 500, username="zed", expect=None),
        call("update_user", "user_b", 600, expect=User("user_b", "bob", "h2", 100, 600, SETTINGS, False)),
        call("list_usernames", expect=["alicia", "bob"]),
    ],
    "default password": [
        call("insert_user", "user_c", "carol", "h0", 50, password_is_default=True),
        *USERS,
        call("insert_user", "user_d", "dave", "h4", 200, password_is_default=True),
        call("usernames_with_default_password", expect=["carol", "dave"]),
        call("users_with_unknown_default", expect=[]),
        call("set_password_is_default", "user_a", True),
        call("get_user", "user_a", expect=alice(password_is_default=True)),
        call("usernames_with_default_password", expect=["carol", "alice", "dave"]),
        call("update_user", "user_a", 200, password_hash="h9", expect=alice(200, password="h9")),
        call("set_password_is_default", "user_d", False),
        call("set_password_is_default", "nobody", True),
        call("usernames_with_default_password", expect=["carol"]),
        call(
            "update_user",
            "user_c",
            300,
            username="caroline",
            expect=User("user_c", "caroline", "h0", 50, 300, SETTINGS, True),
        ),  # fmt: skip
    ],
    "password change signs out other sessions": [
        *USERS,
        call("insert_session", T1, "user_a", 100, 1000),
        call("insert_session", T2, "user_a", 100, 1000),
        call("insert_session", T3, "user_b", 100, 1000),
        call("update_user", "user_a", 200, password_hash="h9", keep_session=T1, expect=alice(200, password="h9")),
        call("session_user", T1, expect=(alice(200, password="h9"), 1000)),
        call("session_user", T2, expect=None),
        call("session_user", T3, expect=(bob(), 1000)),
        call("update_user", "user_a", 300, password_hash="h8", expect=alice(300, password="h8")),
        call("session_user", T1, expect=None),
    ],
    "delete user": [
        *USERS,
        call("insert_website", "b.example", "user_a", 100),
        call("insert_website", "a.example", "user_a", 100),
        call("insert_website", "c.example", "user_b", 100),
        call("insert_session", T1, "user_a", 100, 1000),
        call("delete_user", "user_a", expect=["a.example", "b.example"]),
        call("session_user", T1, expect=None),
        call("get_user", "user_a", expect=None),
        call("delete_user", "user_a", expect=None),
        call("list_hostnames", expect=["c.example"]),
        call("insert_user", "user_a", "alice", "h1", 100),
        call("delete_user", "user_a", expect=[]),
    ],
    "sessions": [
        *USERS,
        call("count_sessions", "user_a", expect=0),
        call("session_user", T1, expect=None),
        call("insert_session", T1, "user_a", 100, 1000),
        call("insert_session", T2, "user_b", 100, 2000),
        call("insert_session", T3, "user_b", 100, 3000),
        call("session_user", T1, expect=(alice(), 1000)),
        call("count_sessions", "user_b", expect=2),
        call("delete_session", T1, expect=True),
        call("delete_session", T1, expect=False),
        call("purge_expired_sessions", 1999, expect=0),
        call("purge_expired_sessions", 2000, expect=1),  # expiry at `now` counts as expired
        call("session_user", T3, expect=(bob(), 3000)),
        call("insert_session", T3, "user_a", 100, 3000, expect="IntegrityError"),
        call("insert_session", b"\x00" * 32, "nobody", 100, 3000, expect="IntegrityError"),
    ],
    "websites": [
        *USERS,
        call("insert_website", "b.example", "user_a", 100),
        call("insert_website", "a.example", "user_a", 100),
        call("insert_website", "c.example", "user_b", 100),
        call("insert_website", "a.example", "user_b", 100, expect="AlreadyExists"),
        call("insert_website", "d.example", "nobody", 100, expect="AlreadyExists"),  # as SQLite: any integrity error
        call("website_owner", "a.example", expect="user_a"),
        call("website_owner", "z.example", expect=None),
        call("list_user_hostnames", "user_a", expect=["a.example", "b.example"]),
        call("list_user_hostnames", "nobody", expect=[]),
        call("rename_website", "a.example", "c.example", 200, expect="AlreadyExists"),
        call("rename_website", "a.example", "e.example", 200, expect=True),
        call("rename_website", "a.example", "f.example", 200, expect=False),
        call("list_hostnames", expect=["b.example", "c.example", "e.example"]),
        call("delete_website", "b.example", expect=True),
        call("delete_website", "b.example", expect=False),
        call("list_hostnames", expect=["c.example", "e.example"]),
    ],
    "umami ids": [
        *USERS,
        call("insert_website", "a.example", "user_a", 100),
        call("insert_website", "b.example", "user_b", 100),
        call("umami_ids", expect={}),
        call("set_umami_id", "a.example", "id-1"),
        call("set_umami_id", "b.example", "id-1", expect="AlreadyExists"),
        call("set_umami_id", "z.example", "id-9", expect="AlreadyExists"),  # no such site: as SQLite, any integrity
        call("set_umami_id", "b.example", "id-2"),
        call("umami_id", "a.example", expect="id-1"),
        call("umami_id", "c.example", expect=None),
        call("set_umami_id", "a.example", "id-3"),
        call("umami_ids", expect={"id-3": "a.example", "id-2": "b.example"}),
        call("rename_website", "a.example", "c.example", 200, expect=True),
        call("umami_id", "c.example", expect="id-3"),
        call("delete_user", "user_b", expect=["b.example"]),
        call("umami_ids", expect={"id-3": "c.example"}),
        call("set_umami_id", "c.example", None),
        call("set_umami_id", "c.example", ""),
        call("umami_ids", expect={}),
    ],
    "code-point order whatever the locale": [
        *USERS,
        *(
            call("insert_website", h, "user_a", 100)
            for h in ("b.example", "B.example", "a.example", "é.example", "Z.example", "e.example", "1.example")
        ),
        call(
            "list_hostnames",
            expect=["1.example", "B.example", "Z.example", "a.example", "b.example", "e.example", "é.example"],
        ),
        call(
            "list_user_hostnames",
            "user_a",
            expect=["1.example", "B.example", "Z.example", "a.example", "b.example", "e.example", "é.example"],
        ),
    ],
    "roles": [
        *USERS,
        call("insert_user", "user_v", "victor", "h3", 100, role="viewer"),
        call("count_admins", expect=2),
        call("get_user", "user_v", expect=User("user_v", "victor", "h3", 100, 100, SETTINGS, False, "viewer")),
        call(
            "list_users", expect=[alice(), bob(), User("user_v", "victor", "h3", 100, 100, SETTINGS, False, "viewer")]
        ),
        call("set_role", "user_a", "viewer", 200, expect=True),
        call("set_role", "nobody", "admin", 200, expect=False),
        call("set_role", "user_b", "owner", 200, expect="IntegrityError"),  # the CHECK: admin or viewer only
        call("count_admins", expect=1),
        call("get_user", "user_a", expect=alice(200, role="viewer")),
    ],
    "grants": [
        *USERS,
        call("insert_user", "user_v", "victor", "h3", 100, role="viewer"),
        *(call("insert_website", h, "user_a", 100) for h in ("a.example", "b.example", "c.example")),
        call("list_grants", "user_v", expect=[]),
        call("set_grants", "user_v", ["c.example", "a.example", "a.example"]),
        call("list_grants", "user_v", expect=["a.example", "c.example"]),
        call("set_grants", "user_v", ["b.example", "z.example"], expect="MissingWebsite"),
        call("list_grants", "user_v", expect=["a.example", "c.example"]),  # nothing changed
        call("set_grants", "nobody", ["a.example"], expect="MissingWebsite"),
        call("set_grants", "user_b", ["b.example"]),
        call("grants_by_user", expect={"user_b": ["b.example"], "user_v": ["a.example", "c.example"]}),
        call("rename_website", "a.example", "d.example", 200, expect=True),
        call("delete_website", "c.example", expect=True),
        call("list_grants", "user_v", expect=["d.example"]),  # carried by the rename, gone with the site
        call("set_grants", "user_v", []),
        call("grants_by_user", expect={"user_b": ["b.example"]}),
        call("delete_user", "user_b", expect=[]),
        call("grants_by_user", expect={}),
    ],
    "transfer websites": [
        *USERS,
        call("insert_website", "a.example", "user_a", 100),
        call("insert_website", "b.example", "user_a", 100),
        call("transfer_websites", "user_a", "user_b", expect=2),
        call("transfer_websites", "user_a", "user_b", expect=0),
        call("list_user_hostnames", "user_b", expect=["a.example", "b.example"]),
        call("delete_user", "user_a", expect=[]),
        call("list_hostnames", expect=["a.example", "b.example"]),
    ],
    "api keys": [
        *USERS,
        call("insert_api_key", ApiKey("key_2", "user_a", "ci", "read", 200), T1),
        call("insert_api_key", ApiKey("key_1", "user_a", "cron", "admin", 100, 900, 150), T2),
        call("insert_api_key", ApiKey("key_3", "user_b", "b", "read", 100), T3),
        call("insert_api_key", ApiKey("key_4", "user_b", "again", "read", 100), T3, expect="IntegrityError"),
        call("insert_api_key", ApiKey("key_5", "user_b", "wide", "write", 100), b"x" * 32, expect="IntegrityError"),
        call("insert_api_key", ApiKey("key_6", "nobody", "n", "read", 100), b"y" * 32, expect="IntegrityError"),
        call(
            "list_api_keys",
            "user_a",
            expect=[
                ApiKey("key_1", "user_a", "cron", "admin", 100, 900, 150),
                ApiKey("key_2", "user_a", "ci", "read", 200),
            ],
        ),
        call("api_key_user", T3, expect=(ApiKey("key_3", "user_b", "b", "read", 100), bob())),
        call("api_key_user", b"z" * 32, expect=None),
        call("touch_api_key", "key_3", 700),
        call("api_key_user", T3, expect=(ApiKey("key_3", "user_b", "b", "read", 100, None, 700), bob())),
        call("delete_api_key", "user_a", "key_3", expect=False),  # another user's key
        call("delete_api_key", "user_b", "key_3", expect=True),
        call("delete_api_key", "user_b", "key_3", expect=False),
        call("api_key_user", T3, expect=None),
        call("delete_user", "user_a", expect=[]),
        call("api_key_user", T1, expect=None),
        call("list_api_keys", "user_a", expect=[]),
    ],
    "two-factor login": [
        *USERS,
        call("get_totp", "user_a", expect=None),
        call("set_totp_secret", "user_a", "AAAA", 100, expect=True),
        call("set_totp_secret", "user_a", "BBBB", 200, expect=True),  # a pending secret is replaced
        call("set_totp_secret", "nobody", "CCCC", 200, expect=False),
        call("get_totp", "user_a", expect=Totp("BBBB", False, 0)),
        call("get_user", "user_a", expect=alice()),  # not on until confirmed
        call("use_totp_step", "user_a", 10, expect=False),
        call("enable_totp", "user_a", 50, [T1, T2, T2], expect=True),
        call("enable_totp", "user_a", 60, [T3], expect=False),
        call("get_user", "user_a", expect=alice(totp=True)),
        call("list_users", expect=[alice(totp=True), bob()]),
        call("set_totp_secret", "user_a", "DDDD", 300, expect=False),
        call("get_totp", "user_a", expect=Totp("BBBB", True, 50)),
        call("use_totp_step", "user_a", 50, expect=False),  # replayed
        call("use_totp_step", "user_a", 49, expect=False),
        call("use_totp_step", "user_a", 51, expect=True),
        call("get_totp", "user_a", expect=Totp("BBBB", True, 51)),
        call("count_recovery_codes", "user_a", expect=2),
        call("use_recovery_code", "user_a", T1, expect=True),
        call("use_recovery_code", "user_a", T1, expect=False),
        call("use_recovery_code", "user_b", T2, expect=False),
        call("count_recovery_codes", "user_a", expect=1),
        call("delete_totp", "user_a", expect=True),
        call("delete_totp", "user_a", expect=False),
        call("count_recovery_codes", "user_a", expect=0),
        call("get_user", "user_a", expect=alice()),
        call("set_totp_secret", "user_b", "EEEE", 100, expect=True),
        call("enable_totp", "user_b", 7, [T3], expect=True),
        call("delete_user", "user_b", expect=[]),
        call("get_totp", "user_b", expect=None),
        call("count_recovery_codes", "user_b", expect=0),
    ],
    "shares": [
        *USERS,
        call("insert_website", "a.example", "user_a", 100),
        call("insert_website", "b.example", "user_a", 100),
        call(
            "insert_share",
            Share("s2", "a.example", "team", "hash", 5, ("pages", "countries"), ("https://x.example", "'self'"), 200),
        ),
        call("insert_share", Share("s1", "a.example", "", None, 0, (), (), 100, 900)),
        call("insert_share", Share("s3", "b.example", "b", None, 2, (), (), 100)),
        call("insert_share", Share("s4", "z.example", "z", None, 2, (), (), 100), expect="MissingWebsite"),
        call("insert_share", Share("s3", "a.example", "again", None, 2, (), (), 100), expect="IntegrityError"),
        call(
            "list_shares",
            "a.example",
            expect=[
                Share("s1", "a.example", "", None, 0, (), (), 100, 900),
                Share(
                    "s2", "a.example", "team", "hash", 5, ("pages", "countries"), ("https://x.example", "'self'"), 200
                ),
            ],
        ),
        call("get_share", "s3", expect=Share("s3", "b.example", "b", None, 2, (), (), 100)),
        call("get_share", "nope", expect=None),
        call("delete_share", "b.example", "s1", expect=False),  # another site's share
        call("delete_share", "a.example", "s1", expect=True),
        call("rename_website", "a.example", "c.example", 200, expect=True),
        call(
            "list_shares",
            "c.example",
            expect=[
                Share(
                    "s2", "c.example", "team", "hash", 5, ("pages", "countries"), ("https://x.example", "'self'"), 200
                )
            ],
        ),
        call("delete_user", "user_a", expect=["b.example", "c.example"]),
        call("get_share", "s2", expect=None),
        call("get_share", "s3", expect=None),
    ],
    "site settings": [
        *USERS,
        call("insert_website", "a.example", "user_a", 100),
        call("insert_website", "b.example", "user_b", 100),
        call("get_site_settings", "a.example", expect=SiteSettings()),
        call("get_site_settings", "nowhere.example", expect=SiteSettings()),
        call("list_site_settings", expect={}),
        call(
            "update_site_settings", "a.example", {"outbound_links": True}, 200, expect=SiteSettings(outbound_links=True)
        ),
        call(
            "update_site_settings",
            "a.example",
            {
                "click_events": False,
                "download_extensions": ("pdf", "7z"),
                "retention_days": 30,
                "timezone": "Asia/Tokyo",
            },
            300,
            expect=SITE_A,
        ),
        call("update_site_settings", "a.example", {}, 350, expect=SITE_A),
        call("update_site_settings", "a.example", {"nope": 1}, 360, expect="KeyError"),
        call("update_site_settings", "nowhere.example", {"page_events": True}, 400, expect=None),
        call(
            "update_site_settings",
            "b.example",
            {"download_extensions": ()},
            400,
            expect=SiteSettings(download_extensions=()),
        ),
        call("list_site_settings", expect={"a.example": SITE_A, "b.example": SiteSettings(download_extensions=())}),
        call("update_site_settings", "b.example", {"download_extensions": None}, 500, expect=SiteSettings()),
        call("rename_website", "a.example", "c.example", 600, expect=True),  # the settings move with the site
        call("get_site_settings", "a.example", expect=SiteSettings()),
        call("get_site_settings", "c.example", expect=SITE_A),
        call("delete_website", "c.example", expect=True),
        call("list_site_settings", expect={"b.example": SiteSettings()}),
        call("delete_user", "user_b", expect=["b.example"]),
        call("list_site_settings", expect={}),
    ],
    "goals": [
        *USERS,
        call("insert_website", "a.example", "user_a", 100),
        call("insert_website", "b.example", "user_a", 100),
        call("list_goals", "a.example", expect=[]),
        *(call("insert_goal", goal, 3, expect=True) for goal in GOALS),
        call("insert_goal", replace(GOALS[0], id="g4"), 3, expect=False),  # the site has its 3
        call("insert_goal", replace(GOALS[0], hostname="b.example"), 3, expect="AlreadyExists"),  # id taken
        call("insert_goal", replace(GOALS[0], id="g5", hostname="nowhere.example"), 3, expect="AlreadyExists"),
        call("list_goals", "a.example", expect=[GOALS[1], GOALS[0], GOALS[2]]),  # by creation, then id
        call("list_goals", "b.example", expect=[]),
        call("delete_goal", "b.example", "g1", expect=False),  # another site's goal
        call("delete_goal", "a.example", "g1", expect=True),
        call("delete_goal", "a.example", "g1", expect=False),
        call("rename_website", "a.example", "c.example", 300, expect=True),  # the goals move with the site
        call(
            "list_goals",
            "c.example",
            expect=[replace(GOALS[0], hostname="c.example"), replace(GOALS[2], hostname="c.example")],
        ),
        call("delete_website", "c.example", expect=True),
        call("list_goals", "c.example", expect=[]),
    ],
    "annotations": [
        *USERS,
        call("insert_website", "a.example", "user_a", 100),
        call("insert_website", "b.example", "user_a", 100),
        call("list_annotations", "a.example", expect=[]),
        *(call("insert_annotation", note, 3, expect=True) for note in NOTES),
        call("insert_annotation", note("n4", "2024-07-01"), 3, expect=False),  # the site has its 3
        call("insert_annotation", note("n1", "2024-07-01", host="b.example"), 3, expect="AlreadyExists"),  # id taken
        call("insert_annotation", note("n5", "2024-07-01", host="nowhere.example"), 3, expect="AlreadyExists"),
        call("list_annotations", "a.example", expect=[NOTES[1], NOTES[0], NOTES[2]]),  # by start day, then creation
        call("list_annotations", "a.example", "2024-06-05", None, expect=[NOTES[0], NOTES[2]]),  # n1's range reaches it
        call("list_annotations", "a.example", "2024-06-06", "2024-06-19", expect=[NOTES[0]]),
        call("list_annotations", "a.example", None, "2024-06-01", expect=[NOTES[1], NOTES[0]]),
        call("list_annotations", "a.example", "2024-06-20", "2024-06-20", expect=[NOTES[2]]),
        call("list_annotations", "a.example", "2024-06-21", None, expect=[]),
        call("list_annotations", "b.example", expect=[]),
        call("delete_annotation", "b.example", "n1", expect=False),  # another site's note
        call("delete_annotation", "a.example", "n1", expect=True),
        call("delete_annotation", "a.example", "n1", expect=False),
        call("rename_website", "a.example", "c.example", 200, expect=True),
        call(
            "list_annotations",
            "c.example",
            expect=[replace(NOTES[1], hostname="c.example"), replace(NOTES[2], hostname="c.example")],
        ),
        call("delete_website", "c.example", expect=True),
        call("insert_annotation", note("n6", "2024-06-01", host="b.example"), 3, expect=True),
        call("list_annotations", "c.example", expect=[]),
        call("delete_user", "user_a", expect=["b.example"]),
        call("list_annotations", "b.example", expect=[]),
    ],
    "settings": [
        call("get_settings", expect={}),
        call("set_setting", "script_type", "default", 100),
        call("get_settings", expect={"script_type": "default"}),
        call(
            "set_settings",
            {"script_type": "tagged-events", "language": "de"},
            200,
            expect={"script_type": "tagged-events", "language": "de"},
        ),
        call("set_settings", {}, 300, expect={"script_type": "tagged-events", "language": "de"}),
        call("set_setting", "language", "", 400),
        call("get_settings", expect={"script_type": "tagged-events", "language": ""}),
        call("set_soft_heap_limit", 0),
    ],
}


def run(module: ModuleType, conn: Any, calls: list[Call]) -> list[object]:
    results: list[object] = []
    for c in calls:
        try:
            results.append(getattr(module, c.name)(conn, *c.args, **c.kwargs))
        except AlreadyExists:
            results.append("AlreadyExists")
        except MissingWebsite:
            results.append("MissingWebsite")
        except (sqlite3.IntegrityError, psycopg.IntegrityError):
            results.append("IntegrityError")
        except KeyError:
            results.append("KeyError")
    return results


def expected(calls: list[Call], engine: str) -> list[object]:
    return [getattr(c.expected, engine) if isinstance(c.expected, Differs) else c.expected for c in calls]


def fresh_sqlite() -> sqlite3.Connection:
    conn = sqlite_db.connect(":memory:")
    sqlite_db.migrate(conn, sqlite_meta.MIGRATIONS)
    return conn


def reset(conn: Any) -> None:
    """Empty every app-data table of the module's PostgreSQL database (a fresh database in a few ms)."""
    conn.execute(
        "TRUNCATE users, websites, umami_ids, tenant_settings, sessions, website_settings, annotations, site_grants,"
        " api_keys, totp, recovery_codes, shares, goals"
    )


@pytest.fixture
def pg(pg_module_conn: Any) -> Iterator[Any]:
    reset(pg_module_conn)
    yield pg_module_conn


@pytest.mark.parametrize("case", CASES)
def test_case_gives_the_same_results_on_both_engines(case: str, pg: Any) -> None:
    calls = CASES[case]
    assert run(sqlite_meta, fresh_sqlite(), calls) == expected(calls, "sqlite")
    assert run(pg_meta, pg, calls) == expected(calls, "postgres")


def test_every_public_function_of_the_sqlite_store_is_mirrored() -> None:
    """Same names, same parameters and results but the connection: wiring either engine is mechanical."""
    missing, different = [], []
    for name, fn in vars(sqlite_meta).items():
        if name.startswith("_") or not inspect.isfunction(fn) or fn.__module__ != sqlite_meta.__name__:
            continue
        mirror = getattr(pg_meta, name, None)
        if mirror is None:
            missing.append(name)
            continue
        ours, theirs = inspect.signature(fn), inspect.signature(mirror)
        params = list(ours.parameters.values())
        mirrored = list(theirs.parameters.values())
        if params and params[0].name == "conn":  # the connection's type is the one thing that differs
            params, mirrored = params[1:], mirrored[1:]
        if params != mirrored or ours.return_annotation != theirs.return_annotation:
            different.append(f"{name}: {ours} vs {theirs}")
    assert not missing, f"store/postgres/meta.py lacks {missing}"
    assert not different
    shared = ("AlreadyExists", "MissingWebsite", "User", "ApiKey", "Totp", "Share")
    for name in (*shared, "DEFAULT_ADMIN_USERNAME", "DEFAULT_ADMIN_PASSWORD", "DEFAULT_USER_SETTINGS"):
        assert getattr(pg_meta, name) is getattr(sqlite_meta, name)
    for name in ("SiteSettings", "Annotation", "SITE_SETTING_FIELDS", "new_annotation_id"):
        assert getattr(pg_meta, name) is getattr(sqlite_meta, name)


# Values that break naive SQL building, odd Unicode, and lengths; NUL and lone surrogates are tested apart.
INJECTIONS = [
    "'; DROP TABLE users; --",
    "' OR '1'='1",
    "%(id)s",
    "%s",
    ":username",
    "$1",
    "\\",
    '"',
    "ﬀ",
    "İstanbul",
    "🙂",
    "a\u0301",
    "\u200b",
    "",
]
TEXT = st.one_of(st.sampled_from(INJECTIONS), st.text(st.characters(codec="utf-8", exclude_characters="\x00")))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(TEXT, min_size=1, max_size=6, unique=True), value=TEXT)
def test_any_text_is_stored_and_found_alike(pg_module_conn: Any, names: list[str], value: str) -> None:
    reset(pg_module_conn)
    calls = [call("insert_user", f"user_{i}", name, value, 100) for i, name in enumerate(names)]
    calls += [
        call("get_user_by_username", name, expect=User(f"user_{i}", name, value, 100, 100, SETTINGS, False))
        for i, name in enumerate(names)
    ]
    calls += [call("get_user_by_username", name + "x", expect=None) for name in names if name + "x" not in names]
    calls += [call("insert_website", name, "user_0", 100) for name in names]
    calls += [call("list_hostnames", expect=sorted(names))]  # code-point order on both engines
    calls += [call("set_settings", {name: value for name in names}, 100, expect=dict.fromkeys(names, value))]
    calls += [call("count_users", expect=len(names))]
    assert run(sqlite_meta, fresh_sqlite(), calls) == expected(calls, "sqlite")
    assert run(pg_meta, pg_module_conn, calls) == expected(calls, "postgres")
    assert pg_module_conn.execute("SELECT count(*) FROM users").fetchone()[0] == len(names)  # nothing dropped


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(TEXT, min_size=1, max_size=4), zone=TEXT)
def test_any_note_text_and_time_zone_is_stored_and_found_alike(
    pg_module_conn: Any, texts: list[str], zone: str
) -> None:
    reset(pg_module_conn)
    notes = [Annotation(f"n{i}", "a.example", "2024-06-01", None, text, i) for i, text in enumerate(texts)]
    calls = [*USERS, call("insert_website", "a.example", "user_a", 100)]
    calls += [call("insert_annotation", n, len(notes), expect=True) for n in notes]
    calls += [call("list_annotations", "a.example", "2024-06-01", "2024-06-01", expect=notes)]
    calls += [call("update_site_settings", "a.example", {"timezone": zone}, 100, expect=SiteSettings(timezone=zone))]
    calls += [call("list_site_settings", expect={"a.example": SiteSettings(timezone=zone)})]
    assert run(sqlite_meta, fresh_sqlite(), calls) == expected(calls, "sqlite")
    assert run(pg_meta, pg_module_conn, calls) == expected(calls, "postgres")


def test_changes_since_moves_with_websites_tenant_and_site_settings(pg: Any) -> None:
    """Other nodes learn of a site's new settings (its tracker) as of a new site: the counter moves."""
    version, hostnames, settings = pg_meta.changes_since(pg, None) or (0, None, None)
    assert (hostnames, settings) == ([], {})
    assert pg_meta.changes_since(pg, version) is None
    pg_meta.insert_user(pg, "user_a", "alice", "h1", 100)
    pg_meta.insert_website(pg, "a.example", "user_a", 100)
    changed = pg_meta.changes_since(pg, version)
    assert changed is not None and changed[1:] == (["a.example"], {})
    version = changed[0]
    pg_meta.update_site_settings(pg, "a.example", {"outbound_links": True}, 100)
    changed = pg_meta.changes_since(pg, version)
    assert changed is not None
    version = changed[0]
    pg_meta.insert_annotation(pg, Annotation("n1", "a.example", "2024-06-01", None, "x", 1), 10)
    assert pg_meta.changes_since(pg, version) is None  # notes are not kept in memory: no reload for them


def test_nul_characters_are_refused_on_writes_and_found_nowhere(pg: Any) -> None:
    """PostgreSQL text cannot hold NUL (SQLite stores it): writes raise InvalidValue, lookups find nothing."""
    pg_meta.insert_user(pg, "user_a", "alice", "h1", 100)
    pg_meta.insert_website(pg, "a.example", "user_a", 100)
    for write in (
        lambda: pg_meta.insert_user(pg, "user_b", "b\x00b", "h", 100),
        lambda: pg_meta.insert_website(pg, "a\x00.example", "user_a", 100),
        lambda: pg_meta.update_user(pg, "user_a", 200, username="a\x00"),
        lambda: pg_meta.rename_website(pg, "a.example", "b\x00.example", 200),
        lambda: pg_meta.set_setting(pg, "k", "v\x00", 100),
        lambda: pg_meta.set_settings(pg, {"k\x00": "v"}, 100),
        lambda: pg_meta.set_umami_id(pg, "a.example", "id\x00"),
    ):
        with pytest.raises(InvalidValue):
            write()
    assert pg_meta.get_user_by_username(pg, "alice\x00") is None
    assert pg_meta.get_user(pg, "user_a\x00") is None
    assert pg_meta.website_owner(pg, "a.example\x00") is None
    assert pg_meta.list_user_hostnames(pg, "user_a\x00") == []
    assert pg_meta.update_user(pg, "user_a\x00", 200, username="x") is None
    assert pg_meta.delete_user(pg, "user_a\x00") is None
    assert pg_meta.rename_website(pg, "a.example\x00", "b.example", 200) is False
    assert pg_meta.delete_website(pg, "a.example\x00") is False
    assert pg_meta.umami_id(pg, "a.example\x00") is None and pg_meta.count_sessions(pg, "user_a\x00") == 0
    assert pg_meta.get_settings(pg) == {} and pg_meta.count_users(pg) == 1
    for write in (
        lambda: pg_meta.update_site_settings(pg, "a.example", {"timezone": "Europe/\x00"}, 100),
        lambda: pg_meta.insert_annotation(pg, Annotation("n1", "a.example", "2024-06-01", None, "a\x00b", 1), 10),
    ):
        with pytest.raises(InvalidValue):
            write()
    assert pg_meta.get_site_settings(pg, "a.example\x00") == SiteSettings()
    assert pg_meta.update_site_settings(pg, "a.example\x00", {"page_events": True}, 100) is None
    assert pg_meta.list_annotations(pg, "a.example\x00") == [] and pg_meta.list_annotations(pg, "a.example") == []
    assert pg_meta.delete_annotation(pg, "a.example", "n\x00") is False
    assert pg_meta.list_site_settings(pg) == {}


def test_lone_surrogates_fail_alike_on_both_engines(pg: Any) -> None:
    """Text that is not valid Unicode cannot be encoded for either database: the same UnicodeEncodeError."""
    for module, conn in ((sqlite_meta, fresh_sqlite()), (pg_meta, pg)):
        with pytest.raises(UnicodeEncodeError):
            module.get_user_by_username(conn, "a\ud800")


def test_a_website_added_on_another_node_during_delete_user_is_refused_not_orphaned(pg_url: str) -> None:
    """delete_user locks the user's row first: another node's insert_website for that user waits, then fails."""
    from medama_core.store.postgres import db
    from medama_core.store.postgres.url import parse_url

    first, second = (db.connect(parse_url(pg_url)) for _ in range(2))
    db.migrate(first, pg_meta.MIGRATIONS, pg_meta.COMPONENT)
    outcome: dict[str, object] = {}

    def delete() -> None:
        try:
            outcome["deleted"] = pg_meta.delete_user(first, "user_a")
        except Exception as exc:
            outcome["deleted"] = exc

    thread = threading.Thread(target=delete)
    try:
        pg_meta.insert_user(first, "user_a", "alice", "h1", 100)
        pg_meta.insert_website(first, "a.example", "user_a", 100)
        # Hold delete_user between its two deletes: a trigger sleeps after the websites are deleted.
        first.execute(
            "CREATE FUNCTION pause() RETURNS trigger LANGUAGE plpgsql"
            " AS $$ BEGIN PERFORM pg_sleep(0.5); RETURN NULL; END $$"
        )
        first.execute("CREATE TRIGGER pause AFTER DELETE ON websites FOR EACH STATEMENT EXECUTE FUNCTION pause()")
        pid = first.info.backend_pid
        thread.start()
        deadline = time.monotonic() + 10
        while second.execute("SELECT wait_event FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone() != (
            "PgSleep",
        ):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        with pytest.raises(AlreadyExists):  # waited for the delete to commit, then the foreign key refused it
            pg_meta.insert_website(second, "b.example", "user_a", 100)
        thread.join()
        assert outcome["deleted"] == ["a.example"]
        assert pg_meta.list_hostnames(second) == [] and pg_meta.get_user(second, "user_a") is None
    finally:
        if thread.is_alive():
            thread.join(10)
        first.close()
        second.close()
