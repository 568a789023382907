"""How a node learns that another node changed app data: a change counter, polled.

Each node keeps the site list (the hits allow-set) and the tenant settings in
memory. A change to `users`, `websites`, `tenant_settings` or `umami_ids` on
any node bumps `meta_changes.counter` in the same transaction (a statement
trigger, meta.py migrations 1 and 3), so a node that reads a new counter value also sees the change. A
poll rather than LISTEN/NOTIFY: nothing is lost while a node is disconnected or
the database fails over (the counter just differs when it is back), it works
through transaction-pooling proxies (PgBouncer), and it costs one indexed
single-row read per node per CHANGE_POLL_S.

    token = db.call(changes.change_token)        # before loading the state, so no change falls in between
    load_state()
    task = asyncio.create_task(changes.watch_changes(db, reload_state, since=token))
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from medama_core.store.door import QueryTimeout
from medama_core.store.postgres.db import Connection, Database
from medama_core.store.postgres.errors import Unavailable

# The bound for a change to reach every node is 5 s; a poll a second meets it with room for a
# slow reload, and costs each node one tiny read a second.
CHANGE_POLL_S = 1.0


def change_token(conn: Connection) -> int:
    """A number that differs after any committed change to users, websites, Umami ids or tenant settings."""
    row = conn.execute("SELECT counter FROM meta_changes").fetchone()
    return int(row[0]) if row else 0


async def watch_changes(
    db: Database,
    on_change: Callable[[int], Awaitable[None]],
    *,
    since: int,
    interval: float = CHANGE_POLL_S,
) -> None:
    """Forever: every `interval` s, read the token; when it differs from the last one seen, await `on_change(token)`.

    While the database is unreachable the poll is skipped (the token then tells whether
    anything changed meanwhile). An exception from `on_change` ends the watch; the token
    is taken as seen only after `on_change` returns.
    """
    last = since
    while True:
        await asyncio.sleep(interval)
        try:
            token = await db.read(change_token)
        except (Unavailable, QueryTimeout):
            continue
        if token != last:
            await on_change(token)
            last = token
