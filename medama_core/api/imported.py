"""GET /website/{hostname}/imported: which days of a site hold imported daily totals, for the dashboard to mark.

The totals themselves are added to /summary, the lists and the websites list
by the analytics store (store/imported_stats.py, with each engine's reads).
"""

from __future__ import annotations

import datetime as dt
from typing import Final

from medama_core.api import Context
from medama_core.http.protocol import Request, Response, json_response

__all__ = ["get_imported"]

_UTC: Final = dt.timezone.utc  # dt.UTC is Python 3.11+


def _day(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, _UTC).strftime("%Y-%m-%d")


async def get_imported(request: Request, ctx: Context) -> Response:
    """`GET /website/{hostname}/imported`: the days of the site that hold imported totals, per tool (ours).
    Who may read them is checked before (app.ROUTES, access.py), which also lower-cases the hostname."""
    periods = await ctx.analytics.imported_periods(request.path_params["hostname"])
    return json_response(
        {"periods": [{"tool": tool, "start": _day(first), "end": _day(last)} for tool, first, last in periods]}
    )
