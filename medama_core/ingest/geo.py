"""Map an IANA time zone name to an English country name (no IP lookup, by design)."""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Final

__all__ = ["country_for", "zone_names"]

# Upstream's table (medama-io/go-timezone-country, 448 zones incl. legacy
# aliases), then the zones it lacks, generated from IANA tzdata by
# scripts/gen_tzcountry.py. Neither holds UTC, GMT or Etc/*: a browser that
# reports those says nothing about where it is. See data/README.md.
TABLE_FILES: Final = ("tzcountry.json", "tzcountry_extra.json")

# Longest IANA name today is 32 characters ("America/Argentina/ComodRivadavia").
MAX_ZONE_CHARS: Final = 64


@functools.cache
def _countries() -> dict[str, str]:
    data = resources.files("medama_core.data")
    table: dict[str, str] = {}
    for name in reversed(TABLE_FILES):  # the upstream file is read last and wins
        table.update(json.loads(data.joinpath(name).read_text(encoding="utf-8")))
    return table


def zone_names() -> frozenset[str]:
    """Every zone name the tables know."""
    return frozenset(_countries())


def country_for(tz: str) -> str | None:
    """Country for the tracker's `t` field; None when unknown (counts as one unknown)."""
    if len(tz) > MAX_ZONE_CHARS:
        return None
    return _countries().get(tz)
