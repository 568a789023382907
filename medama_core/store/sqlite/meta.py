"""The app-metadata database (me_meta.db): schema, users, sessions, websites, their settings and notes, tenant settings.

The first migration creates upstream's tables with `IF NOT EXISTS` and the same
columns, so a `me_meta.db` written by the Go server opens unchanged (its own
`migrations` table is left alone) and its users can log in.
"""

from __future__ import annotations

import sqlite3

# The value types and row decoders both meta engines share (re-exported: callers import them from here).
from medama_core.store.meta_rows import (
    ANNOTATION_COLUMNS,
    FLAG_FIELDS,
    GOAL_COLUMNS,
    KEY_COLUMNS,
    KEY_WIDTH,
    SHARE_COLUMNS,
    USER_WIDTH,
    annotation_from_row,
    api_key_from_row,
    goal_from_row,
    share_from_row,
    site_settings_from_row,
    user_from_row,
)
from medama_core.store.meta_rows import DEFAULT_ADMIN_PASSWORD as DEFAULT_ADMIN_PASSWORD
from medama_core.store.meta_rows import DEFAULT_ADMIN_USERNAME as DEFAULT_ADMIN_USERNAME
from medama_core.store.meta_rows import DEFAULT_USER_SETTINGS as DEFAULT_USER_SETTINGS
from medama_core.store.meta_rows import SITE_SETTING_FIELDS as SITE_SETTING_FIELDS
from medama_core.store.meta_rows import AlreadyExists as AlreadyExists
from medama_core.store.meta_rows import Annotation as Annotation
from medama_core.store.meta_rows import ApiKey as ApiKey
from medama_core.store.meta_rows import Goal as Goal
from medama_core.store.meta_rows import MissingWebsite as MissingWebsite
from medama_core.store.meta_rows import Share as Share
from medama_core.store.meta_rows import SiteSettings as SiteSettings
from medama_core.store.meta_rows import Totp as Totp
from medama_core.store.meta_rows import User as User
from medama_core.store.meta_rows import merge_site_settings as merge_site_settings
from medama_core.store.meta_rows import new_annotation_id as new_annotation_id
from medama_core.store.meta_rows import new_goal_id as new_goal_id
from medama_core.store.meta_rows import new_key_id as new_key_id
from medama_core.store.meta_rows import new_user_id as new_user_id
from medama_core.store.sqlite.db import Migration, Transaction

