"""Command line: `medama <command> [flags]`, one function per command, exit codes as upstream."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from medama_core import COMMIT, __version__
from medama_core.config import ConfigError, StartupError, parse_args, usage
from medama_core.log import Logger

USAGE = """Usage: medama <command> [flags]

Commands:
  start     run the analytics server
  version   print the version and build commit
  backup    copy both databases into a directory while the server runs
  import    load page views or events from JSON Lines, CSV or upstream's DuckDB file
  export    write page views or events as JSON Lines or CSV

Run `medama <command> --help` for a command's flags."""


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


def cmd_start(args: Sequence[str]) -> int:
    if "-h" in args or "--help" in args or "-help" in args:
        print(usage())
        return 0
    config = parse_args(args, os.environ)
    log = Logger(config.logger, config.level)
    from medama_core.app import serve  # imported here so `version` and `--help` stay instant

    # MEDAMA_NO_UVLOOP=1 forces the stdlib loop (benchmarks compare the two).
    run_async(serve(config, log), allow_uvloop=os.environ.get("MEDAMA_NO_UVLOOP") != "1")
    return 0


def cmd_version(args: Sequence[str]) -> int:
    if args and args[0] in ("-h", "--help", "-help"):
        print("Usage: medama version\n\nPrint the version and the commit the build was made from.")
        return 0
    print(version_text())
    return 0


def cmd_backup(args: Sequence[str]) -> int:
    from medama_core import backup

    return backup.main(args, os.environ)


def cmd_import(args: Sequence[str]) -> int:
    from medama_core import transfer

    return transfer.import_main(args, sys.stderr)


def cmd_export(args: Sequence[str]) -> int:
    from medama_core import transfer

    return transfer.export_main(args, sys.stdout, sys.stderr)


COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "start": cmd_start,
    "version": cmd_version,
    "backup": cmd_backup,
    "import": cmd_import,
    "export": cmd_export,
}


def main(argv: Sequence[str]) -> int:
    if not argv:
        print(USAGE, file=sys.stderr)
        return 2
    name, args = argv[0], argv[1:]
    if name in ("-h", "--help", "-help", "help"):
        print(USAGE)
        return 0
    command = COMMANDS.get(name)
    if command is None:
        print(f'ERROR: medama: unknown command "{name}"', file=sys.stderr)
        return 1
    try:
        return command(args)
    except ConfigError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    except StartupError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
