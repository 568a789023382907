"""A website's rows in the analytics database as one unit: their rename and removal.

Page views are keyed by `views.hostname`; custom events by `events.group_name`,
which the tracker fills with the site's hostname; the drop counters by
`drops.hostname`, the quota's daily counts by `site_hits.hostname`, and the
daily totals imported from other tools by `imported_days.hostname`. The stats
rollups need no care here (triggers on `views` and `events` mark every hour
these changes touch for rebuilding), but for the days retention left as
rollups only (store/sqlite/retention.py).
"""

from __future__ import annotations

import json
import sqlite3

from medama_core.store.sqlite import retention
from medama_core.store.sqlite.db import Transaction


def rename_site_data(conn: sqlite3.Connection, old: str, new: str) -> None:
    """Move every view and event of `old` to `new`.

    Rows already under `new` belong to no website (the caller checked the name is
    free), so they are leftovers of an earlier site of that name: they are dropped
    first, which also keeps `views(bid, hostname)` unique.
    """
    names = {"old": old, "new": new}
    with Transaction(conn):
        _delete(conn, [new])
        retention.rename_derived(conn, old, new)
        conn.execute("UPDATE views SET hostname = :new WHERE hostname = :old", names)
        conn.execute("UPDATE events SET group_name = :new WHERE group_name = :old", names)
        conn.execute("UPDATE drops SET hostname = :new WHERE hostname = :old", names)
        conn.execute("UPDATE site_hits SET hostname = :new WHERE hostname = :old", names)
        conn.execute("UPDATE imported_days SET hostname = :new WHERE hostname = :old", names)


def delete_site_data(conn: sqlite3.Connection, hostnames: list[str]) -> None:
    """Remove every view and event of the given sites (upstream left events behind, spec §10.6)."""
    with Transaction(conn):
        _delete(conn, hostnames)


def _delete(conn: sqlite3.Connection, hostnames: list[str]) -> None:
    params = {"hostnames": json.dumps(hostnames)}
    for hostname in hostnames:
        retention.forget_derived(conn, hostname)
    conn.execute("DELETE FROM views WHERE hostname IN (SELECT value FROM json_each(:hostnames))", params)
    conn.execute("DELETE FROM events WHERE group_name IN (SELECT value FROM json_each(:hostnames))", params)
    conn.execute("DELETE FROM drops WHERE hostname IN (SELECT value FROM json_each(:hostnames))", params)
    conn.execute("DELETE FROM site_hits WHERE hostname IN (SELECT value FROM json_each(:hostnames))", params)
    conn.execute("DELETE FROM imported_days WHERE hostname IN (SELECT value FROM json_each(:hostnames))", params)