# A table only this database has: a file holding other tables but not this one is refused (store/db.open_file).
MARKER_TABLE = "users"

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
    Migration(
        3,
        (
            # Ours: whether the password is still DEFAULT_ADMIN_PASSWORD, so GET /api/user can say so without
            # hashing. 1 yes, 0 no, NULL not known yet (rows from before this migration or from upstream):
            # the next start checks those once (app.open_context), and every login sets it.
            "ALTER TABLE users ADD COLUMN password_is_default INTEGER",
        ),
    ),
    Migration(
        4,
        (
            # Ours: the Umami website id a site answers to on POST /api/send (api/foreign.py), so Umami's
            # snippet keeps working with only its host changed. One id per site, one site per id;
            # renaming or deleting the site carries it along.
            """CREATE TABLE umami_ids (
                website_id TEXT PRIMARY KEY,
                hostname TEXT NOT NULL UNIQUE REFERENCES websites(hostname) ON UPDATE CASCADE ON DELETE CASCADE
            )""",
        ),
    ),
    Migration(
        5,
        (
            # Ours: a website's own settings (api/sitesettings.py). NULL in a column means "as the
            # tenant-wide setting" (tracker features, download extensions) or "not set" (retention,
            # time zone); a site without a row has every column NULL. Renaming or deleting the site
            # carries its row along.
            """CREATE TABLE website_settings (
                hostname TEXT PRIMARY KEY REFERENCES websites(hostname) ON UPDATE CASCADE ON DELETE CASCADE,
                click_events INTEGER,
                page_events INTEGER,
                outbound_links INTEGER,
                file_downloads INTEGER,
                not_found_pages INTEGER,
                download_extensions TEXT,
                retention_days INTEGER,
                timezone TEXT,
                date_updated INTEGER NOT NULL
            )""",
            # Ours: notes on a day or a range of days of a site's chart (api/notes.py). Dates are
            # ISO 8601 calendar dates (`YYYY-MM-DD`), so text order is date order.
            """CREATE TABLE annotations (
                id TEXT PRIMARY KEY,
                hostname TEXT NOT NULL REFERENCES websites(hostname) ON UPDATE CASCADE ON DELETE CASCADE,
                start_date TEXT NOT NULL,
                end_date TEXT,
                text TEXT NOT NULL,
                date_created INTEGER NOT NULL
            )""",
            "CREATE INDEX annotations_hostname_start ON annotations(hostname, start_date)",
        ),
    ),
    Migration(
        6,
        (
            # Ours (docs/auth.md): roles, website grants, API keys, two-factor login and share links.
            # Every user until now, upstream's included, had every right: they become admins.
            "ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'admin' CHECK (role IN ('admin', 'viewer'))",
            # The sites a viewer may read (admins read every site). A rename or delete of the site carries it.
            """CREATE TABLE site_grants (
                user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                hostname TEXT NOT NULL REFERENCES websites(hostname) ON UPDATE CASCADE ON DELETE CASCADE,
                PRIMARY KEY (user_id, hostname)
            ) WITHOUT ROWID""",
            "CREATE INDEX site_grants_hostname ON site_grants(hostname)",
            # Only a SHA-256 of each key is stored, as for sessions: the key is shown once, at creation.
            """CREATE TABLE api_keys (
                id TEXT PRIMARY KEY,
                user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                name TEXT NOT NULL,
                key_hash BLOB NOT NULL UNIQUE,
                scope TEXT NOT NULL CHECK (scope IN ('read', 'admin')),
                date_created INTEGER NOT NULL,
                date_expires INTEGER,
                date_used INTEGER
            )""",
            "CREATE INDEX api_keys_user_id ON api_keys(user_id)",
            # A TOTP secret (RFC 6238) must be readable to check codes, so it is stored as it is; `enabled`
            # is 0 between POST /user/totp and its confirmation. `last_step` refuses a code used before.
            """CREATE TABLE totp (
                user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
                secret TEXT NOT NULL,
                enabled INTEGER NOT NULL DEFAULT 0,
                last_step INTEGER NOT NULL DEFAULT 0,
                date_created INTEGER NOT NULL
            )""",
            # One-time recovery codes, as SHA-256 hashes; a used code is deleted.
            """CREATE TABLE recovery_codes (
                user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                code_hash BLOB NOT NULL,
                PRIMARY KEY (user_id, code_hash)
            ) WITHOUT ROWID""",
            # Read-only links to a site's dashboard. `password` is a password hash (passwords.py) or NULL;
            # `k` hides rows of fewer visitors (0 and 1 hide nothing); `panels` and `frame_ancestors`
            # are comma- and space-separated lists ("" = every panel; no framing).
            """CREATE TABLE shares (
                id TEXT PRIMARY KEY,
                hostname TEXT NOT NULL REFERENCES websites(hostname) ON UPDATE CASCADE ON DELETE CASCADE,
                name TEXT NOT NULL,
                password TEXT,
                k INTEGER NOT NULL,
                panels TEXT NOT NULL,
                frame_ancestors TEXT NOT NULL,
                date_created INTEGER NOT NULL,
                date_expires INTEGER
            )""",
            "CREATE INDEX shares_hostname ON shares(hostname)",
        ),
    ),
    Migration(
        7,
        (
            # Ours (docs/insights.md, Goals): what a site counts as a conversion. A page goal has a path
            # pattern (`*` for any run of characters), an event goal a custom property name and, optionally,
            # its value; exactly one kind per row. A rename or delete of the site carries its goals.
            """CREATE TABLE goals (
                id TEXT PRIMARY KEY,
                hostname TEXT NOT NULL REFERENCES websites(hostname) ON UPDATE CASCADE ON DELETE CASCADE,
                name TEXT NOT NULL,
                page TEXT,
                prop_name TEXT,
                prop_value TEXT,
                date_created INTEGER NOT NULL,
                CHECK ((page IS NULL) <> (prop_name IS NULL)),
                CHECK (prop_value IS NULL OR prop_name IS NOT NULL)
            )""",
            "CREATE INDEX goals_hostname ON goals(hostname)",
        ),
    ),
)


def count_users(conn: sqlite3.Connection) -> int:
    count: int = conn.execute("SELECT count(*) FROM users").fetchone()[0]
    return count


