"""The app-metadata database (me_meta.db): schema, users, sessions, websites and tenant settings.

The first migration creates upstream's tables with `IF NOT EXISTS` and the same
columns, so a `me_meta.db` written by the Go server opens unchanged (its own
`migrations` table is left alone) and its users can log in.
"""

from __future__ import annotations

import secrets
import sqlite3
import time

from medama_core.store.db import Migration

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        (
            """CREATE TABLE IF NOT EXISTS users (
                id TEXT PRIMARY KEY,
                username TEXT NOT NULL UNIQUE,
                password TEXT NOT NULL,
                date_created INTEGER NOT NULL,
                date_updated INTEGER NOT NULL,
                settings TEXT NOT NULL DEFAULT '{}'
            )""",
            """CREATE TABLE IF NOT EXISTS websites (
                hostname TEXT PRIMARY KEY,
                user_id TEXT NOT NULL REFERENCES users(id),
                date_created INTEGER NOT NULL,
                date_updated INTEGER NOT NULL,
                settings TEXT NOT NULL DEFAULT '{}'
            )""",
            # Upstream lists websites by owner; this serves that lookup.
            "CREATE INDEX IF NOT EXISTS websites_user_id ON websites(user_id)",
            """CREATE TABLE IF NOT EXISTS tenant_settings (
                key TEXT PRIMARY KEY,
                value TEXT NOT NULL,
                date_updated INTEGER NOT NULL
            )""",
        ),
    ),
    Migration(
        2,
        (
            # Ours: sessions live server-side so they survive restarts and logout can revoke them.
            # Only a SHA-256 of the token is stored; a leaked database cannot be replayed as cookies.
            """CREATE TABLE sessions (
                token_hash BLOB PRIMARY KEY,
                user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                date_created INTEGER NOT NULL,
                date_expires INTEGER NOT NULL
            ) WITHOUT ROWID""",
            # Purging expired sessions scans by expiry.
            "CREATE INDEX sessions_date_expires ON sessions(date_expires)",
            "CREATE INDEX sessions_user_id ON sessions(user_id)",
        ),
    ),
)

DEFAULT_ADMIN_USERNAME = "admin"
DEFAULT_ADMIN_PASSWORD = "CHANGE_ME_ON_FIRST_LOGIN"
DEFAULT_USER_SETTINGS = '{"language":"en"}'


def new_user_id() -> str:
    """A `user_`-prefixed id, time-ordered like upstream's TypeIDs (base-32 ms time, then randomness)."""
    return "user_" + _time_ordered_suffix()


def _time_ordered_suffix() -> str:
    alphabet = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, as TypeID uses
    value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(alphabet[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def count_users(conn: sqlite3.Connection) -> int:
    count: int = conn.execute("SELECT count(*) FROM users").fetchone()[0]
    return count


def insert_user(conn: sqlite3.Connection, user_id: str, username: str, password_hash: str, now: int) -> None:
    conn.execute(
        "INSERT INTO users (id, username, password, date_created, date_updated, settings)"
        " VALUES (:id, :username, :password, :now, :now, :settings)",
        {"id": user_id, "username": username, "password": password_hash, "now": now, "settings": DEFAULT_USER_SETTINGS},
    )


def list_hostnames(conn: sqlite3.Connection) -> list[str]:
    return [row[0] for row in conn.execute("SELECT hostname FROM websites ORDER BY hostname")]


def get_settings(conn: sqlite3.Connection) -> dict[str, str]:
    return {key: value for key, value in conn.execute("SELECT key, value FROM tenant_settings")}


def set_setting(conn: sqlite3.Connection, key: str, value: str, now: int) -> None:
    conn.execute(
        "INSERT INTO tenant_settings (key, value, date_updated) VALUES (:key, :value, :now)"
        " ON CONFLICT(key) DO UPDATE SET value = excluded.value, date_updated = excluded.date_updated",
        {"key": key, "value": value, "now": now},
    )
