"""Umami's `website_event` and `session` tables as CSV (`psql \\copy … TO … CSV HEADER`, or its data export).

Rows of `website_event` with `event_type` 1 are page views, 2 custom events
(`event=<event_name>`, belonging to the last view of the same visit, or
session, before them in the file). Ids are Umami's own `event_id`s, so a re-run
stores nothing new. The `session` rows, when given, say the browser, system,
device, country and language of each session; without them those are Unknown.
Uniqueness: a session's first view on each UTC day is its "first view today",
its first view of a path that day "first view of the page". Kept besides: path,
query's utm_* (or the utm_* columns of newer versions), referrer, time
(`created_at`, UTC unless it carries an offset). Not kept: titles, screen
sizes, regions and cities, `event_data` values, the ids of sessions and visits.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator, Mapping
from typing import Final, NamedTuple

from medama_core.importers import names
from medama_core.importers.rows import EVENT, VIEW, BadRecord, Record, csv_records, header_index, parse_moment
from medama_core.ingest import referrer
from medama_core.ingest.foreign import EVENT_PROPERTY
from medama_core.ingest.hit import MAX_PATHNAME_BYTES, MAX_PROPERTY_VALUE_CHARS, MAX_UTM_BYTES, cut
from medama_core.ingest.useragent import UNKNOWN

__all__ = ["Session", "records", "sessions"]

EVENT_COLUMNS: Final = ("event_id", "website_id", "session_id", "created_at", "url_path", "event_type")
SESSION_COLUMNS: Final = ("session_id", "browser", "os", "device", "language", "country")
PAGE_VIEW: Final = "1"
CUSTOM_EVENT: Final = "2"
_DAY_MS: Final = 86_400_000


class Session(NamedTuple):
    browser: str
    os: str
    device: str
    country: str
    language_base: str
    language_dialect: str


UNKNOWN_SESSION: Final = Session(UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN)


def sessions(lines: Iterator[str]) -> dict[str, Session]:
    """The `session` table's rows by session id; a BadRecord names the first bad line."""
    rows = csv_records(lines)
    first = next(rows, None)
    if first is None:
        return {}
    number, header = first
    column = header_index(header, SESSION_COLUMNS, number)
    found: dict[str, Session] = {}
    for number, record in rows:
        if len(record) != len(header):
            raise BadRecord(number, f"{len(record)} fields, the header has {len(header)}")
        os = names.os_name(record[column["os"]])
        language = names.language(record[column["language"]])
        found[record[column["session_id"]]] = Session(
            names.browser(record[column["browser"]]),
            os,
            names.device(record[column["device"]], os=os),
            names.country(record[column["country"]]),
            language.base,
            language.dialect,
        )
    return found


def _path(path: str) -> str:
    path = urllib.parse.unquote(path) or "/"
    if not path.startswith("/"):
        path = "/" + path
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    return cut(path, MAX_PATHNAME_BYTES)


def _source(domain: str, path: str, site: str) -> tuple[str, str]:
    if not domain.strip():
        return "", ""
    try:
        found = referrer.classify(f"https://{domain.strip()}{path}", site)
    except referrer.InvalidReferrer:
        return "", ""
    return (found.host, "") if isinstance(found, referrer.Spam) else (found.host, found.group)


def records(lines: Iterator[str], sites: Mapping[str, str], by_session: Mapping[str, Session]) -> Iterator[Record]:
    """The views and events of a `website_event` CSV; `sites` maps Umami website ids to our hostnames
    ("" maps any id). A BadRecord names the first bad line, or a website id nobody mapped."""
    rows = csv_records(lines)
    first = next(rows, None)
    if first is None:
        return
    number, header = first
    column = header_index(header, EVENT_COLUMNS, number)
    seen: set[tuple[str, int, str]] = set()
    last_view: dict[str, str] = {}
    for number, record in rows:
        if len(record) != len(header):
            raise BadRecord(number, f"{len(record)} fields, the header has {len(header)}")

        def get(name: str, record: list[str] = record) -> str:
            return record[column[name]] if name in column else ""

        website = get("website_id")
        site = sites.get(website) or sites.get("")
        if not site:
            raise BadRecord(
                number,
                f"website_id {website[:64]!r} names no site here (give -site, or set the site's Umami website id)",
            )
        event_id = get("event_id").strip()
        if not event_id:
            raise BadRecord(number, "empty event_id")
        moment = parse_moment(get("created_at"), number, "created_at")
        session_id = get("session_id")
        visit = get("visit_id") or session_id
        kind = get("event_type").strip()
        if kind == CUSTOM_EVENT:
            name = get("event_name")[:MAX_PROPERTY_VALUE_CHARS]
            values: dict[str, object] = {
                "bid": last_view.get(visit, ""),
                "batch_id": f"event_um{event_id}",
                "group_name": site,
                "name": EVENT_PROPERTY,
                "value": name,
                "date_created": moment,
            }
            yield Record(EVENT, number, values)
            continue
        if kind != PAGE_VIEW:
            continue  # later versions add kinds (e.g. link clicks) with no page view in them
        path = _path(get("url_path"))
        day = moment // _DAY_MS
        first_today = (session_id, day, "") not in seen
        first_page = (session_id, day, path) not in seen
        seen.update(((session_id, day, ""), (session_id, day, path)))
        last_view[visit] = event_id
        query = dict(urllib.parse.parse_qsl(get("url_query").lstrip("?")))
        ref_host, ref_group = _source(get("referrer_domain"), get("referrer_path"), site)
        session = by_session.get(session_id, UNKNOWN_SESSION)
        yield Record(
            VIEW,
            number,
            {
                "bid": event_id,
                "hostname": site,
                "pathname": path,
                "is_unique_user": first_today,
                "is_unique_page": first_page,
                "referrer_host": ref_host,
                "referrer_group": ref_group,
                "country": session.country,
                "language_base": session.language_base,
                "language_dialect": session.language_dialect,
                "ua_browser": session.browser,
                "ua_os": session.os,
                "ua_device_type": session.device,
                "utm_source": cut(get("utm_source") or query.get("utm_source", ""), MAX_UTM_BYTES),
                "utm_medium": cut(get("utm_medium") or query.get("utm_medium", ""), MAX_UTM_BYTES),
                "utm_campaign": cut(get("utm_campaign") or query.get("utm_campaign", ""), MAX_UTM_BYTES),
                "duration_ms": None,
                "date_created": moment,
            },
        )
