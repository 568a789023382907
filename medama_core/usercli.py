"""`medama user <action>`: accounts managed on me_meta.db from the command line, whether the server runs or not.

Each action is one row of ACTIONS (its synopsis, description, flags and
function), so `list`, `add`, `role` and `remove` slot in beside `password`.
They work on the database file directly: SQLite's WAL lets them write while
the server reads and writes, and the server reads sessions from the database
on every request, so a change here takes effect there at once.
"""

from __future__ import annotations

import getpass
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any, Final

from medama_core import accounts, passwords
from medama_core.config import ConfigError, Option, StartupError, help_text, option, parse_flags
from medama_core.store import db, meta

MAX_PASSWORD_LINE: Final = 4096  # one line read from a pipe; far above PASSWORD_MAX, and a runaway pipe stops here


@dataclass(frozen=True)
class Action:
    synopsis: str
    description: str
    options: tuple[Option, ...]
    run: Callable[[dict[str, Any], list[str], IO[str], IO[str]], int]  # flag values, arguments, stdin, stdout


def _open(appdb: str) -> Any:
    """me_meta.db, which must exist already: an action never creates an empty one by mistake."""
    if not os.path.isfile(appdb):
        raise StartupError(
            f"no app database at {os.path.abspath(appdb)} (-appdb): give the path of the me_meta.db the server "
            "uses (its -appdb, or APP_DATABASE_HOST in its environment with -env)"
        )
    try:
        return db.open_file(appdb, meta.MIGRATIONS, meta.MARKER_TABLE)
    except db.UnusableFile as exc:
        raise StartupError(f"cannot use {os.path.abspath(appdb)} (-appdb): {exc}") from None


def read_new_password(username: str, stdin: IO[str]) -> str:
    """Twice without echo on a terminal (they must match), else one line from standard input."""
    if stdin.isatty():
        first = getpass.getpass(f"New password for {username}: ")
        if getpass.getpass("Repeat it: ") != first:
            raise StartupError("the two passwords differ; nothing was changed")
        return first
    line = stdin.readline(MAX_PASSWORD_LINE + 1)
    if len(line) > MAX_PASSWORD_LINE:
        raise StartupError(f"the line on standard input is longer than {MAX_PASSWORD_LINE} characters")
    password = line.removesuffix("\n").removesuffix("\r")
    if not password:
        raise StartupError("no password on standard input (send one line: the new password)")
    return password


def set_password(values: dict[str, Any], names: list[str], stdin: IO[str], stdout: IO[str]) -> int:
    if len(names) != 1:
        raise ConfigError(f"give one user name (usage: {ACTIONS['password'].synopsis})")
    username = names[0]
    conn = _open(values["appdb"])
    try:
        user = meta.get_user_by_username(conn, username)
        if user is None:
            known = ", ".join(meta.list_usernames(conn)) or "none"
            raise StartupError(f"no user named {username!r} in {values['appdb']} (users: {known})")
        password = read_new_password(username, stdin)
        problem = accounts.new_password_problem(password)
        if problem is not None:
            raise StartupError(f"{problem}; nothing was changed")
        hashed = passwords.hash_password(password)
        ended = meta.count_sessions(conn, user.id)
        meta.update_user(conn, user.id, int(time.time()), password_hash=hashed)  # ends all its sessions
    finally:
        conn.close()
    print(f"changed the password of {username}; {ended} session(s) signed out", file=stdout)
    return 0


ACTIONS: Final = {
    "password": Action(
        "medama user password NAME [flags]",
        "Set the password of user NAME, e.g. when it is forgotten. On a terminal it is asked twice, without\n"
        "echo; otherwise one line is read from standard input (printf '%s\\n' \"$PW\" | medama user password\n"
        "admin). Every session of that user ends. Works while the server runs.",
        (option("appdb"), option("env")),
        set_password,
    ),
}


def overview() -> str:
    lines = ["Usage: medama user <action> [flags]", "", "Actions:"]
    lines += [f"  {action.synopsis}" for action in ACTIONS.values()]
    lines += ["", "Run `medama user <action> --help` for an action's flags."]
    return "\n".join(lines)


def main(args: Sequence[str], environ: Mapping[str, str], stdin: IO[str], stdout: IO[str], stderr: IO[str]) -> int:
    if not args or args[0] in ("-h", "-help", "--help", "help"):
        print(overview(), file=stdout if args else stderr)
        return 0 if args else 2
    action = ACTIONS.get(args[0])
    if action is None:
        raise ConfigError(f"unknown action {args[0]!r} for `medama user` (actions: {', '.join(ACTIONS)})")
    rest = args[1:]
    if any(arg in ("-h", "-help", "--help") for arg in rest):
        print(help_text(action.synopsis, action.description, action.options), file=stdout)
        return 0
    values, names = parse_flags(action.options, rest, environ)
    return action.run(values, names, stdin, stdout)
