"""GoatCounter's CSV export (format version 2): one row per page view or event, for one site.

The header is `2Path,Title,Event,UserAgent,Browser,System,Session,Bot,Referrer,
Referrer scheme,Screen size,Location,FirstVisit,Date` (the leading digit is the
format version). The export names no site: the caller says which. Kept: path,
time (RFC 3339, any offset), browser and system names without versions, device
class from the screen width, country from the location code, referrer (an URL,
a generated name like "Hacker News", or a campaign as utm_source), first visit
of the page in its session as "first view of the page". Not kept: the title,
the session id itself (it only decides "first view today": the first row of a
session on each UTC day), bot rows (skipped). An event row is a custom event
`event=<path>` of the last view of its session before it (GoatCounter events
belong to no view; one with no earlier view in the file has none, and the
properties report, which counts events per view, leaves it out).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from medama_core.importers import names
from medama_core.importers.rows import EVENT, VIEW, BadRecord, Ids, Record, csv_records, header_index, parse_moment
from medama_core.ingest import referrer
from medama_core.ingest.foreign import EVENT_PROPERTY
from medama_core.ingest.hit import MAX_PATHNAME_BYTES, MAX_PROPERTY_VALUE_CHARS, MAX_UTM_BYTES, cut

__all__ = ["FORMAT_VERSION", "records"]

FORMAT_VERSION: Final = "2"
COLUMNS: Final = ("Path", "Event", "Session", "Bot", "Referrer", "Referrer scheme", "Date")
_DAY_MS: Final = 86_400_000


def _flag(value: str) -> bool:
    return value.strip().lower() in ("true", "t", "1", "yes", "on")


def _width(screen: str) -> int | None:
    """`1920,1080,2` (CSS pixels and scale): the width."""
    first = screen.split(",", 1)[0].strip()
    return int(first) if first.isdigit() and len(first) < 6 else None


def _source(value: str, scheme: str, site: str) -> tuple[str, str, str]:
    """(referrer_host, referrer_group, utm_source) of a GoatCounter referrer and its scheme."""
    value = value.strip()
    if not value:
        return "", "", ""
    if scheme == "c":
        return "", "", cut(value, MAX_UTM_BYTES)
    if scheme == "g":
        return "", cut(value, MAX_UTM_BYTES), ""
    url = value if "://" in value else f"https://{value}"
    try:
        found = referrer.classify(url, site)
    except referrer.InvalidReferrer:
        return "", "", ""
    if isinstance(found, referrer.Spam):
        return found.host, "", ""
    return found.host, found.group, ""


def records(lines: Iterator[str], site: str) -> Iterator[Record]:
    """The views and events of a GoatCounter export for `site`; a BadRecord names the first bad line."""
    rows = csv_records(lines)
    first = next(rows, None)
    if first is None:
        return
    number, header = first
    version, _, path_name = header[0].partition("Path") if header else ("", "", "")
    if version != FORMAT_VERSION or path_name:
        raise BadRecord(
            number, f"not a GoatCounter export of format {FORMAT_VERSION} (header starts {header[0][:20]!r})"
        )
    column = header_index(["Path", *header[1:]], COLUMNS, number)
    width = len(header)
    ids = Ids("goatcounter", site)
    days_seen: set[tuple[str, int]] = set()
    last_view: dict[str, str] = {}
    for number, record in rows:
        if len(record) != width:
            raise BadRecord(number, f"{len(record)} fields, the header has {width}")

        def get(name: str, record: list[str] = record) -> str:
            return record[column[name]] if name in column else ""

        bot = get("Bot").strip()
        if bot not in ("", "0"):
            continue
        moment = parse_moment(get("Date"), number, "Date")
        session = get("Session").strip()
        path = get("Path")
        bid = ids.of(record)
        if _flag(get("Event")):
            values: dict[str, object] = {
                "bid": last_view.get(session, ""),
                "batch_id": f"event_gc{bid}",
                "group_name": site,
                "name": EVENT_PROPERTY,
                "value": path[:MAX_PROPERTY_VALUE_CHARS],
                "date_created": moment,
            }
            yield Record(EVENT, number, values)
            continue
        if not path.startswith("/"):
            path = "/" + path
        if len(path) > 1 and path.endswith("/"):
            path = path[:-1]  # as ingestion stores it (ingest/hit.py page_parts)
        day = (session or bid, moment // _DAY_MS)
        first_today = day not in days_seen
        days_seen.add(day)
        if session:
            last_view[session] = bid
        os = names.os_name(get("System"))
        ref_host, ref_group, utm_source = _source(get("Referrer"), get("Referrer scheme").strip(), site)
        language = names.language("")
        yield Record(
            VIEW,
            number,
            {
                "bid": bid,
                "hostname": site,
                "pathname": cut(path, MAX_PATHNAME_BYTES),
                "is_unique_user": first_today,
                "is_unique_page": _flag(get("FirstVisit")) if "FirstVisit" in column else first_today,
                "referrer_host": ref_host,
                "referrer_group": ref_group,
                "country": names.country(get("Location")),
                "language_base": language.base,
                "language_dialect": language.dialect,
                "ua_browser": names.browser(get("Browser")),
                "ua_os": os,
                "ua_device_type": names.device(width=_width(get("Screen size")), os=os),
                "utm_source": utm_source,
                "utm_medium": "",
                "utm_campaign": "",
                "duration_ms": None,
                "date_created": moment,
            },
        )
