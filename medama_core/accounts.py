"""Accounts as the API and `medama user` both change them: the default admin, new passwords, roles, removal.

Shared by `start`, `medama import --create-websites`, `medama user` and the
API, so that each creates and changes accounts the same way, under the same
rules: a password's length and not the default one; the last admin is never
removed or made a viewer while other accounts remain. Functions take a
connection to the app store and are synchronous (with `store`, the meta module of its engine:
store/sqlite/meta.py or store/postgres/meta.py), like store functions; hashing
runs in the caller's thread. The API runs the role and removal functions on
the database's one writer thread, so their check and change are not split
by another request.
"""

from __future__ import annotations

import sqlite3
import time
from types import ModuleType
from typing import Any, Final

from medama_core import passwords
from medama_core.store import meta_rows

# Upstream's bounds (its AuthLogin schema), as the API checks them.
PASSWORD_MIN: Final = 5
PASSWORD_MAX: Final = 128
ROLES: Final = ("admin", "viewer")  # permissions.Role's values, as stored
LAST_ADMIN: Final = "the last admin cannot be {}: make another account an admin first"
DEFAULT_PASSWORD_REFUSED: Final = (
    f"the new password must not be the default {meta_rows.DEFAULT_ADMIN_PASSWORD}, which everyone can read in the docs"
)


# A new account's name goes into `/api/users/{username}`: the server decodes %2F before routing, so a name with a
# slash could be created but never addressed (changed or removed) there again. Sign-in still takes any name.
USERNAME_SLASH_REFUSED: Final = "must not contain '/': the account is addressed as /api/users/{username}"


def new_username_problem(username: str) -> str | None:
    """What is wrong with `username` as a new account name, or None (the 3-48 length is checked by the caller)."""
    return USERNAME_SLASH_REFUSED if "/" in username else None


def new_password_problem(password: str) -> str | None:
    """What is wrong with `password` as a new password, or None."""
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        return f"the password must be {PASSWORD_MIN} to {PASSWORD_MAX} characters long"
    if password == meta_rows.DEFAULT_ADMIN_PASSWORD:
        return DEFAULT_PASSWORD_REFUSED
    return None


def ensure_default_admin(conn: Any, store: ModuleType) -> bool:
    """Create `admin` with the default password when there is no user at all; True if it was created."""
    if store.count_users(conn) != 0:
        return False
    hashed = passwords.hash_password(meta_rows.DEFAULT_ADMIN_PASSWORD)
    user_id, now = meta_rows.new_user_id(), int(time.time())
    store.insert_user(conn, user_id, meta_rows.DEFAULT_ADMIN_USERNAME, hashed, now, password_is_default=True)
    return True


def check_unknown_defaults(conn: Any, store: ModuleType) -> None:
    """Find out, once, whether users from before migration 3 (or upstream's) still have the default password.

    One hash verification per such user, at the start after the upgrade; a hash
    this process cannot verify (argon2 without argon2-cffi) stays unknown.
    """
    for user in store.users_with_unknown_default(conn):
        try:
            is_default = passwords.verify_password(user.password, meta_rows.DEFAULT_ADMIN_PASSWORD)
        except passwords.PasswordHashUnsupported:
            continue
        store.set_password_is_default(conn, user.id, is_default)


class AccountError(Exception):
    """A change the account rules refuse; the message says why (the API answers 409, the CLI exits 1)."""


def set_role(conn: Any, user: meta_rows.User, role: str, now: int, store: ModuleType) -> None:
    """Give `user` the role `role`, unless that would leave no admin (AccountError)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    if user.role == "admin" and role != "admin" and store.count_admins(conn) <= 1:
        raise AccountError(LAST_ADMIN.format("made a viewer"))
    store.set_role(conn, user.id, role, now)


def remove(conn: Any, user: meta_rows.User, heir_id: str | None, store: ModuleType) -> list[str]:
    """Delete `user` and their sessions, keys and grants, unless they are the last admin while other
    accounts remain (AccountError). The sites they added go to `heir_id` (the admin removing them) or,
    with None (an account deleting itself), are deleted: the hostnames deleted."""
    if user.role == "admin" and store.count_admins(conn) <= 1 and store.count_users(conn) > 1:
        raise AccountError(LAST_ADMIN.format("removed while other accounts exist"))
    if heir_id is not None:
        store.transfer_websites(conn, user.id, heir_id)
    deleted = store.delete_user(conn, user.id)
    return [] if deleted is None else deleted


def add(
    conn: Any,
    username: str,
    password_hash: str,
    role: str,
    now: int,
    websites: list[str] | None = None,
    *,
    store: ModuleType,
) -> meta_rows.User:
    """Create an account with these grants. Raises AlreadyExists for a taken username and
    MissingWebsite for a grant of a site that does not exist; then nothing was created."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    if store.get_user_by_username(conn, username) is not None:
        raise meta_rows.AlreadyExists("user already exists")
    missing = sorted(set(websites or ()) - set(store.list_hostnames(conn)))
    if missing:
        raise meta_rows.MissingWebsite(f"no website named {missing[0]}")
    user_id = meta_rows.new_user_id()
    try:
        store.insert_user(conn, user_id, username, password_hash, now, role=role)
    except sqlite3.IntegrityError:
        raise meta_rows.AlreadyExists("user already exists") from None
    if websites:
        store.set_grants(conn, user_id, websites)
    user: meta_rows.User | None = store.get_user(conn, user_id)
    assert user is not None
    return user
