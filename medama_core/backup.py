"""`medama backup DEST`: a consistent copy of both databases, taken while the server keeps writing.

Each file is copied with SQLite's online backup API in a single step, which
reads the whole database inside one read transaction: the copy is the
database as of one instant, holding every transaction committed before the
backup began. In WAL mode that read blocks no writer, so ingestion goes on
(the WAL just grows until the copy is done). The copy is checked, switched
to a plain rollback journal so it is one self-contained file, and renamed
into place, so DEST never holds half a backup.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from medama_core.config import parse_args
from medama_core.store.files import create_private, make_private_dirs

BUSY_TIMEOUT_S = 30.0  # a checkpoint or a migration may hold the file briefly; wait rather than fail

USAGE = """Usage: medama backup DEST [flags]

Copy the app and analytics databases into the directory DEST while the server
keeps running. The same -appdb, -analyticsdb and -env flags as `start` choose
the source files. Restoring is documented in docs/deploy.md."""


class BackupError(Exception):
    """A backup that could not be made; the command prints it and exits 1."""


@dataclass(frozen=True)
class Copied:
    source: str
    target: Path
    size: int
    check: str


def backup_database(source: str, target: Path) -> Copied:
    """Copy the SQLite file `source` to `target` atomically; raises BackupError."""
    if not os.path.isfile(source):
        raise BackupError(f"no database at {source}")
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    create_private(str(partial))  # 0600 before the first page is copied in, and so its -journal too
    uri = f"file:{urllib.parse.quote(os.path.abspath(source))}?mode=ro"
    try:
        src = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S)
        try:
            dst = sqlite3.connect(partial)
            try:
                src.backup(dst)  # pages=-1: every page in one step, so one snapshot
                dst.execute("PRAGMA journal_mode = DELETE")  # one self-contained file, no -wal beside it
                check = str(dst.execute("PRAGMA quick_check").fetchone()[0])
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"cannot back up {source}: {exc}") from None
    if check != "ok":
        partial.unlink(missing_ok=True)
        raise BackupError(f"the copy of {source} failed its integrity check: {check}")
    os.replace(partial, target)
    return Copied(source, target, target.stat().st_size, check)


def backup(appdb: str, analyticsdb: str, destination: Path) -> list[Copied]:
    """Copy both databases into `destination` under their own file names."""
    make_private_dirs(str(destination))  # 0700 for each folder made; an existing one keeps its mode
    names = {os.path.basename(appdb), os.path.basename(analyticsdb)}
    if len(names) != 2:
        raise BackupError("the two databases have the same file name; back them up one at a time")
    return [backup_database(path, destination / os.path.basename(path)) for path in (appdb, analyticsdb)]


def split_destination(args: Sequence[str]) -> tuple[str, list[str]]:
    """DEST is the first argument, or else the last one: `backup /b -env` and `backup -env /b` both work."""
    if args and not args[0].startswith("-"):
        return args[0], list(args[1:])
    if args and not args[-1].startswith("-"):
        return args[-1], list(args[:-1])
    raise BackupError("missing DEST: the directory to write the copies into")


def main(args: Sequence[str], environ: Mapping[str, str]) -> int:
    if any(arg in ("-h", "-help", "--help") for arg in args):
        print(USAGE)
        return 0
    try:
        destination, flags = split_destination(args)
        config = parse_args(flags, environ)
        copies = backup(config.appdb, config.analyticsdb, Path(destination))
    except BackupError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    for copy in copies:
        print(f"{copy.source} -> {copy.target} ({copy.size} bytes, quick_check {copy.check})")
    return 0
