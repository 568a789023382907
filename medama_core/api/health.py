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
    try:
        await asyncio.wait_for(store.health(), DB_CHECK_TIMEOUT_S)  # asyncio.timeout is Python 3.11+
    except asyncio.TimeoutError:  # not yet the built-in TimeoutError on Python 3.10
        return "timeout"
    except Exception as exc:  # the engine's own errors; RuntimeError: its threads are shut down
        return f"error: {exc}"
    return "ok"


async def get_health(request: Request, ctx: Context) -> Response:
    meta_state, analytics_state = await asyncio.gather(check(ctx.meta), check(ctx.analytics))
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
