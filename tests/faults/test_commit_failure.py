"""A COMMIT that fails must not leave its transaction open, or every later write on the connection fails.

SQLite keeps the transaction active when COMMIT fails on a deferred constraint or
with SQLITE_BUSY; a disk-full COMMIT may do the same. The writer thread owns one
connection for the life of the server, so `Transaction` ends such a transaction
itself. A deferred foreign key is the reproducible way to make COMMIT fail.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from medama_core.store.sqlite.db import Transaction, connect


def test_a_failed_commit_is_rolled_back_and_the_connection_stays_usable(tmp_path: Path) -> None:
    conn = connect(str(tmp_path / "x.db"))
    try:
        conn.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        conn.execute(
            "CREATE TABLE child (parent_id INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED, note TEXT)"
        )
        with pytest.raises(sqlite3.IntegrityError), Transaction(conn):
            conn.execute("INSERT INTO child VALUES (42, 'orphan')")  # fails only at COMMIT
        assert not conn.in_transaction
        with Transaction(conn):
            conn.execute("INSERT INTO parent VALUES (1)")
            conn.execute("INSERT INTO child VALUES (1, 'kept')")
        assert conn.execute("SELECT note FROM child").fetchall() == [("kept",)]
    finally:
        conn.close()
