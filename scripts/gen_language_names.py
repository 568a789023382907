"""Generate medama_core/data/language_names.json: English names of language tags.

Run by hand when updating CLDR (Babel is needed only here, never at run time):

    pip install babel
    python scripts/gen_language_names.py

Every name comes from the Unicode CLDR English locale as packaged by Babel:
"languages" holds base subtags (`en` -> English), "dialects" the tags CLDR
names as a whole (`en-GB` -> British English), "regions" and "scripts" the
subtag names used to build "English (India)" or "Serbian (Latin)".
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from babel import Locale
from babel.core import get_cldr_version

OUT = Path(__file__).resolve().parent.parent / "medama_core" / "data" / "language_names.json"

# CLDR codes that name no language: "und" (undetermined), "mul" (several),
# "zxx" (no linguistic content), "mis" (uncoded).
NOT_LANGUAGES = frozenset({"und", "mul", "zxx", "mis"})

# Region subtags that name no region.
NOT_REGIONS = frozenset({"ZZ"})

# Tags browsers send that CLDR only names through their script form; these
# follow the brief's parity table (golang.org/x/text/language/display prints
# the script names for the region forms too).
DIALECT_ALIASES = {
    "zh-CN": "zh-Hans",
    "zh-SG": "zh-Hans",
    "zh-TW": "zh-Hant",
}


def main() -> int:
    english = Locale("en")
    languages: dict[str, str] = {}
    dialects: dict[str, str] = {}
    for code, name in english.languages.items():
        if code in NOT_LANGUAGES:
            continue
        if "_" in code:
            dialects[code.replace("_", "-")] = name
        else:
            languages[code] = name
    for alias, target in DIALECT_ALIASES.items():
        dialects[alias] = dialects[target]
    regions = {code: name for code, name in english.territories.items() if code not in NOT_REGIONS}
    table = {
        "source": f"Unicode CLDR {get_cldr_version()} English names, via Babel",
        "languages": dict(sorted(languages.items())),
        "dialects": dict(sorted(dialects.items())),
        "regions": dict(sorted(regions.items())),
        "scripts": dict(sorted(english.scripts.items())),
    }
    OUT.write_text(json.dumps(table, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(
        f"wrote {len(languages)} languages, {len(dialects)} dialects, {len(regions)} regions,"
        f" {len(english.scripts)} scripts to {OUT}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
