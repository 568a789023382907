"""The logger: one line per event whatever the fields hold, control characters escaped, long values cut."""

from __future__ import annotations

import io
import json
import re
import time
import unicodedata
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medama_core.log import CUT_HEAD_CHARS, CUT_TAIL_CHARS, MAX_FIELD_CHARS, Logger, local_time

FORMATS = ("json", "pretty")
# What no raw log line may hold: every Cc character (newline included: only the last one is allowed),
# the line and paragraph separators, and the bidirectional controls.
BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def lines(fmt: str, message: str, **fields: Any) -> str:
    stream = io.StringIO()
    Logger(fmt, "debug", stream=stream).info(message, **fields)
    return stream.getvalue()


def assert_one_safe_line(text: str) -> None:
    assert text.endswith("\n") and len(text.splitlines()) == 1, repr(text)
    for char in text[:-1]:
        assert unicodedata.category(char) not in ("Cc", "Zl", "Zp") and char not in BIDI, repr(text)


texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=3000)


@given(message=texts, key=texts.filter(bool), value=texts, other=st.one_of(texts, st.lists(texts, max_size=3)))
@pytest.mark.parametrize("fmt", FORMATS)
def test_any_field_text_gives_exactly_one_line_without_raw_control_characters(
    fmt: str, message: str, key: str, value: str, other: Any
) -> None:
    text = lines(fmt, message, **{key: value, "other": other})
    assert_one_safe_line(text)
    if fmt == "json":
        record = json.loads(text)  # still valid JSON, and short values come back exactly
        if len(value) <= MAX_FIELD_CHARS and key not in ("time", "level", "message", "other"):
            assert record[key] == value
        if len(message) <= MAX_FIELD_CHARS:
            assert record["message"] == message


FORGED = "/x\n12:00:00 WARN  login succeeded username=admin"


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_path_cannot_forge_a_log_line_or_a_field(fmt: str) -> None:
    for path in (FORGED, "/x%0a", "/a\u2028b", "/a\x85b", "/a\x1b[31mred", "/a status=500"):
        text = lines(fmt, "request", path=path, status=200)
        assert_one_safe_line(text)
    pretty = lines("pretty", "request", path="/a status=500", status=200)
    assert pretty.rstrip().endswith('path="/a status=500" status=200')
    assert "\\n12:00:00 WARN" in lines("pretty", "request", path=FORGED)


@pytest.mark.parametrize("fmt", FORMATS)
def test_long_fields_are_cut_with_a_visible_marker(fmt: str) -> None:
    path = "/" + "a" * 16 * 1024 + "END"
    text = lines(fmt, "request", path=path)
    left_out = len(path) - CUT_HEAD_CHARS - CUT_TAIL_CHARS
    assert f"…[{left_out} more characters]…" in text
    assert len(text) < MAX_FIELD_CHARS + 200 and "aEND" in text  # the end is kept too
    short = "/" + "b" * (MAX_FIELD_CHARS - 1)
    assert "more characters" not in lines(fmt, "request", path=short)


def test_pretty_lines_start_with_a_local_rfc3339_time() -> None:
    text = lines("pretty", "medama is running", url="http://localhost:8080/")
    stamp, rest = text.split(" ", 1)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d", stamp), stamp
    assert rest == "INFO  medama is running url=http://localhost:8080/\n"
    now = 1_767_225_600.25  # 2026-01-01T00:00:00.250Z
    offset = time.localtime(now).tm_gmtoff
    expected_clock = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(now))
    sign = "-" if offset < 0 else "+"
    assert local_time(now) == f"{expected_clock}.250{sign}{abs(offset) // 3600:02d}:{abs(offset) % 3600 // 60:02d}"


def test_json_keeps_its_shape() -> None:
    record = json.loads(lines("json", "request", method="GET", status=200, dropped={"bot": 2}))
    assert record["level"] == "info" and record["message"] == "request" and isinstance(record["time"], int)
    assert (record["method"], record["status"], record["dropped"]) == ("GET", 200, {"bot": 2})
