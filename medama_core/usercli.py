"""`medama user <action>`: accounts managed in the app store from the command line, whether the server runs or not.

Each action is one row of ACTIONS (its synopsis, description, flags and
function): `list`, `add`, `password`, `role`, `remove` and `totp-off`. They
work on the app store directly, me_meta.db or, with `-appdb postgres://…`,
the PostgreSQL database every node uses (the same functions: store/sqlite/meta.py
and store/postgres/meta.py have the same names). SQLite's WAL lets them
write while the server reads and writes, and the server reads sessions,
roles and grants from the store on every request, so a change here takes
effect there (on every node) at once. They keep the rules the API keeps
(accounts.py): the last admin stays an admin.
"""

from __future__ import annotations

import getpass
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import IO, Any, Final, TypeVar

from medama_core import accounts, hostnames, passwords
from medama_core.config import ConfigError, Option, StartupError, help_text, option, parse_flags
from medama_core.store.sqlite import db, meta

MAX_PASSWORD_LINE: Final = 4096  # one line read from a pipe; far above PASSWORD_MAX, and a runaway pipe stops here
_POSTGRES: Final = ("postgres://", "postgresql://")

T = TypeVar("T")


@dataclass(frozen=True)
class Action:
    synopsis: str
    description: str
    options: tuple[Option, ...]
    run: Callable[[dict[str, Any], list[str], IO[str], IO[str]], int]  # flag values, arguments, stdin, stdout


class _Store:
    """The app store an action works on: `run(fn)` calls `fn(conn, m)` with a connection and its engine's meta
    module (store/sqlite/meta.py or store/postgres/meta.py)."""

    def __init__(self, appdb: str) -> None:
        self.name = appdb
        if appdb.lower().startswith(_POSTGRES):
            from medama_core.store import postgres
            from medama_core.store.postgres import meta as pg_meta
            from medama_core.store.postgres.errors import StartupError as PostgresStartupError

            try:
                self._db: Any = postgres.open_meta(appdb, readers=1, writers=1)
            except PostgresStartupError as exc:  # a bad URL, no driver, an unreachable server, wrong credentials
                raise ConfigError(f"-appdb: {exc}") from None
            self.name = self._db.url.describe()
            self.m: ModuleType = pg_meta
            self._conn: Any = None
        else:
            self._conn = _open(appdb)
            self.m = meta

    def run(self, fn: Callable[[Any, ModuleType], T]) -> T:
        if self._conn is not None:
            return fn(self._conn, self.m)
        result: T = self._db.call(lambda conn: fn(conn, self.m))
        return result

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        else:
            self._db.close()


def _open(appdb: str) -> Any:
    """me_meta.db, which must exist already: an action never creates an empty one by mistake."""
    if "://" in appdb:
        raise ConfigError(
            f"-appdb: {appdb.split('://', 1)[0]}:// is not an app store; give a file or a postgres:// URL"
        )
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


def _role(text: str) -> str:
    if text not in accounts.ROLES:
        raise ConfigError(f"{text!r} is not one of {', '.join(accounts.ROLES)}")
    return text


