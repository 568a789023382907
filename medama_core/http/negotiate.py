"""Content negotiation between JSON and CSV: the `format` query parameter, else the Accept header."""

from __future__ import annotations

from typing import Final

from medama_core.http.errors import HTTPError

__all__ = ["CSV", "FORMATS", "JSON", "accepted_quality", "choose_format"]

JSON: Final = "json"
CSV: Final = "csv"
FORMATS: Final = {JSON: "application/json", CSV: "text/csv"}
MAX_ACCEPT_RANGES: Final = 64  # browsers send fewer than 10; more is not worth reading


def _quality(params: list[str]) -> float:
    """The `q` of a media range (RFC 9110 §12.4.2): 0 to 1, 1 when absent, 0 when unreadable."""
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "q":
            try:
                q = float(value.strip())
            except ValueError:
                return 0.0
            return q if 0.0 <= q <= 1.0 else 0.0
    return 1.0


def accepted_quality(accept: str, media_type: str) -> float:
    """How much an Accept header wants `media_type` (RFC 9110 §12.5.1): the q of the most specific
    range that matches it (`type/subtype`, then `type/*`, then `*/*`); 0 when none does."""
    kind = media_type.split("/", 1)[0]
    best = (-1, 0.0)  # (specificity, q)
    for item in accept.split(",")[:MAX_ACCEPT_RANGES]:
        media_range, *params = item.split(";")
        media_range = media_range.strip().lower()
        if media_range == media_type:
            specificity = 2
        elif media_range == kind + "/*":
            specificity = 1
        elif media_range == "*/*":
            specificity = 0
        else:
            continue
        if specificity > best[0]:
            best = (specificity, _quality(params))
    return best[1]


def choose_format(format_param: str | None, accept: str | None) -> str:
    """JSON or CSV for an answer. `format=json|csv` decides (anything else is a 400); else CSV only when
    the Accept header wants text/csv more than application/json, so a missing Accept, `*/*` or a tie
    keeps JSON, the API's format (a type neither matches also gets JSON, RFC 9110 §12.5.1 allows it)."""
    if format_param is not None:
        if format_param not in FORMATS:
            raise HTTPError(400, f"format: must be {JSON} or {CSV}")
        return format_param
    if not accept:
        return JSON
    csv_q = accepted_quality(accept, FORMATS[CSV])
    return CSV if csv_q > 0 and csv_q > accepted_quality(accept, FORMATS[JSON]) else JSON
