"""Generate medama_core/data/tzcountry_extra.json: the zones tzcountry.json lacks.

Run by hand when the tzdata package is updated (it is needed only here, never at
run time):

    pip install tzdata babel
    python scripts/gen_tzcountry.py

tzcountry.json (upstream's table) is kept byte for byte; this writes only the
zones missing from it, so an upstream entry always wins. For each missing zone
the country code comes from, in order: MOVED_LINKS below, the zone's own row in
zone.tab, the zone.tab row of its link target (following links in tzdata.zi),
the first country of its zone1970.tab row. The English name of a code is the
one tzcountry.json already uses for it, else CLDR's (through Babel), else
iso3166.tab's.
"""

from __future__ import annotations

import json
import sys
import zoneinfo
from importlib import resources
from pathlib import Path

from babel import Locale

DATA = Path(__file__).resolve().parent.parent / "medama_core" / "data"

# Names that are not places: UTC and its spellings, the Etc/ offsets, the POSIX
# rule zones (CET, EST5EDT, ...; since tzdata 2024b several are links to a city
# that merely shares the rules), and files that are not zones at all.
NOT_PLACES = frozenset(
    {
        "UTC", "UCT", "GMT", "GMT0", "GMT+0", "GMT-0", "Greenwich", "Universal", "Zulu",
        "CET", "EET", "MET", "WET", "EST", "MST", "HST",
        "EST5EDT", "CST6CDT", "MST7MDT", "PST8PDT",
        "Factory", "localtime", "posixrules",
    }
)  # fmt: skip

# Links whose target lies in another country; the country is the one named in
# the comment beside the link in the IANA `backward` file.
MOVED_LINKS = {
    "Africa/Timbuktu": "ML",
    "America/Virgin": "VI",
    "Antarctica/South_Pole": "AQ",
    "Atlantic/Jan_Mayen": "SJ",
    "Iceland": "IS",
    "Pacific/Yap": "FM",
}


def is_place(zone: str) -> bool:
    return zone not in NOT_PLACES and not zone.startswith("Etc/")


def read_tab(text: str) -> dict[str, list[str]]:
    """zone.tab / zone1970.tab rows as zone -> country codes."""
    rows: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            codes, _coords, zone = line.split("\t")[:3]
            rows[zone] = codes.split(",")
    return rows


def read_links(text: str) -> dict[str, str]:
    """`L target alias` lines of tzdata.zi as alias -> target."""
    links: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("L "):
            _, target, alias = line.split()
            links[alias] = target
    return links


def read_iso3166(text: str) -> dict[str, str]:
    return dict(line.split("\t", 1) for line in text.splitlines() if line and not line.startswith("#"))


def country_code(
    zone: str, zone_tab: dict[str, list[str]], zone1970: dict[str, list[str]], links: dict[str, str]
) -> str | None:
    if zone in MOVED_LINKS:
        return MOVED_LINKS[zone]
    seen = {zone}
    current = zone
    while True:
        if current in zone_tab:
            return zone_tab[current][0]
        if current not in links or links[current] in seen:
            break
        current = links[current]
        seen.add(current)
    return zone1970[current][0] if current in zone1970 else None


def main() -> int:
    tzdir = resources.files("tzdata").joinpath("zoneinfo")
    zone_tab = read_tab(tzdir.joinpath("zone.tab").read_text(encoding="utf-8"))
    zone1970 = read_tab(tzdir.joinpath("zone1970.tab").read_text(encoding="utf-8"))
    links = read_links(tzdir.joinpath("tzdata.zi").read_text(encoding="utf-8"))
    iso_names = read_iso3166(tzdir.joinpath("iso3166.tab").read_text(encoding="utf-8"))
    cldr_names = Locale("en").territories

    upstream: dict[str, str] = json.loads((DATA / "tzcountry.json").read_text(encoding="utf-8"))
    # Code -> name as upstream spells it, learnt only from zones that zone.tab
    # lists directly (an alias may sit in another country than its target).
    upstream_names = {zone_tab[z][0]: name for z, name in upstream.items() if z in zone_tab}

    zones = set(zoneinfo.available_timezones())
    zones |= set(zone_tab) | set(zone1970) | set(links)
    extra: dict[str, str] = {}
    unmapped: list[str] = []
    for zone in sorted(zones):
        if zone in upstream or not is_place(zone):
            continue
        code = country_code(zone, zone_tab, zone1970, links)
        if code is None:
            unmapped.append(zone)
            continue
        extra[zone] = upstream_names.get(code) or cldr_names.get(code) or iso_names[code]

    out = DATA / "tzcountry_extra.json"
    out.write_text(json.dumps(extra, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    version = tzdir.joinpath("tzdata.zi").read_text(encoding="utf-8").splitlines()[0]
    print(f"wrote {len(extra)} zones to {out} from tzdata {version!r}")
    if unmapped:
        print("no country for:", ", ".join(unmapped), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
