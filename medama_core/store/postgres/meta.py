"""App data in PostgreSQL: users, sessions, websites with their settings, notes and Umami ids, tenant settings.

As store/sqlite/meta.py does in SQLite.

Every public function of store/sqlite/meta.py is here with the same name, arguments
(a psycopg connection for the sqlite3 one), results and errors, so the API layer
can call either. The differences PostgreSQL forces are kept to three: text with a
NUL character cannot be stored (writes raise InvalidValue; lookups find nothing,
as nothing stored can hold one), a duplicate `insert_user` raises AlreadyExists
where SQLite raises its IntegrityError, and the lists SQLite gives in insertion
order (rowid) come by creation time, then id.

Text columns use the "C" collation: comparisons and ORDER BY go by code point,
as SQLite's BINARY collation does on UTF-8, whatever the database's locale.

To add a column or a table: append a Migration (never edit a shipped one), and
the same change to store/sqlite/meta.py's MIGRATIONS and to meta_copy.TABLES; the
conformance tests (tests/store/postgres/test_meta.py) compare both engines.
"""

from __future__ import annotations

import psycopg

from medama_core.store.door import Migration
from medama_core.store.meta_rows import (
    ANNOTATION_COLUMNS,
    DEFAULT_USER_SETTINGS,
    GOAL_COLUMNS,
    KEY_COLUMNS,
    KEY_WIDTH,
    SHARE_COLUMNS,
    USER_WIDTH,
    AlreadyExists,
    ApiKey,
    MissingWebsite,
    Share,
    Totp,
    User,
    annotation_from_row,
    api_key_from_row,
    goal_from_row,
    share_from_row,
    site_settings_from_row,
    user_from_row,
)

# Shared with the SQLite store (re-exported), so callers catch one AlreadyExists and get one User type.
from medama_core.store.meta_rows import DEFAULT_ADMIN_PASSWORD as DEFAULT_ADMIN_PASSWORD
from medama_core.store.meta_rows import DEFAULT_ADMIN_USERNAME as DEFAULT_ADMIN_USERNAME
from medama_core.store.meta_rows import SITE_SETTING_FIELDS as SITE_SETTING_FIELDS
from medama_core.store.meta_rows import Annotation as Annotation
from medama_core.store.meta_rows import Goal as Goal
from medama_core.store.meta_rows import SiteSettings as SiteSettings
from medama_core.store.meta_rows import merge_site_settings as merge_site_settings
from medama_core.store.meta_rows import new_annotation_id as new_annotation_id
from medama_core.store.meta_rows import new_goal_id as new_goal_id
from medama_core.store.meta_rows import new_key_id as new_key_id
from medama_core.store.meta_rows import new_user_id as new_user_id
from medama_core.store.postgres.db import Connection
from medama_core.store.postgres.errors import InvalidValue