def _hostname_list(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def set_password(values: dict[str, Any], names: list[str], stdin: IO[str], stdout: IO[str]) -> int:
    (username,) = _one_name(names, "password")
    store = _Store(values["appdb"])
    try:
        user = store.run(lambda conn, m: _user(conn, m, store.name, username))
        password = read_new_password(username, stdin)
        problem = accounts.new_password_problem(password)
        if problem is not None:
            raise StartupError(f"{problem}; nothing was changed")
        hashed = passwords.hash_password(password)

        def change(conn: Any, m: ModuleType) -> int:
            ended: int = m.count_sessions(conn, user.id)
            m.update_user(conn, user.id, int(time.time()), password_hash=hashed)  # ends all its sessions
            return ended

        ended = store.run(change)
    finally:
        store.close()
    print(f"changed the password of {username}; {ended} session(s) signed out", file=stdout)
    return 0


def _one_name(names: list[str], action: str, count: int = 1) -> list[str]:
    if len(names) != count:
        raise ConfigError(
            f"give {'one user name' if count == 1 else 'a user name and a role'} (usage: {ACTIONS[action].synopsis})"
        )
    return names


def _user(conn: Any, m: ModuleType, appdb: str, username: str) -> meta.User:
    user: meta.User | None = m.get_user_by_username(conn, username)
    if user is None:
        known = ", ".join(m.list_usernames(conn)) or "none"
        raise StartupError(f"no user named {username!r} in {appdb} (users: {known})")
    return user


def list_users(values: dict[str, Any], names: list[str], stdin: IO[str], stdout: IO[str]) -> int:
    if names:
        raise ConfigError(f"unexpected argument {names[0]!r} (usage: {ACTIONS['list'].synopsis})")
    store = _Store(values["appdb"])
    try:
        users, grants = store.run(lambda conn, m: (m.list_users(conn), m.grants_by_user(conn)))
    finally:
        store.close()
    width = max([len("USERNAME"), *(len(user.username) for user in users)])
    print(f"{'USERNAME':<{width}}  ROLE    2FA  CREATED     WEBSITES", file=stdout)
    for user in users:
        created = time.strftime("%Y-%m-%d", time.gmtime(user.date_created))
        sites = "all" if user.role == "admin" else ",".join(grants.get(user.id, [])) or "none"
        print(
            f"{user.username:<{width}}  {user.role:<6}  {'on ' if user.totp else 'off'}  {created}  {sites}",
            file=stdout,
        )
    return 0


def add_user(values: dict[str, Any], names: list[str], stdin: IO[str], stdout: IO[str]) -> int:
    (username,) = _one_name(names, "add")
    if not 3 <= len(username) <= 48:
        raise StartupError("a user name must be 3 to 48 characters long, as sign-in takes it")
    problem = accounts.new_username_problem(username)
    if problem is not None:
        raise StartupError(f"the user name {problem}")
    try:
        websites = [hostnames.normalise(name) for name in values["websites"]]
    except hostnames.InvalidHostname as exc:
        raise ConfigError(f"-websites: {exc}") from None
    store = _Store(values["appdb"])
    try:
        if store.run(lambda conn, m: m.get_user_by_username(conn, username)) is not None:
            raise StartupError(f"there is already a user named {username!r}")
        password = read_new_password(username, stdin)
        problem = accounts.new_password_problem(password)
        if problem is not None:
            raise StartupError(f"{problem}; nothing was changed")
        hashed, role, now = passwords.hash_password(password), values["role"], int(time.time())
        try:
            store.run(lambda conn, m: accounts.add(conn, username, hashed, role, now, websites, store=m))
        except (meta.AlreadyExists, meta.MissingWebsite) as exc:
            raise StartupError(f"{exc}; nothing was changed") from None
    finally:
        store.close()
    granted = f", may read {', '.join(websites)}" if websites and values["role"] == "viewer" else ""
    print(f"added {username} as {values['role']}{granted}", file=stdout)
    return 0


def set_role(values: dict[str, Any], names: list[str], stdin: IO[str], stdout: IO[str]) -> int:
    username, role = _one_name(names, "role", 2)
    if role not in accounts.ROLES:
        raise ConfigError(f"{role!r} is not a role: {' or '.join(accounts.ROLES)}")
    store = _Store(values["appdb"])
    try:

        def change(conn: Any, m: ModuleType) -> None:
            accounts.set_role(conn, _user(conn, m, store.name, username), role, int(time.time()), store=m)

        store.run(change)
    except accounts.AccountError as exc:
        raise StartupError(f"{exc}; nothing was changed") from None
    finally:
        store.close()
    print(f"{username} is now {'an' if role == 'admin' else 'a'} {role}", file=stdout)
    return 0


def remove_user(values: dict[str, Any], names: list[str], stdin: IO[str], stdout: IO[str]) -> int:
    (username,) = _one_name(names, "remove")
    store = _Store(values["appdb"])
    try:

        def remove(conn: Any, m: ModuleType) -> meta.User | None:
            user = _user(conn, m, store.name, username)
            heirs = [u for u in m.list_users(conn) if u.role == "admin" and u.id != user.id]
            if not heirs and m.count_users(conn) == 1:
                raise StartupError(
                    f"{username} is the only account; sign in and delete it from the dashboard, which removes its "
                    "websites' stats too (nothing was changed)"
                )
            heir: meta.User | None = min(heirs, key=lambda u: (u.date_created, u.id)) if heirs else None
            accounts.remove(conn, user, None if heir is None else heir.id, store=m)
            return heir

        heir = store.run(remove)
    except accounts.AccountError as exc:
        raise StartupError(f"{exc}; nothing was changed") from None
    finally:
        store.close()
    moved = f"; its websites now belong to {heir.username}" if heir is not None else ""
    print(f"removed {username}{moved}", file=stdout)
    return 0


def totp_off(values: dict[str, Any], names: list[str], stdin: IO[str], stdout: IO[str]) -> int:
    (username,) = _one_name(names, "totp-off")
    store = _Store(values["appdb"])
    try:
        was_on = store.run(lambda conn, m: m.delete_totp(conn, _user(conn, m, store.name, username).id))
    finally:
        store.close()
    print(f"two-factor login of {username} is off" + ("" if was_on else " (it was not on)"), file=stdout)
    return 0


ROLE_OPTION: Final = Option("role", None, "viewer", _role, "admin (everything) or viewer (reads -websites only)")
WEBSITES_OPTION: Final = Option(
    "websites", None, (), _hostname_list, "comma-separated websites a viewer may read", shown_default="none"
)

ACTIONS: Final = {
    "list": Action(
        "medama user list [flags]",
        "List the accounts: role, whether two-factor login is on, when each was created, the websites a\n"
        "viewer may read.",
        (option("appdb"), option("env")),
        list_users,
    ),
    "add": Action(
        "medama user add NAME [flags]",
        "Add an account, a viewer unless -role admin. Its password is asked twice on a terminal, without\n"
        "echo; otherwise one line is read from standard input.",
        (ROLE_OPTION, WEBSITES_OPTION, option("appdb"), option("env")),
        add_user,
    ),
    "password": Action(
        "medama user password NAME [flags]",
        "Set the password of user NAME, e.g. when it is forgotten. On a terminal it is asked twice, without\n"
        "echo; otherwise one line is read from standard input (printf '%s\\n' \"$PW\" | medama user password\n"
        "admin). Every session of that user ends. Works while the server runs.",
        (option("appdb"), option("env")),
        set_password,
    ),
    "role": Action(
        "medama user role NAME admin|viewer [flags]",
        "Make user NAME an admin or a viewer. The last admin stays an admin.",
        (option("appdb"), option("env")),
        set_role,
    ),
    "remove": Action(
        "medama user remove NAME [flags]",
        "Remove user NAME with its sessions, API keys and grants; the websites it added go to the oldest\n"
        "remaining admin, with their stats. The last admin is not removed while other accounts exist.",
        (option("appdb"), option("env")),
        remove_user,
    ),
    "totp-off": Action(
        "medama user totp-off NAME [flags]",
        "Turn off the two-factor login of user NAME, who lost both the authenticator app and the recovery\n"
        "codes; the password alone signs in again.",
        (option("appdb"), option("env")),
        totp_off,
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