def insert_user(
    conn: sqlite3.Connection,
    user_id: str,
    username: str,
    password_hash: str,
    now: int,
    *,
    password_is_default: bool = False,
    role: str = "admin",
) -> None:
    """Add a user; `password_is_default` says the hash is of DEFAULT_ADMIN_PASSWORD (the caller knows).
    `role` is "admin" or "viewer" (permissions.Role)."""
    conn.execute(
        "INSERT INTO users (id, username, password, date_created, date_updated, settings, password_is_default, role)"
        " VALUES (:id, :username, :password, :now, :now, :settings, :default, :role)",
        {
            "id": user_id,
            "username": username,
            "password": password_hash,
            "now": now,
            "settings": DEFAULT_USER_SETTINGS,
            "default": int(password_is_default),
            "role": role,
        },
    )


def list_usernames(conn: sqlite3.Connection) -> list[str]:
    return [str(row[0]) for row in conn.execute("SELECT username FROM users ORDER BY username")]


def count_sessions(conn: sqlite3.Connection, user_id: str) -> int:
    count: int = conn.execute("SELECT count(*) FROM sessions WHERE user_id = :id", {"id": user_id}).fetchone()[0]
    return count


def list_hostnames(conn: sqlite3.Connection) -> list[str]:
    return [row[0] for row in conn.execute("SELECT hostname FROM websites ORDER BY hostname")]


def changes_since(conn: sqlite3.Connection, version: int | None) -> tuple[int, list[str], dict[str, str]] | None:
    """`PRAGMA data_version` and the websites and tenant settings, if other connections committed
    since `version` (None: always); else None. Run it on one connection: the pragma counts the commits
    of every connection but the one asking."""
    current = int(conn.execute("PRAGMA data_version").fetchone()[0])
    if current == version:
        return None
    return current, list_hostnames(conn), get_settings(conn)


def get_settings(conn: sqlite3.Connection) -> dict[str, str]:
    return {key: value for key, value in conn.execute("SELECT key, value FROM tenant_settings")}


def set_setting(conn: sqlite3.Connection, key: str, value: str, now: int) -> None:
    conn.execute(
        "INSERT INTO tenant_settings (key, value, date_updated) VALUES (:key, :value, :now)"
        " ON CONFLICT(key) DO UPDATE SET value = excluded.value, date_updated = excluded.date_updated",
        {"key": key, "value": value, "now": now},
    )


_USER_COLUMNS = (
    "u.id, u.username, u.password, u.date_created, u.date_updated, u.settings, u.password_is_default, u.role,"
    " EXISTS (SELECT 1 FROM totp t WHERE t.user_id = u.id AND t.enabled = 1)"
)


def get_user(conn: sqlite3.Connection, user_id: str) -> User | None:
    row = conn.execute(f"SELECT {_USER_COLUMNS} FROM users u WHERE u.id = :id", {"id": user_id}).fetchone()
    return user_from_row(row)


def get_user_by_username(conn: sqlite3.Connection, username: str) -> User | None:
    """Exact, case-sensitive match, as upstream's SQLite `=`."""
    row = conn.execute(
        f"SELECT {_USER_COLUMNS} FROM users u WHERE u.username = :username", {"username": username}
    ).fetchone()
    return user_from_row(row)


def update_user(
    conn: sqlite3.Connection,
    user_id: str,
    now: int,
    *,
    username: str | None = None,
    password_hash: str | None = None,
    settings: str | None = None,
    keep_session: bytes | None = None,
) -> User | None:
    """Change the given fields and bump `date_updated`; the fresh row, or None if the user is gone.

    A new password also signs the user out of every session but `keep_session` (all of
    them when None), and marks the password as not the default (callers refuse the default).
    """
    params = {"id": user_id, "username": username, "password": password_hash, "settings": settings, "now": now}
    try:
        with Transaction(conn):
            conn.execute(
                "UPDATE users SET username = coalesce(:username, username), password = coalesce(:password, password),"
                " settings = coalesce(:settings, settings), date_updated = :now,"
                " password_is_default = CASE WHEN :password IS NULL THEN password_is_default ELSE 0 END"
                " WHERE id = :id",
                params,
            )
            if password_hash is not None:
                conn.execute(
                    "DELETE FROM sessions WHERE user_id = :id AND token_hash IS NOT :keep",
                    {"id": user_id, "keep": keep_session},
                )
    except sqlite3.IntegrityError:
        raise AlreadyExists("user already exists") from None
    return get_user(conn, user_id)


def set_password_is_default(conn: sqlite3.Connection, user_id: str, is_default: bool) -> None:
    """Record what a check of the password against DEFAULT_ADMIN_PASSWORD found (a login, or start-up)."""
    conn.execute(
        "UPDATE users SET password_is_default = :default WHERE id = :id", {"id": user_id, "default": int(is_default)}
    )