COMPONENT = "meta"  # this schema's row in medama_schema

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        (
            """CREATE TABLE users (
                id text COLLATE "C" PRIMARY KEY,
                username text COLLATE "C" NOT NULL UNIQUE,
                password text NOT NULL,
                date_created bigint NOT NULL,
                date_updated bigint NOT NULL,
                settings text NOT NULL DEFAULT '{}'
            )""",
            """CREATE TABLE websites (
                hostname text COLLATE "C" PRIMARY KEY,
                user_id text COLLATE "C" NOT NULL REFERENCES users(id),
                date_created bigint NOT NULL,
                date_updated bigint NOT NULL,
                settings text NOT NULL DEFAULT '{}'
            )""",
            "CREATE INDEX websites_user_id ON websites(user_id)",
            """CREATE TABLE tenant_settings (
                key text COLLATE "C" PRIMARY KEY,
                value text NOT NULL,
                date_updated bigint NOT NULL
            )""",
            # Only a SHA-256 of each session token is stored, as in SQLite: a leaked database yields no cookies.
            """CREATE TABLE sessions (
                token_hash bytea PRIMARY KEY,
                user_id text COLLATE "C" NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                date_created bigint NOT NULL,
                date_expires bigint NOT NULL
            )""",
            "CREATE INDEX sessions_date_expires ON sessions(date_expires)",
            "CREATE INDEX sessions_user_id ON sessions(user_id)",
            # Every node keeps the site list and the settings in memory. Any change to the tables they come
            # from bumps this counter in the same transaction, so a node that sees the new value also sees
            # the change; changes.py polls it.
            """CREATE TABLE meta_changes (
                id boolean PRIMARY KEY DEFAULT true CHECK (id),
                counter bigint NOT NULL
            )""",
            "INSERT INTO meta_changes (id, counter) VALUES (true, 0)",
            """CREATE FUNCTION meta_changed() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                UPDATE meta_changes SET counter = counter + 1;
                RETURN NULL;
            END $$""",
            *(
                f"CREATE TRIGGER {table}_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}"
                " FOR EACH STATEMENT EXECUTE FUNCTION meta_changed()"
                for table in ("users", "websites", "tenant_settings")
            ),
        ),
    ),
    Migration(
        2,
        (
            # SQLite's migration 3: whether the password is still DEFAULT_ADMIN_PASSWORD (NULL: not known yet).
            "ALTER TABLE users ADD COLUMN password_is_default boolean",
        ),
    ),
    Migration(
        3,
        (
            # SQLite's migration 4: the Umami website id a site answers to on POST /api/send, one per site and
            # one site per id, carried along by a rename and removed with the site. Nodes keep the ids in
            # memory, so a change bumps the change counter as the other tables' changes do.
            """CREATE TABLE umami_ids (
                website_id text COLLATE "C" PRIMARY KEY,
                hostname text COLLATE "C" NOT NULL UNIQUE
                    REFERENCES websites(hostname) ON UPDATE CASCADE ON DELETE CASCADE
            )""",
            "CREATE TRIGGER umami_ids_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON umami_ids"
            " FOR EACH STATEMENT EXECUTE FUNCTION meta_changed()",
        ),
    ),
    Migration(
        4,
        (
            # As SQLite's migration 5: a website's own settings (NULL: as the tenant's, or not set) and the
            # notes on its chart. Every node keeps the settings in memory (the tracker each site gets), so
            # a change bumps the change counter as changes to websites do.
            """CREATE TABLE website_settings (
                hostname text COLLATE "C" PRIMARY KEY
                    REFERENCES websites(hostname) ON UPDATE CASCADE ON DELETE CASCADE,
                click_events boolean,
                page_events boolean,
                outbound_links boolean,
                file_downloads boolean,
                not_found_pages boolean,
                download_extensions text,
                retention_days integer,
                timezone text,
                date_updated bigint NOT NULL
            )""",
            "CREATE TRIGGER website_settings_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON website_settings"
            " FOR EACH STATEMENT EXECUTE FUNCTION meta_changed()",
            """CREATE TABLE annotations (
                id text COLLATE "C" PRIMARY KEY,
                hostname text COLLATE "C" NOT NULL REFERENCES websites(hostname) ON UPDATE CASCADE ON DELETE CASCADE,
                start_date text COLLATE "C" NOT NULL,
                end_date text COLLATE "C",
                text text NOT NULL,
                date_created bigint NOT NULL
            )""",
            "CREATE INDEX annotations_hostname_start ON annotations(hostname, start_date)",
        ),
    ),
    Migration(
        5,
        (
            # SQLite's migration 6: roles (every earlier user becomes an admin), website grants, API keys,
            # two-factor login and share links. None of these is kept in a node's memory: no change trigger.
            "ALTER TABLE users ADD COLUMN role text NOT NULL DEFAULT 'admin' CHECK (role IN ('admin', 'viewer'))",
            """CREATE TABLE site_grants (
                user_id text COLLATE "C" NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                hostname text COLLATE "C" NOT NULL
                    REFERENCES websites(hostname) ON UPDATE CASCADE ON DELETE CASCADE,
                PRIMARY KEY (user_id, hostname)
            )""",
            "CREATE INDEX site_grants_hostname ON site_grants(hostname)",
            """CREATE TABLE api_keys (
                id text COLLATE "C" PRIMARY KEY,
                user_id text COLLATE "C" NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                name text NOT NULL,
                key_hash bytea NOT NULL UNIQUE,
                scope text NOT NULL CHECK (scope IN ('read', 'admin')),
                date_created bigint NOT NULL,
                date_expires bigint,
                date_used bigint
            )""",
            "CREATE INDEX api_keys_user_id ON api_keys(user_id)",
            """CREATE TABLE totp (
                user_id text COLLATE "C" PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
                secret text NOT NULL,
                enabled boolean NOT NULL DEFAULT false,
                last_step bigint NOT NULL DEFAULT 0,
                date_created bigint NOT NULL
            )""",
            """CREATE TABLE recovery_codes (
                user_id text COLLATE "C" NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                code_hash bytea NOT NULL,
                PRIMARY KEY (user_id, code_hash)
            )""",
            """CREATE TABLE shares (
                id text COLLATE "C" PRIMARY KEY,
                hostname text COLLATE "C" NOT NULL REFERENCES websites(hostname) ON UPDATE CASCADE ON DELETE CASCADE,
                name text NOT NULL,
                password text,
                k integer NOT NULL,
                panels text NOT NULL,
                frame_ancestors text NOT NULL,
                date_created bigint NOT NULL,
                date_expires bigint
            )""",
            "CREATE INDEX shares_hostname ON shares(hostname)",
        ),
    ),
    Migration(
        6,
        (
            # SQLite's migration 7: a site's goals. Read per request, never kept in a node's memory.
            """CREATE TABLE goals (
                id text COLLATE "C" PRIMARY KEY,
                hostname text COLLATE "C" NOT NULL REFERENCES websites(hostname) ON UPDATE CASCADE ON DELETE CASCADE,
                name text NOT NULL,
                page text,
                prop_name text,
                prop_value text,
                date_created bigint NOT NULL,
                CHECK ((page IS NULL) <> (prop_name IS NULL)),
                CHECK (prop_value IS NULL OR prop_name IS NOT NULL)
            )""",
            "CREATE INDEX goals_hostname ON goals(hostname)",
        ),
    ),
)


