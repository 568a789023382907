"""Structured logging: one JSON object per line, or a readable line for humans, never more than one line.

Fields often carry what strangers sent (a request path, a header). So that no
value can start a line of its own or pose as another field, every control
character is escaped in both formats (JSON as `\\uXXXX` escapes that decode
back to the character; the pretty format as `\\n`, `\\xNN`, `\\uNNNN`), pretty
field values with spaces, quotes or `=` are quoted, and each text value is cut
to MAX_FIELD_CHARS with a marker saying how much was left out.
"""

from __future__ import annotations

import json
import re
import sys
import time
from typing import Any, Final, TextIO

LEVELS = {"debug": 10, "info": 20, "warn": 30, "error": 40}

# Longest text value written as is. The longest path we store (ingest.hit.MAX_PATHNAME_CHARS) fits, and so
# does a usual traceback; a 16 KiB request line costs an eighth of that, so a flood of long URLs no
# longer writes 16 KiB a line.
MAX_FIELD_CHARS: Final = 2048
# What is kept of a longer value: its start, then a marker, then its end (where a traceback names its error).
CUT_HEAD_CHARS: Final = 1536
CUT_TAIL_CHARS: Final = MAX_FIELD_CHARS - CUT_HEAD_CHARS

# Characters no log line may hold raw: C0 and C1 controls and DEL (category Cc: newlines among them,
# and U+0085 NEL, which some readers take for one), U+2028/U+2029 (line and paragraph separators), and
# the bidirectional overrides and isolates, which can make a line read differently than it is stored.
_UNSAFE: Final = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# A pretty value that must be quoted: empty, or holding a space, quote, backslash, `=` or anything unsafe.
_NEEDS_QUOTES: Final = re.compile('[\\s"\\\\=]|' + _UNSAFE.pattern)
_SHORT_ESCAPES: Final = {"\n": "\\n", "\r": "\\r", "\t": "\\t", '"': '\\"', "\\": "\\\\"}


def cut(text: str) -> str:
    """`text`, or its start and end around a marker when it is longer than MAX_FIELD_CHARS."""
    if len(text) <= MAX_FIELD_CHARS:
        return text
    left_out = len(text) - CUT_HEAD_CHARS - CUT_TAIL_CHARS
    return f"{text[:CUT_HEAD_CHARS]}…[{left_out} more characters]…{text[-CUT_TAIL_CHARS:]}"


_KEPT: Final = frozenset({str, int, float, bool})  # types `_capped` returns unchanged when short


def _capped(value: Any) -> Any:
    """A field value with every text in it cut (see `cut`); numbers, booleans and None unchanged."""
    if isinstance(value, str):
        return cut(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, dict):
        return {cut(str(key)): _capped(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_capped(item) for item in value]
    return cut(str(value))


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def json_line(record: dict[str, Any]) -> str:
    """One JSON object and a newline; unsafe characters become `\\uXXXX` escapes, so it still decodes the same."""
    line = json.dumps(record, ensure_ascii=False, default=str)
    if _UNSAFE.search(line):
        line = _UNSAFE.sub(_json_escape, line)
    return line + "\n"


def _pretty_escape(match: re.Match[str]) -> str:
    char = match.group()
    short = _SHORT_ESCAPES.get(char)
    if short is not None:
        return short
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def pretty_value(value: Any) -> str:
    """A value as the pretty format shows it: bare when it is one safe word, else quoted and escaped."""
    if isinstance(value, str):
        text = value
    elif value is None or isinstance(value, bool):
        return "null" if value is None else "true" if value else "false"
    elif isinstance(value, (int, float)):
        return repr(value)  # digits, a dot, e, -, or inf/nan: nothing to quote
    else:
        text = json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))
    if text and not _NEEDS_QUOTES.search(text):
        return text
    return '"' + re.sub('["\\\\]|' + _UNSAFE.pattern, _pretty_escape, text) + '"'


_second: list[Any] = [None, "", ""]  # the last second formatted: [int second, "date and time", "offset"]


def local_time(now: float) -> str:
    """RFC 3339 local time with milliseconds and the UTC offset: `2026-01-05T14:03:07.123+01:00`."""
    second = int(now)
    cached = _second
    if cached[0] != second:  # format the date and offset once a second, not once a line
        moment = time.localtime(second)
        offset = moment.tm_gmtoff // 60
        hours, minutes = divmod(abs(offset), 60)
        sign = "-" if offset < 0 else "+"
        cached[1:] = [time.strftime("%Y-%m-%dT%H:%M:%S", moment), f"{sign}{hours:02d}:{minutes:02d}"]
        cached[0] = second
    return f"{cached[1]}.{int(now * 1000) % 1000:03d}{cached[2]}"


def pretty_line(now: float, level: str, message: str, fields: dict[str, Any]) -> str:
    # The message is our own text, shown as is for reading; quoted only if it holds an unsafe character.
    shown = message if message and not _UNSAFE.search(message) else pretty_value(message)
    parts = [local_time(now), f"{level.upper():5}", shown]
    parts += [f"{pretty_value(str(key))}={pretty_value(value)}" for key, value in fields.items()]
    return " ".join(parts) + "\n"


class Logger:
    """A small, fast logger: a level check, then one formatted write per event."""

    def __init__(self, fmt: str = "json", level: str = "info", stream: TextIO | None = None) -> None:
        if fmt not in ("json", "pretty"):
            raise ValueError(f"unknown log format {fmt!r}")
        self.threshold = LEVELS[level]
        self.pretty = fmt == "pretty"
        self.stream = stream if stream is not None else sys.stderr

    def enabled(self, level: str) -> bool:
        return LEVELS[level] >= self.threshold

    def log(self, level: str, message: str, /, **fields: Any) -> None:
        number = LEVELS[level]
        if number < self.threshold:
            return
        now = time.time()
        message = cut(message)
        # Keyword names are always str; most values are short text or numbers and pass unchanged.
        capped = {key: value if type(value) in _KEPT and len(str(value)) <= MAX_FIELD_CHARS else _capped(value)
                  for key, value in fields.items()}  # fmt: skip
        if self.pretty:
            line = pretty_line(now, level, message, capped)
        else:
            record: dict[str, Any] = {"time": int(now), "level": level, "message": message}
            record.update(capped)
            line = json_line(record)
        try:
            self.stream.write(line)
            self.stream.flush()
        except (OSError, ValueError):
            pass  # a closed or full log stream must never take a request down with it

    def debug(self, message: str, /, **fields: Any) -> None:
        if self.threshold <= 10:
            self.log("debug", message, **fields)

    def info(self, message: str, /, **fields: Any) -> None:
        if self.threshold <= 20:
            self.log("info", message, **fields)

    def warn(self, message: str, /, **fields: Any) -> None:
        self.log("warn", message, **fields)

    def error(self, message: str, /, **fields: Any) -> None:
        self.log("error", message, **fields)