def users_with_unknown_default(conn: sqlite3.Connection) -> list[User]:
    """Users whose password has not been checked against DEFAULT_ADMIN_PASSWORD yet (see migration 3)."""
    rows = conn.execute(f"SELECT {_USER_COLUMNS} FROM users u WHERE u.password_is_default IS NULL ORDER BY u.rowid")
    return [user for user in map(user_from_row, rows) if user is not None]


def usernames_with_default_password(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute("SELECT username FROM users WHERE password_is_default = 1 ORDER BY rowid")
    return [str(row[0]) for row in rows]


def delete_user(conn: sqlite3.Connection, user_id: str) -> list[str] | None:
    """Delete a user, their websites and (by cascade) their sessions; the hostnames removed, or None if absent."""
    with Transaction(conn):
        hostnames = list_user_hostnames(conn, user_id)
        conn.execute("DELETE FROM websites WHERE user_id = :id", {"id": user_id})
        deleted = conn.execute("DELETE FROM users WHERE id = :id", {"id": user_id}).rowcount
    return hostnames if deleted else None


# Sessions. Only SHA-256(token) is stored, so reading the database does not yield usable cookies.


def insert_session(conn: sqlite3.Connection, token_hash: bytes, user_id: str, now: int, expires: int) -> None:
    conn.execute(
        "INSERT INTO sessions (token_hash, user_id, date_created, date_expires)"
        " VALUES (:hash, :user_id, :now, :expires)",
        {"hash": token_hash, "user_id": user_id, "now": now, "expires": expires},
    )


def session_user(conn: sqlite3.Connection, token_hash: bytes) -> tuple[User, int] | None:
    """The user a session belongs to and the session's expiry (unix s), expired or not."""
    row = conn.execute(
        f"SELECT {_USER_COLUMNS}, s.date_expires FROM sessions s JOIN users u ON u.id = s.user_id"
        " WHERE s.token_hash = :hash",
        {"hash": token_hash},
    ).fetchone()
    user = user_from_row(row)
    return None if user is None else (user, int(row[USER_WIDTH]))


def delete_session(conn: sqlite3.Connection, token_hash: bytes) -> bool:
    return conn.execute("DELETE FROM sessions WHERE token_hash = :hash", {"hash": token_hash}).rowcount > 0


def purge_expired_sessions(conn: sqlite3.Connection, now: int) -> int:
    return conn.execute("DELETE FROM sessions WHERE date_expires <= :now", {"now": now}).rowcount


# Websites. Hostnames are globally unique (the primary key); the owner is the user who created the site.


def website_owner(conn: sqlite3.Connection, hostname: str) -> str | None:
    row = conn.execute("SELECT user_id FROM websites WHERE hostname = :hostname", {"hostname": hostname}).fetchone()
    return None if row is None else str(row[0])


def list_user_hostnames(conn: sqlite3.Connection, user_id: str) -> list[str]:
    rows = conn.execute("SELECT hostname FROM websites WHERE user_id = :id ORDER BY hostname", {"id": user_id})
    return [str(row[0]) for row in rows]


def insert_website(conn: sqlite3.Connection, hostname: str, user_id: str, now: int) -> None:
    try:
        conn.execute(
            "INSERT INTO websites (hostname, user_id, date_created, date_updated, settings)"
            " VALUES (:hostname, :user_id, :now, :now, '{}')",
            {"hostname": hostname, "user_id": user_id, "now": now},
        )
    except sqlite3.IntegrityError:
        raise AlreadyExists("website already exists") from None


def rename_website(conn: sqlite3.Connection, old: str, new: str, now: int) -> bool:
    """Rename a site; False if `old` is gone. Raises AlreadyExists if `new` is taken."""
    try:
        cursor = conn.execute(
            "UPDATE websites SET hostname = :new, date_updated = :now WHERE hostname = :old",
            {"old": old, "new": new, "now": now},
        )
    except sqlite3.IntegrityError:
        raise AlreadyExists("website already exists") from None
    return cursor.rowcount > 0


def delete_website(conn: sqlite3.Connection, hostname: str) -> bool:
    return conn.execute("DELETE FROM websites WHERE hostname = :hostname", {"hostname": hostname}).rowcount > 0


# A website's own settings: one row per site that has any, every column NULL when unset.


def _site_settings_params(hostname: str, settings: SiteSettings, now: int) -> dict[str, object]:
    params: dict[str, object] = {name: getattr(settings, name) for name in SITE_SETTING_FIELDS}
    for name in FLAG_FIELDS:
        if params[name] is not None:
            params[name] = int(bool(params[name]))
    extensions = settings.download_extensions
    params["download_extensions"] = None if extensions is None else ",".join(extensions)
    return params | {"hostname": hostname, "now": now}


def get_site_settings(conn: sqlite3.Connection, hostname: str) -> SiteSettings:
    """The site's settings (all unset when it has none stored, or no such site)."""
    row = conn.execute(
        f"SELECT {', '.join(SITE_SETTING_FIELDS)} FROM website_settings WHERE hostname = :hostname",
        {"hostname": hostname},
    ).fetchone()
    return SiteSettings() if row is None else site_settings_from_row(row)


def list_site_settings(conn: sqlite3.Connection) -> dict[str, SiteSettings]:
    """Every site's stored settings, by hostname (sites without a row are left out)."""
    rows = conn.execute(f"SELECT hostname, {', '.join(SITE_SETTING_FIELDS)} FROM website_settings ORDER BY hostname")
    return {str(row[0]): site_settings_from_row(row[1:]) for row in rows}


def update_site_settings(
    conn: sqlite3.Connection, hostname: str, changes: dict[str, object], now: int
) -> SiteSettings | None:
    """Set the named fields (keys of SITE_SETTING_FIELDS; None unsets one) and return the site's settings
    afterwards; None if there is no such website. Raises KeyError for a field that does not exist."""
    merge_site_settings(SiteSettings(), changes)  # a field that does not exist fails before any write
    with Transaction(conn):
        if website_owner(conn, hostname) is None:
            return None
        fresh = merge_site_settings(get_site_settings(conn, hostname), changes)
        columns = ", ".join(SITE_SETTING_FIELDS)
        conn.execute(
            f"INSERT INTO website_settings (hostname, {columns}, date_updated)"
            f" VALUES (:hostname, {', '.join(':' + name for name in SITE_SETTING_FIELDS)}, :now)"
            " ON CONFLICT(hostname) DO UPDATE SET"
            f" {', '.join(f'{name} = excluded.{name}' for name in SITE_SETTING_FIELDS)},"
            " date_updated = excluded.date_updated",
            _site_settings_params(hostname, fresh, now),
        )
    return fresh


# Annotations: notes on a date or a range of dates of one site, shown on its chart.


def insert_annotation(conn: sqlite3.Connection, annotation: Annotation, max_per_site: int) -> bool:
    """Store a note; False (nothing stored) when the site already has `max_per_site` notes.
    Raises AlreadyExists for a taken id or a site that does not exist."""
    try:
        with Transaction(conn):
            count = conn.execute(
                "SELECT count(*) FROM annotations WHERE hostname = :hostname", {"hostname": annotation.hostname}
            ).fetchone()[0]
            if count >= max_per_site:
                return False
            conn.execute(
                f"INSERT INTO annotations ({ANNOTATION_COLUMNS})"
                " VALUES (:id, :hostname, :start, :end, :text, :created)",
                {
                    "id": annotation.id,
                    "hostname": annotation.hostname,
                    "start": annotation.start,
                    "end": annotation.end,
                    "text": annotation.text,
                    "created": annotation.created,
                },
            )
    except sqlite3.IntegrityError:
        raise AlreadyExists("annotation id taken, or no such website") from None
    return True


def list_annotations(
    conn: sqlite3.Connection, hostname: str, start: str | None = None, end: str | None = None
) -> list[Annotation]:
    """The site's notes that touch the days `start`..`end` (each bound optional), by start day then creation."""
    rows = conn.execute(
        f"SELECT {ANNOTATION_COLUMNS} FROM annotations WHERE hostname = :hostname"
        " AND (:end IS NULL OR start_date <= :end) AND (:start IS NULL OR coalesce(end_date, start_date) >= :start)"
        " ORDER BY start_date, date_created, id",
        {"hostname": hostname, "start": start, "end": end},
    )
    return [annotation_from_row(row) for row in rows]


def delete_annotation(conn: sqlite3.Connection, hostname: str, annotation_id: str) -> bool:
    cursor = conn.execute(
        "DELETE FROM annotations WHERE hostname = :hostname AND id = :id", {"hostname": hostname, "id": annotation_id}
    )
    return cursor.rowcount > 0


def _goal_params(goal: Goal) -> dict[str, object]:
    return {
        "id": goal.id,
        "hostname": goal.hostname,
        "name": goal.name,
        "page": goal.page,
        "prop_name": goal.prop_name,
        "prop_value": goal.prop_value,
        "created": goal.created,
    }


def insert_goal(conn: sqlite3.Connection, goal: Goal, max_per_site: int) -> bool:
    """Store a goal; False (nothing stored) when the site already has `max_per_site` goals.
    Raises AlreadyExists for a taken id or a site that does not exist."""
    try:
        with Transaction(conn):
            count = conn.execute(
                "SELECT count(*) FROM goals WHERE hostname = :hostname", {"hostname": goal.hostname}
            ).fetchone()[0]
            if count >= max_per_site:
                return False
            conn.execute(
                f"INSERT INTO goals ({GOAL_COLUMNS})"
                " VALUES (:id, :hostname, :name, :page, :prop_name, :prop_value, :created)",
                _goal_params(goal),
            )
    except sqlite3.IntegrityError:
        raise AlreadyExists("goal id taken, or no such website") from None
    return True


def list_goals(conn: sqlite3.Connection, hostname: str) -> list[Goal]:
    """The site's goals, oldest first."""
    rows = conn.execute(
        f"SELECT {GOAL_COLUMNS} FROM goals WHERE hostname = :hostname ORDER BY date_created, id",
        {"hostname": hostname},
    )
    return [goal_from_row(row) for row in rows]


def delete_goal(conn: sqlite3.Connection, hostname: str, goal_id: str) -> bool:
    cursor = conn.execute(
        "DELETE FROM goals WHERE hostname = :hostname AND id = :id", {"hostname": hostname, "id": goal_id}
    )
    return cursor.rowcount > 0


def umami_ids(conn: sqlite3.Connection) -> dict[str, str]:
    """Every Umami website id and the site it names."""
    return {str(wid): str(host) for wid, host in conn.execute("SELECT website_id, hostname FROM umami_ids")}


def umami_id(conn: sqlite3.Connection, hostname: str) -> str | None:
    row = conn.execute("SELECT website_id FROM umami_ids WHERE hostname = :h", {"h": hostname}).fetchone()
    return None if row is None else str(row[0])


def set_umami_id(conn: sqlite3.Connection, hostname: str, website_id: str | None) -> None:
    """Give `hostname` this Umami website id (None or "": none). Raises AlreadyExists if another site has it."""
    try:
        with Transaction(conn):
            conn.execute("DELETE FROM umami_ids WHERE hostname = :h", {"h": hostname})
            if website_id:
                conn.execute("INSERT INTO umami_ids VALUES (:id, :h)", {"id": website_id, "h": hostname})
    except sqlite3.IntegrityError:
        raise AlreadyExists("another website has this Umami website id") from None


def set_settings(conn: sqlite3.Connection, values: dict[str, str], now: int) -> dict[str, str]:
    """Upsert several tenant settings in one transaction; return all settings afterwards."""
    with Transaction(conn):
        for key, value in values.items():
            set_setting(conn, key, value, now)
        return get_settings(conn)


def set_soft_heap_limit(conn: sqlite3.Connection, limit_bytes: int) -> None:
    """SQLite's process-wide soft heap limit (0 = none); caches shrink before it is passed."""
    conn.execute(f"PRAGMA soft_heap_limit = {int(limit_bytes)}")


# Roles and website grants (migration 6). Admins read every site; a viewer reads the sites granted to them.


def list_users(conn: sqlite3.Connection) -> list[User]:
    rows = conn.execute(f"SELECT {_USER_COLUMNS} FROM users u ORDER BY u.username")
    return [user for user in map(user_from_row, rows) if user is not None]


def count_admins(conn: sqlite3.Connection) -> int:
    count: int = conn.execute("SELECT count(*) FROM users WHERE role = 'admin'").fetchone()[0]
    return count


def set_role(conn: sqlite3.Connection, user_id: str, role: str, now: int) -> bool:
    """Give the user `role` ("admin" or "viewer"); False if the user is gone."""
    cursor = conn.execute(
        "UPDATE users SET role = :role, date_updated = :now WHERE id = :id", {"id": user_id, "role": role, "now": now}
    )
    return cursor.rowcount > 0


def transfer_websites(conn: sqlite3.Connection, from_user_id: str, to_user_id: str) -> int:
    """Make `to_user_id` the owner of every site `from_user_id` added (before that user is deleted)."""
    cursor = conn.execute(
        "UPDATE websites SET user_id = :to WHERE user_id = :from", {"from": from_user_id, "to": to_user_id}
    )
    return cursor.rowcount


def list_grants(conn: sqlite3.Connection, user_id: str) -> list[str]:
    rows = conn.execute("SELECT hostname FROM site_grants WHERE user_id = :id ORDER BY hostname", {"id": user_id})
    return [str(row[0]) for row in rows]


def grants_by_user(conn: sqlite3.Connection) -> dict[str, list[str]]:
    """Every user with at least one grant, and their granted sites in order."""
    found: dict[str, list[str]] = {}
    for user_id, hostname in conn.execute("SELECT user_id, hostname FROM site_grants ORDER BY user_id, hostname"):
        found.setdefault(str(user_id), []).append(str(hostname))
    return found


def set_grants(conn: sqlite3.Connection, user_id: str, hostnames: list[str]) -> None:
    """Replace the user's grants with `hostnames`. Raises MissingWebsite if one is not a site (or the
    user is gone); then nothing changed."""
    try:
        with Transaction(conn):
            conn.execute("DELETE FROM site_grants WHERE user_id = :id", {"id": user_id})
            conn.executemany(
                "INSERT OR IGNORE INTO site_grants (user_id, hostname) VALUES (:id, :hostname)",
                [{"id": user_id, "hostname": hostname} for hostname in hostnames],
            )
    except sqlite3.IntegrityError:
        raise MissingWebsite("website not found") from None


# API keys. Only SHA-256(key) is stored; the key itself is shown once, when it is created.


def insert_api_key(conn: sqlite3.Connection, key: ApiKey, key_hash: bytes) -> None:
    conn.execute(
        "INSERT INTO api_keys (id, user_id, name, key_hash, scope, date_created, date_expires, date_used)"
        " VALUES (:id, :user_id, :name, :hash, :scope, :created, :expires, :used)",
        {
            "id": key.id,
            "user_id": key.user_id,
            "name": key.name,
            "hash": key_hash,
            "scope": key.scope,
            "created": key.date_created,
            "expires": key.date_expires,
            "used": key.date_used,
        },
    )


def list_api_keys(conn: sqlite3.Connection, user_id: str) -> list[ApiKey]:
    """The user's keys, oldest first."""
    rows = conn.execute(
        f"SELECT {KEY_COLUMNS} FROM api_keys k WHERE k.user_id = :id ORDER BY k.date_created, k.id", {"id": user_id}
    )
    return [api_key_from_row(row) for row in rows]


def api_key_user(conn: sqlite3.Connection, key_hash: bytes) -> tuple[ApiKey, User] | None:
    """The key with this hash and its owner, expired or not."""
    row = conn.execute(
        f"SELECT {KEY_COLUMNS}, {_USER_COLUMNS} FROM api_keys k JOIN users u ON u.id = k.user_id"
        " WHERE k.key_hash = :hash",
        {"hash": key_hash},
    ).fetchone()
    if row is None:
        return None
    user = user_from_row(row[KEY_WIDTH:])
    assert user is not None
    return api_key_from_row(row), user


def touch_api_key(conn: sqlite3.Connection, key_id: str, now: int) -> None:
    conn.execute("UPDATE api_keys SET date_used = :now WHERE id = :id", {"id": key_id, "now": now})


def delete_api_key(conn: sqlite3.Connection, user_id: str, key_id: str) -> bool:
    """Revoke one of the user's keys; False if the user has no such key."""
    cursor = conn.execute(
        "DELETE FROM api_keys WHERE id = :id AND user_id = :user_id", {"id": key_id, "user_id": user_id}
    )
    return cursor.rowcount > 0


# Two-factor login (TOTP, RFC 6238) and its one-time recovery codes (SHA-256 hashes).


def get_totp(conn: sqlite3.Connection, user_id: str) -> Totp | None:
    row = conn.execute("SELECT secret, enabled, last_step FROM totp WHERE user_id = :id", {"id": user_id}).fetchone()
    return None if row is None else Totp(str(row[0]), bool(row[1]), int(row[2]))


def set_totp_secret(conn: sqlite3.Connection, user_id: str, secret: str, now: int) -> bool:
    """Store a new secret, not enabled yet, in place of a pending one; False if two-factor login is
    already on (or the user is gone)."""
    with Transaction(conn):
        if conn.execute("SELECT 1 FROM totp WHERE user_id = :id AND enabled = 1", {"id": user_id}).fetchone():
            return False
        if conn.execute("SELECT 1 FROM users WHERE id = :id", {"id": user_id}).fetchone() is None:
            return False
        conn.execute(
            "INSERT INTO totp (user_id, secret, enabled, last_step, date_created) VALUES (:id, :secret, 0, 0, :now)"
            " ON CONFLICT(user_id) DO UPDATE SET secret = excluded.secret, date_created = excluded.date_created",
            {"id": user_id, "secret": secret, "now": now},
        )
    return True


def enable_totp(conn: sqlite3.Connection, user_id: str, step: int, code_hashes: list[bytes]) -> bool:
    """Turn the pending secret on, the code of `step` used, with these recovery codes (replacing any);
    False if there is no pending secret."""
    with Transaction(conn):
        cursor = conn.execute(
            "UPDATE totp SET enabled = 1, last_step = :step WHERE user_id = :id AND enabled = 0",
            {"id": user_id, "step": step},
        )
        if cursor.rowcount == 0:
            return False
        conn.execute("DELETE FROM recovery_codes WHERE user_id = :id", {"id": user_id})
        conn.executemany(
            "INSERT OR IGNORE INTO recovery_codes (user_id, code_hash) VALUES (:id, :hash)",
            [{"id": user_id, "hash": code_hash} for code_hash in code_hashes],
        )
    return True


def use_totp_step(conn: sqlite3.Connection, user_id: str, step: int) -> bool:
    """Record that a code of `step` was accepted; False if a code of that step or a later one was
    (a replayed code), or two-factor login is off."""
    cursor = conn.execute(
        "UPDATE totp SET last_step = :step WHERE user_id = :id AND enabled = 1 AND last_step < :step",
        {"id": user_id, "step": step},
    )
    return cursor.rowcount > 0


def use_recovery_code(conn: sqlite3.Connection, user_id: str, code_hash: bytes) -> bool:
    """Spend a recovery code; False if the user has no such (unused) code."""
    cursor = conn.execute(
        "DELETE FROM recovery_codes WHERE user_id = :id AND code_hash = :hash", {"id": user_id, "hash": code_hash}
    )
    return cursor.rowcount > 0


def count_recovery_codes(conn: sqlite3.Connection, user_id: str) -> int:
    count: int = conn.execute("SELECT count(*) FROM recovery_codes WHERE user_id = :id", {"id": user_id}).fetchone()[0]
    return count


def delete_totp(conn: sqlite3.Connection, user_id: str) -> bool:
    """Turn two-factor login off (or drop a pending secret) and its recovery codes; False if there was none."""
    with Transaction(conn):
        conn.execute("DELETE FROM recovery_codes WHERE user_id = :id", {"id": user_id})
        deleted = conn.execute("DELETE FROM totp WHERE user_id = :id", {"id": user_id}).rowcount
    return deleted > 0


# Share links: a site's dashboard, read-only, for whoever has the link (and its password, if it has one).


def insert_share(conn: sqlite3.Connection, share: Share) -> None:
    """Raises MissingWebsite if the site is gone."""
    try:
        conn.execute(
            f"INSERT INTO shares ({SHARE_COLUMNS}) VALUES (:id, :hostname, :name, :password, :k, :panels,"
            " :frame_ancestors, :date_created, :date_expires)",
            {
                "id": share.id,
                "hostname": share.hostname,
                "name": share.name,
                "password": share.password,
                "k": share.k,
                "panels": ",".join(share.panels),
                "frame_ancestors": " ".join(share.frame_ancestors),
                "date_created": share.date_created,
                "date_expires": share.date_expires,
            },
        )
    except sqlite3.IntegrityError as exc:
        if "FOREIGN KEY" not in str(exc):
            raise
        raise MissingWebsite("website not found") from None


def list_shares(conn: sqlite3.Connection, hostname: str) -> list[Share]:
    """The site's shares, oldest first."""
    rows = conn.execute(
        f"SELECT {SHARE_COLUMNS} FROM shares WHERE hostname = :hostname ORDER BY date_created, id",
        {"hostname": hostname},
    )
    return [share_from_row(row) for row in rows]


def get_share(conn: sqlite3.Connection, share_id: str) -> Share | None:
    row = conn.execute(f"SELECT {SHARE_COLUMNS} FROM shares WHERE id = :id", {"id": share_id}).fetchone()
    return None if row is None else share_from_row(row)


def delete_share(conn: sqlite3.Connection, hostname: str, share_id: str) -> bool:
    cursor = conn.execute(
        "DELETE FROM shares WHERE id = :id AND hostname = :hostname", {"id": share_id, "hostname": hostname}
    )
    return cursor.rowcount > 0