def _storable(*values: str | None) -> bool:
    """False if a value holds a NUL character, which PostgreSQL text cannot store."""
    return not any(value is not None and "\x00" in value for value in values)


def _require_storable(*values: str | None) -> None:
    if not _storable(*values):
        raise InvalidValue("text may not contain a NUL character")


def count_users(conn: Connection) -> int:
    row = conn.execute("SELECT count(*) FROM users").fetchone()
    return int(row[0]) if row else 0


def insert_user(
    conn: Connection,
    user_id: str,
    username: str,
    password_hash: str,
    now: int,
    *,
    password_is_default: bool = False,
    role: str = "admin",
) -> None:
    """Add a user; `password_is_default` says the hash is of DEFAULT_ADMIN_PASSWORD (the caller knows).
    `role` is "admin" or "viewer" (permissions.Role).
    Raises AlreadyExists if the id or username is taken (SQLite raises sqlite3.IntegrityError)."""
    _require_storable(user_id, username, password_hash)
    params = {"id": user_id, "username": username, "password": password_hash, "now": now, "role": role}
    try:
        conn.execute(
            "INSERT INTO users (id, username, password, date_created, date_updated, settings, password_is_default,"
            " role) VALUES (%(id)s, %(username)s, %(password)s, %(now)s, %(now)s, %(settings)s, %(default)s,"
            " %(role)s)",
            params | {"settings": DEFAULT_USER_SETTINGS, "default": password_is_default},
        )
    except psycopg.IntegrityError:
        raise AlreadyExists("user already exists") from None


def list_usernames(conn: Connection) -> list[str]:
    return [str(row[0]) for row in conn.execute("SELECT username FROM users ORDER BY username")]


def count_sessions(conn: Connection, user_id: str) -> int:
    if not _storable(user_id):
        return 0
    row = conn.execute("SELECT count(*) FROM sessions WHERE user_id = %(id)s", {"id": user_id}).fetchone()
    return int(row[0]) if row else 0


def list_hostnames(conn: Connection) -> list[str]:
    return [str(row[0]) for row in conn.execute("SELECT hostname FROM websites ORDER BY hostname")]


def changes_since(conn: Connection, version: int | None) -> tuple[int, list[str], dict[str, str]] | None:
    """The change counter (changes.py) and the websites and tenant settings, if the counter moved since
    `version` (None: always); else None. Unlike SQLite's `PRAGMA data_version` it counts this node's own
    changes too, which only costs a reload. The counter is read first, so the lists are at least that new."""
    row = conn.execute("SELECT counter FROM meta_changes").fetchone()
    current = int(row[0]) if row else 0
    if current == version:
        return None
    return current, list_hostnames(conn), get_settings(conn)


def get_settings(conn: Connection) -> dict[str, str]:
    return {str(key): str(value) for key, value in conn.execute("SELECT key, value FROM tenant_settings ORDER BY key")}


def set_setting(conn: Connection, key: str, value: str, now: int) -> None:
    _require_storable(key, value)
    conn.execute(
        "INSERT INTO tenant_settings (key, value, date_updated) VALUES (%(key)s, %(value)s, %(now)s)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value, date_updated = excluded.date_updated",
        {"key": key, "value": value, "now": now},
    )


_USER_COLUMNS = (
    "u.id, u.username, u.password, u.date_created, u.date_updated, u.settings, u.password_is_default, u.role,"
    " EXISTS (SELECT 1 FROM totp t WHERE t.user_id = u.id AND t.enabled)"
)


def get_user(conn: Connection, user_id: str) -> User | None:
    if not _storable(user_id):
        return None
    row = conn.execute(f"SELECT {_USER_COLUMNS} FROM users u WHERE u.id = %(id)s", {"id": user_id}).fetchone()
    return user_from_row(row)


def get_user_by_username(conn: Connection, username: str) -> User | None:
    """Exact, case-sensitive match, as upstream's SQLite `=`."""
    if not _storable(username):
        return None
    row = conn.execute(
        f"SELECT {_USER_COLUMNS} FROM users u WHERE u.username = %(username)s", {"username": username}
    ).fetchone()
    return user_from_row(row)


