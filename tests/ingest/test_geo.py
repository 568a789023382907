"""Time zone to country: upstream's table, legacy aliases, and every zone Python knows."""

from __future__ import annotations

import re
import zoneinfo

import pytest

from medama_core.ingest.geo import country_for


@pytest.mark.parametrize(
    ("tz", "country"),
    [
        ("Europe/London", "United Kingdom"),
        ("America/New_York", "United States"),
        ("Europe/Paris", "France"),
        ("Asia/Kolkata", "India"),
        ("Asia/Calcutta", "India"),
        ("Europe/Kiev", "Ukraine"),
        ("Europe/Kyiv", "Ukraine"),
        ("US/Eastern", "United States"),
        ("Asia/Istanbul", "Türkiye"),
        ("Iceland", "Iceland"),
        ("Africa/Timbuktu", "Mali"),
        ("Antarctica/South_Pole", "Antarctica"),
        ("America/Coyhaique", "Chile"),
        ("UTC", None),
        ("GMT", None),
        ("Etc/GMT+5", None),
        ("Etc/UTC", None),
        ("CET", None),
        ("EST5EDT", None),
        ("", None),
        ("europe/london", None),
        ("Mars/Olympus_Mons", None),
        ("A" * 10_000, None),
    ],
    ids=lambda value: str(value)[:20],
)
def test_country_for(tz: str, country: str | None) -> None:
    assert country_for(tz) == country


# Zone names that name no place: UTC and its spellings, fixed offsets, the
# POSIX rule zones and files that are not zones.
NOT_PLACES = re.compile(
    r"(Etc/.*|UTC|UCT|GMT|GMT[+-]?0|Greenwich|Universal|Zulu|Factory|localtime|posixrules"
    r"|CET|EET|MET|WET|EST|MST|HST|EST5EDT|CST6CDT|MST7MDT|PST8PDT)"
)


def test_every_zone_python_knows_maps_to_a_country() -> None:
    places = sorted(tz for tz in zoneinfo.available_timezones() if not NOT_PLACES.fullmatch(tz))
    assert len(places) > 400
    assert [tz for tz in places if country_for(tz) is None] == []


def test_non_places_have_no_country() -> None:
    non_places = [tz for tz in zoneinfo.available_timezones() if NOT_PLACES.fullmatch(tz)]
    assert [tz for tz in non_places if country_for(tz) is not None] == []
