"""GET /website/{hostname}/live: the pages of a site open now (AnalyticsStore.live; ours, not upstream's)."""

from __future__ import annotations

import time

from medama_core.api import Context
from medama_core.http.protocol import Request, Response, json_response


async def get_live(request: Request, ctx: Context) -> Response:
    """The site's open pages: a count and the top pages, referrers and countries among them."""
    now_ms = int(time.time() * 1000)
    return json_response(await ctx.analytics.live(request.path_params["hostname"], now_ms))
