"""GET /api/health: is the process up and are both databases answering (no login needed)."""

from __future__ import annotations

import asyncio
import time

from medama_core import COMMIT, __version__
from medama_core.api import Context
from medama_core.http.errors import HTTPError
from medama_core.http.protocol import Request, Response, json_response
from medama_core.store.protocol import AnalyticsStore, MetaStore

# Load balancers probe with a 2-5 s timeout (Fly.io's default is 2 s): answer inside it even when a database hangs.
DB_CHECK_TIMEOUT_S = 1.5


async def check(store: MetaStore | AnalyticsStore) -> str:
    """'ok', 'timeout' or 'error: …' for one database, read on its reader threads."""
    (state,) = await check_all(store)
    return state


async def check_all(*stores: MetaStore | AnalyticsStore) -> list[str]:
    """`check` for each store, all at once: one task each and one wait for them all.

    A gather of `wait_for`s made the request wait seven turns of the event loop besides the reads
    (each layer adds a task or a callback), this four; while a client floods pipelined requests, each
    turn is up to a millisecond of the flood's answers (http/server.PIPELINE_TURN_S).
    """
    checks = [asyncio.ensure_future(store.health()) for store in stores]
    try:
        done, _ = await asyncio.wait(checks, timeout=DB_CHECK_TIMEOUT_S)
    finally:
        for task in checks:
            task.cancel()  # a hung one (done ones stay as they are)
    return [_state(task) if task in done else "timeout" for task in checks]


def _state(task: asyncio.Future[None]) -> str:
    if task.cancelled():  # its threads were shut down under it
        return "error: cancelled"
    error = task.exception()  # the engine's own errors; RuntimeError: its threads are shut down
    return "ok" if error is None else f"error: {error}"


async def get_health(request: Request, ctx: Context) -> Response:
    meta_state, analytics_state = await check_all(ctx.meta, ctx.analytics)
    if meta_state != "ok" or analytics_state != "ok":
        # 503 lets a load balancer or `curl --fail` act on a broken database, not only on a dead process.
        raise HTTPError(503, f"database check failed: meta {meta_state}; analytics {analytics_state}")
    body = {
        "status": "ok",
        "version": __version__,
        "commit": COMMIT,
        "uptime_s": int(time.time() - ctx.started),
        "databases": {"meta": meta_state, "analytics": analytics_state},
    }
    return json_response(body, headers=[("Cache-Control", "no-store")])
