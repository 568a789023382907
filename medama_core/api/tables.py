"""Stats answers as JSON or as CSV: one formatter around every /website/{hostname}/ endpoint.

A handler answers JSON as always; when the client asked for CSV (`format=csv`, or
an Accept header that prefers text/csv, http/negotiate.py) the formatter turns
that answer into a CSV table (csvtable.py): a list endpoint's rows as they are,
summary's `interval` buckets (or one row per period without them). The JSON is
decoded again for that, a few milliseconds for the largest list: CSV is asked
for by people exporting a table, not on every dashboard load. Without `limit`
a list endpoint answers every row, so a CSV of a whole table is one request.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final

from medama_core import csvtable
from medama_core.api import Context, Handler
from medama_core.http import negotiate
from medama_core.http.protocol import Request, Response

# RFC 4180 §3 registers text/csv with an optional `header` parameter: our tables always have one.
CSV_TYPE: Final = "text/csv; charset=utf-8; header=present"
_UNSAFE_NAME: Final = re.compile(r"[^a-z0-9.-]")


def rows_of(data: Any) -> list[Mapping[str, object]]:
    """The table in a stats answer: a list's rows; summary's `interval` buckets when asked for, else
    one row per period (`current`, and `previous` when asked for); any other object as one row."""
    if isinstance(data, list):
        return [row for row in data if isinstance(row, dict)]
    if not isinstance(data, dict):
        return []
    if isinstance(data.get("interval"), list):
        return rows_of(data["interval"])
    if isinstance(data.get("current"), dict):
        periods = [("current", data["current"]), ("previous", data.get("previous"))]
        return [{"period": name, **totals} for name, totals in periods if isinstance(totals, dict)]
    return [data]


def filename(hostname: str, endpoint: str) -> str:
    """`example.com-pages.csv`: safe in a Content-Disposition header whatever the path held."""
    return _UNSAFE_NAME.sub("_", f"{hostname.lower()}-{endpoint}")[:200] + ".csv"


def as_csv(response: Response, hostname: str, endpoint: str) -> Response:
    """A JSON stats answer as a CSV download (other answers, errors included, stay as they are)."""
    if response.status != 200 or response.content_type != negotiate.FORMATS[negotiate.JSON]:
        return response
    body = csvtable.render(rows_of(json.loads(response.body))).encode()
    disposition = f'attachment; filename="{filename(hostname, endpoint)}"'
    return Response(200, body, CSV_TYPE, [*response.headers, ("Content-Disposition", disposition)])


def csv_capable(endpoint: str, handler: Handler) -> Handler:
    """`handler`, answering CSV when asked to; the format is checked (400) before the handler runs."""

    async def formatted(request: Request, ctx: Context) -> Response:
        chosen = negotiate.choose_format(request.query_value("format"), request.headers.get("accept"))
        response = await handler(request, ctx)
        if chosen == negotiate.CSV:
            response = as_csv(response, request.path_params.get("hostname", ""), endpoint)
        response.headers.append(("Vary", "Accept"))
        return response

    formatted.__name__ = getattr(handler, "__name__", endpoint)
    return formatted
