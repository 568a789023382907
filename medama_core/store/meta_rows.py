"""App data as values: the types both meta engines return, their rows decoded, new ids, defaults and errors.

store/sqlite/meta.py (SQLite) and store/postgres/meta.py (PostgreSQL) select the same
columns in the same order and decode them here, so a row means one thing on
either engine. Each decoder takes what either driver gives (SQLite's 0/1 or
PostgreSQL's booleans; text or numbers) and returns plain Python values.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class User:
    id: str
    username: str
    password: str
    date_created: int
    date_updated: int
    settings: str  # JSON text, upstream's `{"language":"en"}`
    password_is_default: bool | None = None  # None: not known yet (see migration 3)
    role: str = "admin"  # "admin" or "viewer" (permissions.Role)
    totp: bool = False  # two-factor login is on: signing in needs a code


USER_WIDTH = 9  # the user columns both engines select first (their _USER_COLUMNS)


def user_from_row(row: Any) -> User | None:
    """A `users` row, its first USER_WIDTH columns as both engines select them, as a User."""
    if row is None:
        return None
    user_id, username, password, created, updated, settings, is_default, role, totp = row[:USER_WIDTH]
    default = None if is_default is None else bool(is_default)
    return User(
        str(user_id), str(username), str(password), int(created), int(updated), str(settings), default, str(role),
        bool(totp),
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class SiteSettings:
    """A website's settings; None everywhere means "as the tenant's" (features) or "not set"."""

    click_events: bool | None = None
    page_events: bool | None = None
    outbound_links: bool | None = None
    file_downloads: bool | None = None
    not_found_pages: bool | None = None
    download_extensions: tuple[str, ...] | None = None
    retention_days: int | None = None
    timezone: str | None = None


SITE_SETTING_FIELDS = (
    "click_events",
    "page_events",
    "outbound_links",
    "file_downloads",
    "not_found_pages",
    "download_extensions",
    "retention_days",
    "timezone",
)  # the columns of `website_settings` besides hostname and date_updated, in SiteSettings' order


FLAG_FIELDS = frozenset(SITE_SETTING_FIELDS[:5])


def merge_site_settings(current: SiteSettings, changes: dict[str, object]) -> SiteSettings:
    """`current` with the named fields replaced; KeyError for a name that is not a field."""
    unknown = set(changes) - set(SITE_SETTING_FIELDS)
    if unknown:
        raise KeyError(f"no site setting {sorted(unknown)[0]!r}")
    values: dict[str, Any] = {name: changes.get(name, getattr(current, name)) for name in SITE_SETTING_FIELDS}
    return SiteSettings(**values)


def site_settings_from_row(row: Any) -> SiteSettings:
    """A `website_settings` row (the SITE_SETTING_FIELDS) as SiteSettings."""
    values = dict(zip(SITE_SETTING_FIELDS, row, strict=True))
    for name in FLAG_FIELDS:
        if values[name] is not None:
            values[name] = bool(values[name])
    text = values["download_extensions"]
    values["download_extensions"] = None if text is None else tuple(text.split(",") if text else ())
    if values["retention_days"] is not None:
        values["retention_days"] = int(values["retention_days"])
    return SiteSettings(**values)


@dataclass(frozen=True, slots=True)
class Annotation:
    id: str
    hostname: str
    start: str  # YYYY-MM-DD
    end: str | None  # YYYY-MM-DD, not before start; None for a single day
    text: str
    created: int  # unix seconds


ANNOTATION_COLUMNS = "id, hostname, start_date, end_date, text, date_created"


def annotation_from_row(row: Any) -> Annotation:
    note_id, hostname, start, end, text, created = row
    return Annotation(
        str(note_id), str(hostname), str(start), None if end is None else str(end), str(text), int(created)
    )


@dataclass(frozen=True, slots=True)
class Goal:
    id: str
    hostname: str
    name: str
    page: str | None  # a path pattern (`*`: any run of characters); None for an event goal
    prop_name: str | None  # an event goal's custom property name; None for a page goal
    prop_value: str | None  # the property's value it needs; None: any value
    created: int  # unix seconds


