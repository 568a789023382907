"""Data files and folders that only the server's own user can read, from their first byte.

me_meta.db holds password hashes and session digests and me_analytics.db the
visits: neither is for other local users. Modes are given to `open` and
`mkdir` themselves rather than changed afterwards (a chmod after the fact
leaves a window in which the file is readable with content in it), and not
through the umask, which is process-wide and would race other threads.
SQLite creates `-wal`, `-shm` and `-journal` files with the mode of their
database file, so a private database has private companions.
"""

from __future__ import annotations

import os
import stat
from typing import Final

__all__ = ["PRIVATE_DIR_MODE", "PRIVATE_FILE_MODE", "create_private", "make_private_dirs", "open_private"]

PRIVATE_FILE_MODE: Final = 0o600  # owner read/write
PRIVATE_DIR_MODE: Final = 0o700  # owner only


def make_private_dirs(path: str) -> None:
    """Create the folder `path` and any missing parents, each 0700 (an existing folder is left as it is)."""
    path = os.path.abspath(path)
    missing: list[str] = []
    while not os.path.isdir(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, PRIVATE_DIR_MODE)
        except FileExistsError:
            pass


def create_private(path: str) -> None:
    """Create an empty file `path`, 0600, with its folders, unless it exists (then it is left as it is)."""
    make_private_dirs(os.path.dirname(os.path.abspath(path)))
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))
    except FileExistsError:
        pass


def open_private(path: str) -> int:
    """Open `path` for writing, truncated and 0600 (created so, or changed before anything is written);
    return the descriptor. A file we may write but not change the mode of keeps its mode."""
    make_private_dirs(os.path.dirname(os.path.abspath(path)))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):  # not a device such as /dev/stdout
            os.fchmod(fd, PRIVATE_FILE_MODE)
    except OSError:  # another user's file, or a file system without modes
        pass
    return fd
