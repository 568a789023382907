"""Tables as CSV text (RFC 4180) that spreadsheet apps read as data, never as formulas.

CSV injection: a spreadsheet app runs a cell that begins with `=`, `+`, `-` or `@`
as a formula (and some treat a leading tab or carriage return the same way), and a
visitor controls much of what we store: a path, a UTM tag, a custom property. So a
text cell that begins with one of those characters, or with the apostrophe this
rule adds, is written with an apostrophe in front (OWASP's advice), which the apps
show as text. Because a leading apostrophe is itself escaped, the rule can be undone
exactly: drop one leading apostrophe (`unguard`). Numbers are written as numbers:
a negative count or share does not occur, and a number is no formula.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

__all__ = ["GUARDED_STARTS", "cell", "guard", "header", "line", "render", "unguard"]

# What makes a spreadsheet app read a cell as a formula (OWASP "CSV Injection"), and the apostrophe
# the guard adds, so that every guarded cell can be told apart and restored.
GUARDED_STARTS: Final = ("=", "+", "-", "@", "\t", "\r", "'")
_NEEDS_QUOTES: Final = frozenset(',"\r\n')  # RFC 4180 §2.6: fields with these are enclosed in quotes


def guard(text: str) -> str:
    """`text` as a cell that no spreadsheet app runs: an apostrophe in front when it begins like a formula."""
    return "'" + text if text.startswith(GUARDED_STARTS) else text


def unguard(text: str) -> str:
    """The value a guarded cell was made from (the inverse of `guard`)."""
    return text[1:] if text.startswith("'") else text


def cell(value: object) -> str:
    """A JSON value as cell text: numbers as JSON writes them, true/false, null as empty, text guarded.

    Lists and objects (no list endpoint has them) are written as their JSON text.
    """
    if value is None:
        return ""
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, str):
        return guard(value)
    return guard(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def _field(text: str) -> str:
    if _NEEDS_QUOTES.isdisjoint(text):
        return text
    return '"' + text.replace('"', '""') + '"'  # RFC 4180 §2.7: a quote inside is doubled


def line(values: Iterable[object]) -> str:
    """One record: the values as cells, separated by commas, ended by CRLF (RFC 4180 §2.1).

    A record of one empty cell is written `""`: a bare empty line would be read as no record at all.
    """
    text = ",".join(_field(cell(value)) for value in values)
    return (text or '""') + "\r\n"


def header(rows: Iterable[Mapping[str, object]]) -> list[str]:
    """The column names of rows whose keys may differ: every key, in the order first seen."""
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    return list(names)


def render(rows: Sequence[Mapping[str, object]], columns: Sequence[str] | None = None) -> str:
    """A header line and one line per row (a missing key is an empty cell). No rows and no columns: ""."""
    names = header(rows) if columns is None else list(columns)
    if not names:
        return ""
    return line(names) + "".join(line(row.get(name) for name in names) for row in rows)
