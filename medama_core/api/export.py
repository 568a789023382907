"""/websites/{hostname}/export: a site's page views or custom events as one download, streamed in pages.

The rows are read a page at a time (AnalyticsStore.export_page, one short read each, so
a reader thread is never held for the whole download) and sent as they come
(a streamed response, http/server.py), so neither the server nor the database
holds the whole export: memory stays at about one page whatever the site's size.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import AsyncIterator
from typing import Final

from medama_core.api import Context, drain_hits
from medama_core.http.compress import GZIP_LEVEL, accepts_gzip
from medama_core.http.errors import HTTPError
from medama_core.http.protocol import Request, Response

# Rows per read: ~1 MB of CSV at the ~250 bytes a view takes, read in well under a second on the
# slowest machines we target; a read holds a reader thread only that long.
PAGE_ROWS: Final = 4096
CONTENT_TYPES: Final = {"csv": "text/csv; charset=utf-8; header=present", "jsonl": "application/x-ndjson"}
GZIP_WBITS: Final = 31  # zlib: a gzip header and trailer around the deflate stream (RFC 1952)
_SAFE_NAME: Final = re.compile(r"[^a-z0-9.-]")


async def pages(ctx: Context, hostname: str, kind: str, fmt: str) -> AsyncIterator[bytes]:
    """The export's bytes, one page of rows at a time (CSV for spreadsheets: its text cells guarded)."""
    after: tuple[int, int] | None = None
    while True:
        page = await ctx.analytics.export_page(
            hostname, kind=kind, fmt=fmt, after=after, limit=PAGE_ROWS, spreadsheet=True
        )
        if page.text:
            yield page.text.encode()
        if page.after is None:
            return
        after = page.after


async def started(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """`chunks` with its first one read already, so that a store that cannot export (501) or a first read
    that fails is answered as an error rather than as a download cut short after its headers."""
    try:
        first = [await chunks.__anext__()]
    except StopAsyncIteration:  # nothing to send
        first = []

    async def rest() -> AsyncIterator[bytes]:
        for chunk in first:
            yield chunk
        async for chunk in chunks:
            yield chunk

    return rest()


async def gzipped(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The same bytes as one gzip stream, compressed as they come (a CSV export shrinks about 10 times)."""
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, GZIP_WBITS)
    async for chunk in chunks:
        data = compressor.compress(chunk)
        if data:
            yield data
    yield compressor.flush()


async def get_export(request: Request, ctx: Context) -> Response:
    """`type=views|events` (default views), `format=csv|jsonl` (default csv)."""
    hostname = request.path_params["hostname"]  # checked, lower-cased and owned: the route's access
    from medama_core import transfer  # here, not at start-up: it loads every importer

    kind = request.query_value("type") or transfer.VIEWS
    if kind not in (transfer.VIEWS, transfer.EVENTS):
        raise HTTPError(400, f"type: must be {transfer.VIEWS} or {transfer.EVENTS}")
    fmt = request.query_value("format") or "csv"
    if fmt not in CONTENT_TYPES:
        raise HTTPError(400, "format: must be csv or jsonl")
    await drain_hits(ctx)  # the hits accepted so far are in it
    name = _SAFE_NAME.sub("_", f"{hostname}-{kind}") + "." + fmt
    headers = [("Content-Disposition", f'attachment; filename="{name}"'), ("Cache-Control", "no-store")]
    stream = await started(pages(ctx, hostname, kind, fmt))
    headers.append(("Vary", "Accept-Encoding"))
    if accepts_gzip(request.headers.get("accept-encoding", "")):
        stream = gzipped(stream)
        headers.append(("Content-Encoding", "gzip"))
    return Response(200, content_type=CONTENT_TYPES[fmt], headers=headers, stream=stream)
