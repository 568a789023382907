"""Accounts outside the HTTP API: the default admin, the rules for a new password, and the default-password check.

Shared by `start`, `medama import --create-websites`, `medama user` and the
API, so that each creates and changes accounts the same way. Functions take a
connection to me_meta.db and are synchronous, like store functions; hashing
runs in the caller's thread.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Final

from medama_core import passwords
from medama_core.store import meta

# Upstream's bounds (its AuthLogin schema), as the API checks them.
PASSWORD_MIN: Final = 5
PASSWORD_MAX: Final = 128
DEFAULT_PASSWORD_REFUSED: Final = (
    f"the new password must not be the default {meta.DEFAULT_ADMIN_PASSWORD}, which everyone can read in the docs"
)


def new_password_problem(password: str) -> str | None:
    """What is wrong with `password` as a new password, or None."""
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        return f"the password must be {PASSWORD_MIN} to {PASSWORD_MAX} characters long"
    if password == meta.DEFAULT_ADMIN_PASSWORD:
        return DEFAULT_PASSWORD_REFUSED
    return None


def ensure_default_admin(conn: sqlite3.Connection) -> bool:
    """Create `admin` with the default password when there is no user at all; True if it was created."""
    if meta.count_users(conn) != 0:
        return False
    hashed = passwords.hash_password(meta.DEFAULT_ADMIN_PASSWORD)
    user_id, now = meta.new_user_id(), int(time.time())
    meta.insert_user(conn, user_id, meta.DEFAULT_ADMIN_USERNAME, hashed, now, password_is_default=True)
    return True


def check_unknown_defaults(conn: sqlite3.Connection) -> None:
    """Find out, once, whether users from before migration 3 (or upstream's) still have the default password.

    One hash verification per such user, at the start after the upgrade; a hash
    this process cannot verify (argon2 without argon2-cffi) stays unknown.
    """
    for user in meta.users_with_unknown_default(conn):
        try:
            is_default = passwords.verify_password(user.password, meta.DEFAULT_ADMIN_PASSWORD)
        except passwords.PasswordHashUnsupported:
            continue
        meta.set_password_is_default(conn, user.id, is_default)
