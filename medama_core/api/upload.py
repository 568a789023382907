"""`POST /websites/{hostname}/import?from=TOOL`: a small export of another tool uploaded from the dashboard.

The body is the file itself (at most IMPORT_BODY_LIMIT bytes; larger files go
through `medama import -from`, which streams). It is imported for the site in
the URL on the analytics writer thread, the same code as the command line's
(transfer.import_upload), so it stores all of the file or, with a line-numbered
400, nothing; and importing it again stores nothing new. Who may import into
the site is checked before the handler (app.ROUTES: site:manage, access.py).
"""

from __future__ import annotations

from typing import Final

from medama_core.api import Context, drain_hits
from medama_core.http.errors import HTTPError
from medama_core.http.protocol import Request, Response, json_response

__all__ = ["IMPORT_BODY_LIMIT", "post_import"]

# A year of a small site's GoatCounter export (~100 bytes a view, 80,000 views) or Plausible's zip of a few
# years; importing it holds the writer thread for about a second, which hit batches can wait.
IMPORT_BODY_LIMIT: Final = 8 * 1024 * 1024


async def post_import(request: Request, ctx: Context) -> Response:
    hostname = request.path_params["hostname"]  # checked and lower-cased by the access check
    from medama_core import transfer  # here, not at start-up: it loads every importer

    tool = request.query_value("from") or ""
    if tool not in transfer.TOOLS:
        raise HTTPError(400, f"from: must be one of {', '.join(transfer.TOOLS)}")
    dry_run = request.query_value("dry_run") in ("1", "true")
    if not request.body:
        raise HTTPError(400, "the request body must be the exported file")
    await drain_hits(ctx)
    name = request.query_value("name") or ""
    try:
        results = await ctx.analytics.import_upload(
            tool, request.body, hostname, dict(ctx.umami_ids), name=name, dry_run=dry_run
        )
    except transfer.TransferError as exc:
        raise HTTPError(400, f"nothing was imported: {exc}") from None
    return json_response(
        {
            "dry_run": dry_run,
            "results": [{"kind": r.kind, "read": r.rows, "stored": 0 if dry_run else r.stored} for r in results],
        }
    )
