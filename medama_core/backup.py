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

import contextlib
import os
import sqlite3
import sys
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from medama_core.config import ConfigError, help_text, option, parse_flags
from medama_core.store.files import create_private, make_private_dirs

BUSY_TIMEOUT_S = 30.0  # a checkpoint or a migration may hold the file briefly; wait rather than fail

SYNOPSIS = "medama backup DEST [flags]"
DESCRIPTION = """Copy the app and analytics databases into the directory DEST while the server keeps running.
DEST gets both files or, if anything fails, nothing. Restoring is described in docs/deploy.md."""
OPTIONS = (option("appdb"), option("analyticsdb"), option("env"))


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
    partial = _copy(source, target)
    os.replace(partial, target)
    return Copied(source, target, target.stat().st_size, "ok")


def _partial(target: Path) -> Path:
    return target.with_name(f".{target.name}.partial")


def _copy(source: str, target: Path) -> Path:
    """A checked copy of `source` beside `target`, under a hidden name; raises BackupError (leaving nothing)."""
    if not os.path.isfile(source):
        raise BackupError(f"no database at {source}")
    partial = _partial(target)
    partial.unlink(missing_ok=True)
    create_private(str(partial))  # 0600 before the first page is copied in (password hashes), and so its -journal
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
    return partial


def backup(appdb: str, analyticsdb: str, destination: Path) -> list[Copied]:
    """Copy both databases into `destination` under their own file names: both, or (on error) nothing.

    Both copies are made under hidden names first and renamed into place only
    once both are good; a DEST this call created is removed again on failure.
    """
    names = {os.path.basename(appdb), os.path.basename(analyticsdb)}
    if len(names) != 2:
        raise BackupError("the two databases have the same file name; back them up one at a time")
    for source in (appdb, analyticsdb):
        if not os.path.isfile(source):
            raise BackupError(f"no database at {source} (give -appdb and -analyticsdb the files the server uses)")
    created = _missing_parents(destination)
    try:
        make_private_dirs(str(destination))  # 0700 for each folder made; an existing one keeps its mode
    except OSError as exc:
        raise BackupError(f"cannot create {destination}: {exc.strerror}") from None
    partials: list[Path] = []
    try:
        for source in (appdb, analyticsdb):
            partials.append(_copy(source, destination / os.path.basename(source)))
    except BaseException:
        for partial in partials:
            partial.unlink(missing_ok=True)
        for directory in created:  # deepest first
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise
    copies = []
    for source, partial in zip((appdb, analyticsdb), partials, strict=True):
        target = destination / os.path.basename(source)
        os.replace(partial, target)
        copies.append(Copied(source, target, target.stat().st_size, "ok"))
    return copies


def _missing_parents(path: Path) -> list[Path]:
    """`path` and its ancestors that do not exist yet, deepest first."""
    missing = []
    for candidate in (path, *path.parents):
        if candidate.exists():
            break
        missing.append(candidate)
    return missing


def main(args: Sequence[str], environ: Mapping[str, str]) -> int:
    if any(arg in ("-h", "-help", "--help") for arg in args):
        print(help_text(SYNOPSIS, DESCRIPTION, OPTIONS))
        return 0
    values, extra = parse_flags(OPTIONS, args, environ)
    if len(extra) != 1:
        what = "missing DEST: the directory to write the copies into" if not extra else "give one DEST"
        raise ConfigError(f"{what} (usage: {SYNOPSIS})")
    for flag in ("appdb", "analyticsdb"):
        if "://" in values[flag]:
            raise ConfigError(
                f"-{flag} is a {values[flag].split('://', 1)[0]}:// URL: backup copies SQLite files only; back "
                "PostgreSQL up with pg_dump and ClickHouse with its own tools (docs/scale.md, Backups)"
            )
    try:
        copies = backup(values["appdb"], values["analyticsdb"], Path(extra[0]))
    except BackupError as exc:
        print(f"ERROR: {exc}; nothing was written", file=sys.stderr)
        return 1
    for copy in copies:
        print(f"{copy.source} -> {copy.target} ({copy.size} bytes, quick_check {copy.check})")
    return 0