GOAL_COLUMNS = "id, hostname, name, page, prop_name, prop_value, date_created"


def goal_from_row(row: Any) -> Goal:
    goal_id, hostname, name, page, prop_name, prop_value, created = row
    return Goal(
        str(goal_id),
        str(hostname),
        str(name),
        None if page is None else str(page),
        None if prop_name is None else str(prop_name),
        None if prop_value is None else str(prop_value),
        int(created),
    )


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    user_id: str
    name: str
    scope: str  # "read" or "admin" (permissions.Scope)
    date_created: int
    date_expires: int | None = None  # Unix s; None: never
    date_used: int | None = None  # Unix s of the last request made with it (to the minute); None: never used


KEY_COLUMNS = "k.id, k.user_id, k.name, k.scope, k.date_created, k.date_expires, k.date_used"


KEY_WIDTH = 7


def api_key_from_row(row: Any) -> ApiKey:
    key_id, user_id, name, scope, created, expires, used = row[:KEY_WIDTH]
    return ApiKey(
        str(key_id), str(user_id), str(name), str(scope), int(created),
        None if expires is None else int(expires), None if used is None else int(used),
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Totp:
    secret: str  # base32, as the authenticator app got it
    enabled: bool  # False until the first code confirms the app has it
    last_step: int  # the time step of the last code accepted; a code of that step or earlier is refused


@dataclass(frozen=True, slots=True)
class Share:
    id: str
    hostname: str
    name: str
    password: str | None  # a password hash (passwords.py); None: no password
    k: int  # rows with fewer visitors are hidden; 0 and 1 hide nothing
    panels: tuple[str, ...]  # the stats shown besides the totals; (): all
    frame_ancestors: tuple[str, ...]  # origins that may embed it in a frame; (): none
    date_created: int
    date_expires: int | None = None  # Unix s; None: never


SHARE_COLUMNS = "id, hostname, name, password, k, panels, frame_ancestors, date_created, date_expires"


def share_from_row(row: Any) -> Share:
    share_id, hostname, name, password, k, panels, ancestors, created, expires = row
    return Share(
        str(share_id), str(hostname), str(name), None if password is None else str(password), int(k),
        tuple(p for p in str(panels).split(",") if p), tuple(a for a in str(ancestors).split(" ") if a),
        int(created), None if expires is None else int(expires),
    )  # fmt: skip


DEFAULT_ADMIN_USERNAME = "admin"
DEFAULT_ADMIN_PASSWORD = "CHANGE_ME_ON_FIRST_LOGIN"
DEFAULT_USER_SETTINGS = '{"language":"en"}'


def new_user_id() -> str:
    """A `user_`-prefixed id, time-ordered like upstream's TypeIDs (base-32 ms time, then randomness)."""
    return "user_" + _time_ordered_suffix()


def new_goal_id() -> str:
    """A `goal_`-prefixed id, time-ordered like the user ids."""
    return "goal_" + _time_ordered_suffix()


def new_annotation_id() -> str:
    """A `note_`-prefixed id, time-ordered like the user ids."""
    return "note_" + _time_ordered_suffix()


_last_id = 0  # the last id value made here: ids made in one millisecond still sort in the order made
_id_lock = threading.Lock()


def _time_ordered_suffix() -> str:
    global _last_id
    alphabet = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, as TypeID uses
    with _id_lock:
        value = max((int(time.time() * 1000) << 80) | secrets.randbits(80), _last_id + 1)
        _last_id = value
    chars = []
    for _ in range(26):
        chars.append(alphabet[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_key_id() -> str:
    """A `key_`-prefixed, time-ordered id, like user ids."""
    return "key_" + _time_ordered_suffix()


class AlreadyExists(Exception):
    """A write would break a UNIQUE rule (username, hostname); the API answers 409."""


class MissingWebsite(Exception):
    """A grant or share names a site that does not exist (any more); the API answers 404 or 400."""
