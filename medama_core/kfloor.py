"""The k-anonymity floor of a share link (pure): which rows of an answer it shows, which filters it allows.

A share with a floor k > 1 shows only rows that at least k visitors stand
behind, so a public dashboard cannot single one visitor out: a row of the
lists and detail tables with fewer visitors (events, for properties) is left
out of the answer, while totals and percentages stay exact. Filters could
reach the hidden rows another way, so under a floor a filter must name
values shown in the share's own lists (`eq` or `in`; a pattern or a negation
could match hidden values), and the filters together must select at least k
visitors. It works on the answers, so it holds whatever engine computed them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from medama_core.store.filters import Filter, ascii_lower

# Stats endpoint -> the count a row of its list is judged by. `visitors` is page visitors on pages and
# time (the visitors each row shows); properties count events, each a visitor's action.
ROW_COUNT: Final[dict[str, str]] = {
    "pages": "visitors",
    "time": "visitors",
    "referrers": "visitors",
    "sources": "visitors",
    "mediums": "visitors",
    "campaigns": "visitors",
    "browsers": "visitors",
    "os": "visitors",
    "devices": "visitors",
    "countries": "visitors",
    "languages": "visitors",
    "properties": "events",
    "entries": "visitors",  # entries that were a first view of the page that day
    "exits": "visitors",  # the page's visitors, as on pages
}

# Filter field -> the stats endpoint that lists its values, the variants of that list (their extra query
# parameters: a referrer filter matches a host or a group, a language filter a base or a dialect) and the
# row key holding the value. prop_value's list is the values of the filter's prop_name (see `value_lists`).
FIELD_LISTS: Final[dict[str, tuple[str, tuple[dict[str, str], ...], str]]] = {
    "path": ("pages", ({},), "path"),
    "referrer": ("referrers", ({}, {"grouped": "false"}), "referrer"),
    "utm_source": ("sources", ({},), "source"),
    "utm_medium": ("mediums", ({},), "medium"),
    "utm_campaign": ("campaigns", ({},), "campaign"),
    "browser": ("browsers", ({},), "browser"),
    "os": ("os", ({},), "os"),
    "device": ("devices", ({},), "device"),
    "country": ("countries", ({},), "country"),
    "language": ("languages", ({}, {"locale": "true"}), "language"),
    "prop_name": ("properties", ({},), "name"),
    "prop_value": ("properties", ({},), "value"),
}

# Operators a floor allows: they name values. The others (negations, patterns) can select hidden ones.
FLOOR_OPERATORS: Final = frozenset({"eq", "in"})


def active(k: int) -> bool:
    """A floor of 0 or 1 hides nothing: every row has at least one visitor."""
    return k > 1


def endpoint_of(field: str) -> str:
    """The stats a filter on `field` reads from: a share that does not show them refuses the filter."""
    return FIELD_LISTS[field][0]


def filter_problem(flt: Filter, filters: Iterable[Filter], k: int) -> str | None:
    """Why a floor of k refuses `flt` before any value is looked at, or None."""
    if flt.op not in FLOOR_OPERATORS:
        return f"{flt.field}[{flt.op}]: this share hides rows of fewer than {k} visitors; filter with eq or in"
    if flt.field == "prop_value" and not any(f.field == "prop_name" and f.op == "eq" for f in filters):
        return "prop_value: on this share a property value filter needs prop_name[eq] too"
    return None


def value_lists(flt: Filter, filters: Iterable[Filter]) -> tuple[str, list[dict[str, str]], str]:
    """The endpoint, the query parameters of each list to read, and the row key, that show `flt`'s values."""
    endpoint, variants, key = FIELD_LISTS[flt.field]
    if flt.field == "prop_value":
        name = next(f.value for f in filters if f.field == "prop_name" and f.op == "eq")
        return endpoint, [{"prop_name[eq]": name}], key
    return endpoint, [dict(variant) for variant in variants], key


def shown_values(endpoint: str, rows: list[dict[str, Any]], key: str, k: int) -> set[str]:
    """The values of `key` in rows the floor keeps, lower-cased as filters compare them."""
    count = ROW_COUNT[endpoint]
    return {ascii_lower(str(row[key])) for row in rows if int(row.get(count, 0)) >= k and key in row}


def hidden_values(flt: Filter, shown: set[str]) -> list[str]:
    """The values `flt` names that the share does not show."""
    return [value for value in flt.values() if value not in shown]


def floor_rows(
    endpoint: str, rows: list[dict[str, Any]], k: int, shown_paths: set[str] | None = None
) -> list[dict[str, Any]]:
    """The rows of a list answer that at least k visitors stand behind.

    Lists are sorted by that count, highest first, so the rows left out are the
    tail of each page and offsets keep their meaning. /time's compact rows carry
    no visitors: they are judged by `shown_paths` (the paths its full rows keep).
    """
    count = ROW_COUNT[endpoint]
    if rows and count not in rows[0] and shown_paths is not None:
        return [row for row in rows if row.get("path") in shown_paths]
    return [row for row in rows if int(row.get(count, 0)) >= k]
