"""/websites/{hostname}/annotations: notes on a day or a range of days of a site, drawn on its chart.

(The module is not called annotations: that name is taken by `from __future__ import annotations`.)
"""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import Any, Final

from medama_core.api import Context
from medama_core.api.websites import NOT_FOUND
from medama_core.http.errors import HTTPError
from medama_core.http.jsonbody import json_object
from medama_core.http.protocol import Request, Response, json_response
from medama_core.store import protocol as store

# A note is a line or two on a chart ("Launched the new pricing page"); 500 characters is a paragraph.
MAX_TEXT_CHARS: Final = 500
# Notes a site may hold: a dozen a month for seven years; bounds the list the chart loads at once.
MAX_PER_SITE: Final = 1000
# A range longer than this is no event on a chart but a period ("the whole of 2024" is 366 days).
MAX_RANGE_DAYS: Final = 366
# The dashboard's dates start in 2024 (period.js EARLIEST); notes reach a little further back for
# history brought in with `medama import`, and no further forward than a plan could.
FIRST_YEAR: Final = 2000
LAST_YEAR: Final = 2099
MAX_ID_CHARS: Final = 64  # ids are "note_" and 26 characters; anything longer names no note
_DATE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Control characters other than line breaks and tabs have no place in a note (and PostgreSQL text
# cannot hold NUL).
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_UTC: Final = dt.timezone.utc


def parse_date(name: str, value: object) -> str:
    """A calendar date `YYYY-MM-DD` from FIRST_YEAR to LAST_YEAR, as given; 400 otherwise."""
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise HTTPError(400, f"{name}: must be a date written YYYY-MM-DD")
    try:
        date = dt.date.fromisoformat(value)
    except ValueError:
        raise HTTPError(400, f"{name}: {value!r} is not a calendar date") from None
    if not FIRST_YEAR <= date.year <= LAST_YEAR:
        raise HTTPError(400, f"{name}: must be from {FIRST_YEAR} to {LAST_YEAR}")
    return value


def parse_annotation_body(body: dict[str, Any]) -> tuple[str, str | None, str]:
    """(start, end or None, text) from a POST body; 400 for anything missing or out of bounds."""
    if "start" not in body:
        raise HTTPError(400, "start: required field is missing")
    start = parse_date("start", body["start"])
    end = None if body.get("end") is None else parse_date("end", body["end"])
    if end is not None:
        days = (dt.date.fromisoformat(end) - dt.date.fromisoformat(start)).days
        if days < 0:
            raise HTTPError(400, "end: must not be before start")
        if days >= MAX_RANGE_DAYS:
            raise HTTPError(400, f"end: a note covers at most {MAX_RANGE_DAYS} days")
        if days == 0:
            end = None  # one day: the same note as without an end
    text = body.get("text")
    if not isinstance(text, str):
        raise HTTPError(400, "text: must be a string")
    text = text.strip()
    if not 1 <= len(text) <= MAX_TEXT_CHARS:
        raise HTTPError(400, f"text: must be 1 to {MAX_TEXT_CHARS} characters long (spaces around it not counted)")
    if _CONTROL.search(text):
        raise HTTPError(400, "text: must not contain control characters other than line breaks and tabs")
    return start, end, text


def annotation_json(note: store.Annotation) -> dict[str, Any]:
    created = dt.datetime.fromtimestamp(note.created, _UTC).isoformat().replace("+00:00", "Z")
    return {"id": note.id, "start": note.start, "end": note.end, "text": note.text, "created": created}


async def list_annotations(request: Request, ctx: Context) -> Response:
    """The site's notes, oldest day first; `start`/`end` (dates) keep those that touch that range."""
    hostname = request.path_params["hostname"]  # checked, lower-cased and owned: the route's access
    start, end = (request.query_value(name) for name in ("start", "end"))
    first = None if start is None else parse_date("start", start)
    last = None if end is None else parse_date("end", end)
    notes = await ctx.meta.list_annotations(hostname, first, last)
    return json_response([annotation_json(note) for note in notes])


async def post_annotation(request: Request, ctx: Context) -> Response:
    hostname = request.path_params["hostname"]  # checked, lower-cased and owned: the route's access
    start, end, text = parse_annotation_body(json_object(request))
    note = store.Annotation(store.new_annotation_id(), hostname, start, end, text, int(time.time()))
    try:
        stored = await ctx.meta.insert_annotation(note, MAX_PER_SITE)
    except store.AlreadyExists:  # the site was deleted since the owner check (ids are random)
        raise HTTPError(404, NOT_FOUND) from None
    if not stored:
        raise HTTPError(409, f"this website has {MAX_PER_SITE} notes, the most it may have; delete some first")
    return json_response(annotation_json(note), 201)


async def delete_annotation(request: Request, ctx: Context) -> Response:
    hostname = request.path_params["hostname"]  # checked, lower-cased and owned: the route's access
    note_id = request.path_params["id"]
    if len(note_id) > MAX_ID_CHARS or not await ctx.meta.delete_annotation(hostname, note_id):
        raise HTTPError(404, "annotation not found")
    return Response(204)
