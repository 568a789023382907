"""The PostgreSQL store's errors: what went wrong in one line, and which HTTP status it implies."""

from __future__ import annotations

from medama_core.store import protocol


class StartupError(Exception):
    """The app database cannot be used; `medama start` prints the message on one line and exits."""


class BadURL(StartupError, ValueError):
    """An -appdb URL that does not follow libpq's URL rules (or asks for what we do not support)."""


class DriverMissing(StartupError):
    """The PostgreSQL driver is not installed; the message names the package to install."""


class ConnectFailed(StartupError):
    """The server cannot be reached, refused us, or has no such database (the server's reason, on one line)."""


class Unavailable(protocol.Unavailable):
    """A call could not reach the database (or lost it mid-write, with the outcome unknown); the API answers 503."""


class InvalidValue(protocol.InvalidValue):
    """A value PostgreSQL cannot store: text with a NUL character (SQLite can). The API answers 400."""
