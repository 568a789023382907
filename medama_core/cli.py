"""Command line: `medama <command> [flags]`, one function per command, one help style, exit codes as upstream.

Exit codes: 0 done; 1 an unknown command, or the command could not be done
here (a port, a file, a folder: `StartupError` and the commands' own
errors); 2 no command, or flags that cannot be used (`ConfigError`).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from medama_core import COMMIT, __version__
from medama_core.config import ConfigError, StartupError, help_text, parse_args, usage
from medama_core.log import Logger

HELP_FLAGS = ("-h", "-help", "--help")
VERSION_FLAGS = ("-version", "--version", "-v")


def version_text() -> str:
    return f"Medama Analytics {__version__}, commit={COMMIT}"


def run_async(main: Coroutine[Any, Any, None], *, allow_uvloop: bool = True) -> str:
    """Run `main` on uvloop when it is importable, else on the stdlib loop; return the loop's name."""
    uvloop: Any = None
    if allow_uvloop:
        try:
            import uvloop
        except ImportError:
            pass
    if sys.version_info >= (3, 11):
        factory = uvloop.new_event_loop if uvloop is not None else None
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(main)
    else:  # asyncio.Runner is Python 3.11+; there, uvloop comes in through the event loop policy
        if uvloop is not None:
            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        asyncio.run(main)
    return "asyncio" if uvloop is None else "uvloop"


def wants_help(args: Sequence[str]) -> bool:
    return any(arg in HELP_FLAGS for arg in args)


def cmd_start(args: Sequence[str]) -> int:
    if wants_help(args):
        print(usage())
        return 0
    config = parse_args(args, os.environ)
    log = Logger(config.logger, config.level)
    from medama_core.app import serve  # imported here so `version` and `--help` stay instant

    # MEDAMA_NO_UVLOOP=1 forces the stdlib loop (benchmarks compare the two).
    run_async(serve(config, log, freeze_start_up=True), allow_uvloop=os.environ.get("MEDAMA_NO_UVLOOP") != "1")
    return 0


def worker_main() -> int:
    """A -workers child process, started by its parent (workers.py): serve until SIGTERM or the parent is gone."""
    import signal

    from medama_core import workers
    from medama_core.app import serve

    # SIGHUP from the parent means "load the certificate files again": until this child's handler is in
    # place (app._worker_tls) it must not end the process, as the default action would.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    config, link = workers.from_environment()
    log = Logger(config.logger, config.level)
    try:
        run_async(
            serve(config, log, child=link, freeze_start_up=True), allow_uvloop=os.environ.get("MEDAMA_NO_UVLOOP") != "1"
        )
    except (ConfigError, StartupError) as exc:
        print(f"ERROR: worker {link.index}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def cmd_version(args: Sequence[str]) -> int:
    if wants_help(args):
        print("Usage: medama version\n\nPrint the version and the commit the build was made from.")
        return 0
    if args:
        raise ConfigError(f"unexpected argument {args[0]!r} (usage: medama version)")
    print(version_text())
    return 0


def cmd_backup(args: Sequence[str]) -> int:
    from medama_core import backup

    return backup.main(args, os.environ)


def cmd_import(args: Sequence[str]) -> int:
    from medama_core import transfer

    if wants_help(args):
        print(help_text(transfer.IMPORT_SYNOPSIS, transfer.IMPORT_DESCRIPTION, transfer.IMPORT_OPTIONS))
        return 0
    return transfer.import_main(args, sys.stderr, os.environ)


def cmd_export(args: Sequence[str]) -> int:
    from medama_core import transfer

    if wants_help(args):
        print(help_text(transfer.EXPORT_SYNOPSIS, transfer.EXPORT_DESCRIPTION, transfer.EXPORT_OPTIONS))
        return 0
    return transfer.export_main(args, sys.stdout, sys.stderr, os.environ)


def cmd_migrate(args: Sequence[str]) -> int:
    from medama_core import migrate

    return migrate.main(args, os.environ)


def cmd_user(args: Sequence[str]) -> int:
    from medama_core import usercli

    return usercli.main(args, os.environ, sys.stdin, sys.stdout, sys.stderr)


@dataclass(frozen=True)
class Command:
    summary: str  # its line in `medama --help`
    run: Callable[[Sequence[str]], int]


COMMANDS: dict[str, Command] = {
    "start": Command("run the analytics server", cmd_start),
    "version": Command("print the version and build commit (also -version, --version)", cmd_version),
    "backup": Command("copy both databases into a directory while the server runs", cmd_backup),
    "import": Command("load page views or events from JSON Lines, CSV or upstream's DuckDB file", cmd_import),
    "export": Command("write page views or events as JSON Lines or CSV", cmd_export),
    "migrate": Command("copy a SQLite install into PostgreSQL and ClickHouse, and check the copy", cmd_migrate),
    "user": Command("manage accounts offline, e.g. set a forgotten password: user password NAME", cmd_user),
}


def usage_text() -> str:
    lines = ["Usage: medama <command> [flags]", "", "Commands:"]
    lines += [f"  {name:<9} {command.summary}" for name, command in COMMANDS.items()]
    lines += ["", "Run `medama <command> --help` for a command's flags."]
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    if not argv:
        print(usage_text(), file=sys.stderr)
        return 2
    name, args = argv[0], argv[1:]
    if name in (*HELP_FLAGS, "help"):
        if name == "help" and args and args[0] in COMMANDS:  # `medama help export`
            return main([args[0], "--help"])
        print(usage_text())
        return 0
    if name in VERSION_FLAGS:
        name = "version"
    command = COMMANDS.get(name)
    if command is None:
        print(f'ERROR: medama: unknown command "{name}" (run `medama --help` for the list)', file=sys.stderr)
        return 1
    try:
        return command.run(args)
    except ConfigError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    except StartupError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