def update_user(
    conn: Connection,
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
    if not _storable(user_id):
        return None
    _require_storable(username, password_hash, settings)
    params = {"id": user_id, "username": username, "password": password_hash, "settings": settings, "now": now}
    try:
        with conn.transaction():
            conn.execute(
                "UPDATE users SET username = coalesce(%(username)s, username),"
                " password = coalesce(%(password)s, password), settings = coalesce(%(settings)s, settings),"
                " date_updated = %(now)s,"
                " password_is_default = CASE WHEN %(password)s::text IS NULL THEN password_is_default ELSE false END"
                " WHERE id = %(id)s",
                params,
            )
            if password_hash is not None:
                conn.execute(
                    "DELETE FROM sessions WHERE user_id = %(id)s AND token_hash IS DISTINCT FROM %(keep)s::bytea",
                    {"id": user_id, "keep": keep_session},
                )
    except psycopg.IntegrityError:
        raise AlreadyExists("user already exists") from None
    return get_user(conn, user_id)


def set_password_is_default(conn: Connection, user_id: str, is_default: bool) -> None:
    """Record what a check of the password against DEFAULT_ADMIN_PASSWORD found (a login, or start-up)."""
    if not _storable(user_id):
        return
    conn.execute(
        "UPDATE users SET password_is_default = %(default)s WHERE id = %(id)s", {"id": user_id, "default": is_default}
    )


# SQLite lists these in insertion order (rowid); PostgreSQL has none, so by creation time, then id.


def users_with_unknown_default(conn: Connection) -> list[User]:
    """Users whose password has not been checked against DEFAULT_ADMIN_PASSWORD yet."""
    rows = conn.execute(
        f"SELECT {_USER_COLUMNS} FROM users u WHERE u.password_is_default IS NULL ORDER BY u.date_created, u.id"
    )
    return [user for user in map(user_from_row, rows) if user is not None]


def usernames_with_default_password(conn: Connection) -> list[str]:
    rows = conn.execute("SELECT username FROM users WHERE password_is_default ORDER BY date_created, id")
    return [str(row[0]) for row in rows]


def delete_user(conn: Connection, user_id: str) -> list[str] | None:
    """Delete a user, their websites and (by cascade) their sessions; the hostnames removed, or None if absent."""
    if not _storable(user_id):
        return None
    with conn.transaction():
        # Locking the user's row first makes another node's insert_website for this user wait, then fail,
        # instead of slipping a website in between the two deletes.
        if conn.execute("SELECT 1 FROM users WHERE id = %(id)s FOR UPDATE", {"id": user_id}).fetchone() is None:
            return None
        rows = conn.execute("DELETE FROM websites WHERE user_id = %(id)s RETURNING hostname", {"id": user_id})
        hostnames = sorted(str(row[0]) for row in rows)  # str order is code-point order, as ORDER BY in "C"
        conn.execute("DELETE FROM users WHERE id = %(id)s", {"id": user_id})
    return hostnames


# Sessions. Only SHA-256(token) is stored, so reading the database does not yield usable cookies.


def insert_session(conn: Connection, token_hash: bytes, user_id: str, now: int, expires: int) -> None:
    _require_storable(user_id)
    conn.execute(
        "INSERT INTO sessions (token_hash, user_id, date_created, date_expires)"
        " VALUES (%(hash)s, %(user_id)s, %(now)s, %(expires)s)",
        {"hash": token_hash, "user_id": user_id, "now": now, "expires": expires},
    )


def session_user(conn: Connection, token_hash: bytes) -> tuple[User, int] | None:
    """The user a session belongs to and the session's expiry (unix s), expired or not."""
    row = conn.execute(
        f"SELECT {_USER_COLUMNS}, s.date_expires FROM sessions s JOIN users u ON u.id = s.user_id"
        " WHERE s.token_hash = %(hash)s",
        {"hash": token_hash},
    ).fetchone()
    user = user_from_row(row)
    return None if user is None or row is None else (user, int(row[USER_WIDTH]))


def delete_session(conn: Connection, token_hash: bytes) -> bool:
    return conn.execute("DELETE FROM sessions WHERE token_hash = %(hash)s", {"hash": token_hash}).rowcount > 0


def purge_expired_sessions(conn: Connection, now: int) -> int:
    return conn.execute("DELETE FROM sessions WHERE date_expires <= %(now)s", {"now": now}).rowcount


# Websites. Hostnames are globally unique (the primary key); the owner is the user who created the site.


def website_owner(conn: Connection, hostname: str) -> str | None:
    if not _storable(hostname):
        return None
    row = conn.execute("SELECT user_id FROM websites WHERE hostname = %(hostname)s", {"hostname": hostname}).fetchone()
    return None if row is None else str(row[0])


def list_user_hostnames(conn: Connection, user_id: str) -> list[str]:
    if not _storable(user_id):
        return []
    rows = conn.execute("SELECT hostname FROM websites WHERE user_id = %(id)s ORDER BY hostname", {"id": user_id})
    return [str(row[0]) for row in rows]


def insert_website(conn: Connection, hostname: str, user_id: str, now: int) -> None:
    _require_storable(hostname, user_id)
    try:
        conn.execute(
            "INSERT INTO websites (hostname, user_id, date_created, date_updated, settings)"
            " VALUES (%(hostname)s, %(user_id)s, %(now)s, %(now)s, '{}')",
            {"hostname": hostname, "user_id": user_id, "now": now},
        )
    except psycopg.IntegrityError:
        raise AlreadyExists("website already exists") from None


def rename_website(conn: Connection, old: str, new: str, now: int) -> bool:
    """Rename a site; False if `old` is gone. Raises AlreadyExists if `new` is taken."""
    if not _storable(old):
        return False
    _require_storable(new)
    try:
        cursor = conn.execute(
            "UPDATE websites SET hostname = %(new)s, date_updated = %(now)s WHERE hostname = %(old)s",
            {"old": old, "new": new, "now": now},
        )
    except psycopg.IntegrityError:
        raise AlreadyExists("website already exists") from None
    return cursor.rowcount > 0


def delete_website(conn: Connection, hostname: str) -> bool:
    if not _storable(hostname):
        return False
    return conn.execute("DELETE FROM websites WHERE hostname = %(hostname)s", {"hostname": hostname}).rowcount > 0


def umami_ids(conn: Connection) -> dict[str, str]:
    """Every Umami website id and the site it names."""
    return {str(wid): str(host) for wid, host in conn.execute("SELECT website_id, hostname FROM umami_ids")}


def umami_id(conn: Connection, hostname: str) -> str | None:
    if not _storable(hostname):
        return None
    row = conn.execute("SELECT website_id FROM umami_ids WHERE hostname = %(h)s", {"h": hostname}).fetchone()
    return None if row is None else str(row[0])


def set_umami_id(conn: Connection, hostname: str, website_id: str | None) -> None:
    """Give `hostname` this Umami website id (None or "": none). Raises AlreadyExists if another site has it."""
    _require_storable(hostname, website_id)
    try:
        with conn.transaction():
            conn.execute("DELETE FROM umami_ids WHERE hostname = %(h)s", {"h": hostname})
            if website_id:
                conn.execute(
                    "INSERT INTO umami_ids (website_id, hostname) VALUES (%(id)s, %(h)s)",
                    {"id": website_id, "h": hostname},
                )
    except psycopg.IntegrityError:
        raise AlreadyExists("another website has this Umami website id") from None


# A website's own settings: one row per site that has any, every column NULL when unset.


def get_site_settings(conn: Connection, hostname: str) -> SiteSettings:
    """The site's settings (all unset when it has none stored, or no such site)."""
    if not _storable(hostname):
        return SiteSettings()
    row = conn.execute(
        f"SELECT {', '.join(SITE_SETTING_FIELDS)} FROM website_settings WHERE hostname = %(hostname)s",
        {"hostname": hostname},
    ).fetchone()
    return SiteSettings() if row is None else site_settings_from_row(row)


def list_site_settings(conn: Connection) -> dict[str, SiteSettings]:
    """Every site's stored settings, by hostname (sites without a row are left out)."""
    rows = conn.execute(f"SELECT hostname, {', '.join(SITE_SETTING_FIELDS)} FROM website_settings ORDER BY hostname")
    return {str(row[0]): site_settings_from_row(row[1:]) for row in rows}


def update_site_settings(conn: Connection, hostname: str, changes: dict[str, object], now: int) -> SiteSettings | None:
    """Set the named fields (keys of SITE_SETTING_FIELDS; None unsets one) and return the site's settings
    afterwards; None if there is no such website. Raises KeyError for a field that does not exist."""
    merge_site_settings(SiteSettings(), changes)  # a field that does not exist fails before any write
    if not _storable(hostname):
        return None
    if isinstance(changes.get("timezone"), str):
        _require_storable(str(changes["timezone"]))
    with conn.transaction():
        # Lock the site's row, so a rename or delete on another node waits for this (or this for it).
        found = conn.execute(
            "SELECT 1 FROM websites WHERE hostname = %(hostname)s FOR UPDATE", {"hostname": hostname}
        ).fetchone()
        if found is None:
            return None
        fresh = merge_site_settings(get_site_settings(conn, hostname), changes)
        params: dict[str, object] = {name: getattr(fresh, name) for name in SITE_SETTING_FIELDS}
        extensions = fresh.download_extensions
        params["download_extensions"] = None if extensions is None else ",".join(extensions)
        columns = ", ".join(SITE_SETTING_FIELDS)
        conn.execute(
            f"INSERT INTO website_settings (hostname, {columns}, date_updated)"
            f" VALUES (%(hostname)s, {', '.join(f'%({name})s' for name in SITE_SETTING_FIELDS)}, %(now)s)"
            " ON CONFLICT (hostname) DO UPDATE SET"
            f" {', '.join(f'{name} = excluded.{name}' for name in SITE_SETTING_FIELDS)},"
            " date_updated = excluded.date_updated",
            params | {"hostname": hostname, "now": now},
        )
    return fresh


# Goals: what a site counts as a conversion.


def insert_goal(conn: Connection, goal: Goal, max_per_site: int) -> bool:
    """Store a goal; False (nothing stored) when the site already has `max_per_site` goals.
    Raises AlreadyExists for a taken id or a site that does not exist."""
    _require_storable(goal.id, goal.hostname, goal.name, goal.page, goal.prop_name, goal.prop_value)
    try:
        with conn.transaction():
            # The site's row lock makes concurrent inserts for one site count one after the other.
            found = conn.execute(
                "SELECT 1 FROM websites WHERE hostname = %(hostname)s FOR UPDATE", {"hostname": goal.hostname}
            ).fetchone()
            if found is None:
                raise AlreadyExists("goal id taken, or no such website")
            row = conn.execute(
                "SELECT count(*) FROM goals WHERE hostname = %(hostname)s", {"hostname": goal.hostname}
            ).fetchone()
            if row is not None and int(row[0]) >= max_per_site:
                return False
            conn.execute(
                f"INSERT INTO goals ({GOAL_COLUMNS})"
                " VALUES (%(id)s, %(hostname)s, %(name)s, %(page)s, %(prop_name)s, %(prop_value)s, %(created)s)",
                {
                    "id": goal.id,
                    "hostname": goal.hostname,
                    "name": goal.name,
                    "page": goal.page,
                    "prop_name": goal.prop_name,
                    "prop_value": goal.prop_value,
                    "created": goal.created,
                },
            )
    except psycopg.IntegrityError:
        raise AlreadyExists("goal id taken, or no such website") from None
    return True


def list_goals(conn: Connection, hostname: str) -> list[Goal]:
    """The site's goals, oldest first."""
    if not _storable(hostname):
        return []
    rows = conn.execute(
        f"SELECT {GOAL_COLUMNS} FROM goals WHERE hostname = %(hostname)s ORDER BY date_created, id",
        {"hostname": hostname},
    )
    return [goal_from_row(row) for row in rows]


def delete_goal(conn: Connection, hostname: str, goal_id: str) -> bool:
    if not _storable(hostname, goal_id):
        return False
    cursor = conn.execute(
        "DELETE FROM goals WHERE hostname = %(hostname)s AND id = %(id)s", {"hostname": hostname, "id": goal_id}
    )
    return cursor.rowcount > 0


# Annotations: notes on a date or a range of dates of one site, shown on its chart.


def insert_annotation(conn: Connection, annotation: Annotation, max_per_site: int) -> bool:
    """Store a note; False (nothing stored) when the site already has `max_per_site` notes.
    Raises AlreadyExists for a taken id or a site that does not exist."""
    _require_storable(annotation.id, annotation.hostname, annotation.start, annotation.end, annotation.text)
    try:
        with conn.transaction():
            # The site's row lock makes concurrent inserts for one site count one after the other.
            found = conn.execute(
                "SELECT 1 FROM websites WHERE hostname = %(hostname)s FOR UPDATE", {"hostname": annotation.hostname}
            ).fetchone()
            if found is None:
                raise AlreadyExists("annotation id taken, or no such website")
            row = conn.execute(
                "SELECT count(*) FROM annotations WHERE hostname = %(hostname)s", {"hostname": annotation.hostname}
            ).fetchone()
            if row is not None and int(row[0]) >= max_per_site:
                return False
            conn.execute(
                f"INSERT INTO annotations ({ANNOTATION_COLUMNS})"
                " VALUES (%(id)s, %(hostname)s, %(start)s, %(end)s, %(text)s, %(created)s)",
                {
                    "id": annotation.id,
                    "hostname": annotation.hostname,
                    "start": annotation.start,
                    "end": annotation.end,
                    "text": annotation.text,
                    "created": annotation.created,
                },
            )
    except psycopg.IntegrityError:
        raise AlreadyExists("annotation id taken, or no such website") from None
    return True


def list_annotations(
    conn: Connection, hostname: str, start: str | None = None, end: str | None = None
) -> list[Annotation]:
    """The site's notes that touch the days `start`..`end` (each bound optional), by start day then creation."""
    if not _storable(hostname, start, end):
        return []
    rows = conn.execute(
        f"SELECT {ANNOTATION_COLUMNS} FROM annotations WHERE hostname = %(hostname)s"
        " AND (%(end)s::text IS NULL OR start_date <= %(end)s::text)"
        " AND (%(start)s::text IS NULL OR coalesce(end_date, start_date) >= %(start)s::text)"
        " ORDER BY start_date, date_created, id",
        {"hostname": hostname, "start": start, "end": end},
    )
    return [annotation_from_row(row) for row in rows]


def delete_annotation(conn: Connection, hostname: str, annotation_id: str) -> bool:
    if not _storable(hostname, annotation_id):
        return False
    cursor = conn.execute(
        "DELETE FROM annotations WHERE hostname = %(hostname)s AND id = %(id)s",
        {"hostname": hostname, "id": annotation_id},
    )
    return cursor.rowcount > 0


def set_settings(conn: Connection, values: dict[str, str], now: int) -> dict[str, str]:
    """Upsert several tenant settings in one transaction; return all settings afterwards."""
    _require_storable(*values, *values.values())
    with conn.transaction():
        for key, value in values.items():
            set_setting(conn, key, value, now)
        return get_settings(conn)


def set_soft_heap_limit(conn: Connection, limit_bytes: int) -> None:
    """Nothing to do: SQLite's heap limit is in this process; PostgreSQL's memory is the server's to manage."""


# Roles and website grants. Admins read every site; a viewer reads the sites granted to them.


def list_users(conn: Connection) -> list[User]:
    rows = conn.execute(f"SELECT {_USER_COLUMNS} FROM users u ORDER BY u.username")
    return [user for user in map(user_from_row, rows) if user is not None]


def count_admins(conn: Connection) -> int:
    row = conn.execute("SELECT count(*) FROM users WHERE role = 'admin'").fetchone()
    return int(row[0]) if row else 0


def set_role(conn: Connection, user_id: str, role: str, now: int) -> bool:
    """Give the user `role` ("admin" or "viewer"); False if the user is gone."""
    if not _storable(user_id):
        return False
    cursor = conn.execute(
        "UPDATE users SET role = %(role)s, date_updated = %(now)s WHERE id = %(id)s",
        {"id": user_id, "role": role, "now": now},
    )
    return cursor.rowcount > 0


def transfer_websites(conn: Connection, from_user_id: str, to_user_id: str) -> int:
    """Make `to_user_id` the owner of every site `from_user_id` added (before that user is deleted)."""
    if not _storable(from_user_id):
        return 0
    _require_storable(to_user_id)
    cursor = conn.execute(
        "UPDATE websites SET user_id = %(to)s WHERE user_id = %(from)s", {"from": from_user_id, "to": to_user_id}
    )
    return cursor.rowcount


def list_grants(conn: Connection, user_id: str) -> list[str]:
    if not _storable(user_id):
        return []
    rows = conn.execute("SELECT hostname FROM site_grants WHERE user_id = %(id)s ORDER BY hostname", {"id": user_id})
    return [str(row[0]) for row in rows]


def grants_by_user(conn: Connection) -> dict[str, list[str]]:
    """Every user with at least one grant, and their granted sites in order."""
    found: dict[str, list[str]] = {}
    for user_id, hostname in conn.execute("SELECT user_id, hostname FROM site_grants ORDER BY user_id, hostname"):
        found.setdefault(str(user_id), []).append(str(hostname))
    return found


def set_grants(conn: Connection, user_id: str, hostnames: list[str]) -> None:
    """Replace the user's grants with `hostnames`. Raises MissingWebsite if one is not a site (or the
    user is gone); then nothing changed."""
    if not _storable(user_id, *hostnames):
        raise MissingWebsite("website not found")
    try:
        with conn.transaction():
            conn.execute("DELETE FROM site_grants WHERE user_id = %(id)s", {"id": user_id})
            for hostname in hostnames:
                conn.execute(
                    "INSERT INTO site_grants (user_id, hostname) VALUES (%(id)s, %(hostname)s) ON CONFLICT DO NOTHING",
                    {"id": user_id, "hostname": hostname},
                )
    except psycopg.IntegrityError:
        raise MissingWebsite("website not found") from None


# API keys. Only SHA-256(key) is stored; the key itself is shown once, when it is created.


def insert_api_key(conn: Connection, key: ApiKey, key_hash: bytes) -> None:
    _require_storable(key.id, key.user_id, key.name, key.scope)
    conn.execute(
        "INSERT INTO api_keys (id, user_id, name, key_hash, scope, date_created, date_expires, date_used)"
        " VALUES (%(id)s, %(user_id)s, %(name)s, %(hash)s, %(scope)s, %(created)s, %(expires)s, %(used)s)",
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


def list_api_keys(conn: Connection, user_id: str) -> list[ApiKey]:
    """The user's keys, oldest first."""
    if not _storable(user_id):
        return []
    rows = conn.execute(
        f"SELECT {KEY_COLUMNS} FROM api_keys k WHERE k.user_id = %(id)s ORDER BY k.date_created, k.id",
        {"id": user_id},
    )
    return [api_key_from_row(row) for row in rows]


def api_key_user(conn: Connection, key_hash: bytes) -> tuple[ApiKey, User] | None:
    """The key with this hash and its owner, expired or not."""
    row = conn.execute(
        f"SELECT {KEY_COLUMNS}, {_USER_COLUMNS} FROM api_keys k JOIN users u ON u.id = k.user_id"
        " WHERE k.key_hash = %(hash)s",
        {"hash": key_hash},
    ).fetchone()
    if row is None:
        return None
    user = user_from_row(row[KEY_WIDTH:])
    assert user is not None
    return api_key_from_row(row), user


def touch_api_key(conn: Connection, key_id: str, now: int) -> None:
    if _storable(key_id):
        conn.execute("UPDATE api_keys SET date_used = %(now)s WHERE id = %(id)s", {"id": key_id, "now": now})


def delete_api_key(conn: Connection, user_id: str, key_id: str) -> bool:
    """Revoke one of the user's keys; False if the user has no such key."""
    if not _storable(user_id, key_id):
        return False
    cursor = conn.execute(
        "DELETE FROM api_keys WHERE id = %(id)s AND user_id = %(user_id)s", {"id": key_id, "user_id": user_id}
    )
    return cursor.rowcount > 0


# Two-factor login (TOTP, RFC 6238) and its one-time recovery codes (SHA-256 hashes).


def get_totp(conn: Connection, user_id: str) -> Totp | None:
    if not _storable(user_id):
        return None
    row = conn.execute("SELECT secret, enabled, last_step FROM totp WHERE user_id = %(id)s", {"id": user_id}).fetchone()
    return None if row is None else Totp(str(row[0]), bool(row[1]), int(row[2]))


def set_totp_secret(conn: Connection, user_id: str, secret: str, now: int) -> bool:
    """Store a new secret, not enabled yet, in place of a pending one; False if two-factor login is
    already on (or the user is gone)."""
    if not _storable(user_id):
        return False
    _require_storable(secret)
    with conn.transaction():
        # Locking the user's row orders this with a concurrent enable or delete of the same user.
        if conn.execute("SELECT 1 FROM users WHERE id = %(id)s FOR UPDATE", {"id": user_id}).fetchone() is None:
            return False
        if conn.execute("SELECT 1 FROM totp WHERE user_id = %(id)s AND enabled", {"id": user_id}).fetchone():
            return False
        conn.execute(
            "INSERT INTO totp (user_id, secret, enabled, last_step, date_created)"
            " VALUES (%(id)s, %(secret)s, false, 0, %(now)s)"
            " ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, date_created = excluded.date_created",
            {"id": user_id, "secret": secret, "now": now},
        )
    return True


def enable_totp(conn: Connection, user_id: str, step: int, code_hashes: list[bytes]) -> bool:
    """Turn the pending secret on, the code of `step` used, with these recovery codes (replacing any);
    False if there is no pending secret."""
    if not _storable(user_id):
        return False
    with conn.transaction():
        cursor = conn.execute(
            "UPDATE totp SET enabled = true, last_step = %(step)s WHERE user_id = %(id)s AND NOT enabled",
            {"id": user_id, "step": step},
        )
        if cursor.rowcount == 0:
            return False
        conn.execute("DELETE FROM recovery_codes WHERE user_id = %(id)s", {"id": user_id})
        for code_hash in code_hashes:
            conn.execute(
                "INSERT INTO recovery_codes (user_id, code_hash) VALUES (%(id)s, %(hash)s) ON CONFLICT DO NOTHING",
                {"id": user_id, "hash": code_hash},
            )
    return True


def use_totp_step(conn: Connection, user_id: str, step: int) -> bool:
    """Record that a code of `step` was accepted; False if a code of that step or a later one was
    (a replayed code), or two-factor login is off."""
    if not _storable(user_id):
        return False
    cursor = conn.execute(
        "UPDATE totp SET last_step = %(step)s WHERE user_id = %(id)s AND enabled AND last_step < %(step)s",
        {"id": user_id, "step": step},
    )
    return cursor.rowcount > 0


def use_recovery_code(conn: Connection, user_id: str, code_hash: bytes) -> bool:
    """Spend a recovery code; False if the user has no such (unused) code."""
    if not _storable(user_id):
        return False
    cursor = conn.execute(
        "DELETE FROM recovery_codes WHERE user_id = %(id)s AND code_hash = %(hash)s", {"id": user_id, "hash": code_hash}
    )
    return cursor.rowcount > 0


def count_recovery_codes(conn: Connection, user_id: str) -> int:
    if not _storable(user_id):
        return 0
    row = conn.execute("SELECT count(*) FROM recovery_codes WHERE user_id = %(id)s", {"id": user_id}).fetchone()
    return int(row[0]) if row else 0


def delete_totp(conn: Connection, user_id: str) -> bool:
    """Turn two-factor login off (or drop a pending secret) and its recovery codes; False if there was none."""
    if not _storable(user_id):
        return False
    with conn.transaction():
        conn.execute("DELETE FROM recovery_codes WHERE user_id = %(id)s", {"id": user_id})
        deleted = conn.execute("DELETE FROM totp WHERE user_id = %(id)s", {"id": user_id}).rowcount
    return deleted > 0


# Share links: a site's dashboard, read-only, for whoever has the link (and its password, if it has one).


def insert_share(conn: Connection, share: Share) -> None:
    """Raises MissingWebsite if the site is gone."""
    panels, ancestors = ",".join(share.panels), " ".join(share.frame_ancestors)
    _require_storable(share.id, share.hostname, share.name, share.password, panels, ancestors)
    try:
        conn.execute(
            f"INSERT INTO shares ({SHARE_COLUMNS}) VALUES (%(id)s, %(hostname)s, %(name)s, %(password)s, %(k)s,"
            " %(panels)s, %(frame_ancestors)s, %(date_created)s, %(date_expires)s)",
            {
                "id": share.id,
                "hostname": share.hostname,
                "name": share.name,
                "password": share.password,
                "k": share.k,
                "panels": panels,
                "frame_ancestors": ancestors,
                "date_created": share.date_created,
                "date_expires": share.date_expires,
            },
        )
    except psycopg.errors.ForeignKeyViolation:
        raise MissingWebsite("website not found") from None


def list_shares(conn: Connection, hostname: str) -> list[Share]:
    """The site's shares, oldest first."""
    if not _storable(hostname):
        return []
    rows = conn.execute(
        f"SELECT {SHARE_COLUMNS} FROM shares WHERE hostname = %(hostname)s ORDER BY date_created, id",
        {"hostname": hostname},
    )
    return [share_from_row(row) for row in rows]


def get_share(conn: Connection, share_id: str) -> Share | None:
    if not _storable(share_id):
        return None
    row = conn.execute(f"SELECT {SHARE_COLUMNS} FROM shares WHERE id = %(id)s", {"id": share_id}).fetchone()
    return None if row is None else share_from_row(row)


def delete_share(conn: Connection, hostname: str, share_id: str) -> bool:
    if not _storable(hostname, share_id):
        return False
    cursor = conn.execute(
        "DELETE FROM shares WHERE id = %(id)s AND hostname = %(hostname)s", {"id": share_id, "hostname": hostname}
    )
    return cursor.rowcount > 0
