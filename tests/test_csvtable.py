"""CSV tables: RFC 4180 as Python's csv module reads it, and no cell a spreadsheet app would run as a formula."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medama_core import csvtable


def parse(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def test_a_small_table_by_hand() -> None:
    rows = [
        {"path": "/", "visitors": 3, "visitors_percentage": 0.75, "bounce": None},
        {"path": '/a,"b"', "visitors": 1, "visitors_percentage": 0.25, "new": True},
    ]
    assert csvtable.render(rows) == (
        'path,visitors,visitors_percentage,bounce,new\r\n/,3,0.75,,\r\n"/a,""b""",1,0.25,,true\r\n'
    )


@pytest.mark.parametrize(
    "value, written",
    [
        ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
        ("+1", "'+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("'quoted", "''quoted"),  # the guard's own mark is escaped too, so it can be undone
        ("a=b", "a=b"),  # only the first character matters
        ("", ""),
        ("/path", "/path"),
    ],
)
def test_formula_guard(value: str, written: str) -> None:
    assert csvtable.guard(value) == written
    assert csvtable.unguard(written) == value


@pytest.mark.parametrize("value, text", [(-5, "-5"), (0.1, "0.1"), (True, "true"), (False, "false"), (None, "")])
def test_numbers_and_constants_are_not_guarded(value: object, text: str) -> None:
    assert csvtable.cell(value) == text


def test_empty_table() -> None:
    assert csvtable.render([]) == ""
    assert csvtable.render([], ["a", "b"]) == "a,b\r\n"


JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
)
ROWS = st.lists(st.dictionaries(st.text(min_size=1, max_size=12), JSON_SCALARS, max_size=6), max_size=8)


@given(rows=ROWS)
def test_round_trip_through_pythons_csv_module(rows: list[dict[str, Any]]) -> None:
    """Every row comes back: header and cells line up, text is the original once unguarded, numbers are equal."""
    text = csvtable.render(rows)
    columns = csvtable.header(rows)
    if not columns:
        assert text == ""
        return
    records = parse(text)
    assert [csvtable.unguard(name) for name in records[0]] == columns
    assert len(records) == len(rows) + 1
    for row, record in zip(rows, records[1:], strict=True):
        assert len(record) == len(columns)
        for name, cell in zip(columns, record, strict=True):
            value = row.get(name)
            if isinstance(value, str):
                assert csvtable.unguard(cell) == value
            elif value is None:
                assert cell == ""
            elif isinstance(value, bool):
                assert cell == ("true" if value else "false")
            else:
                assert json.loads(cell) == value


@given(rows=ROWS)
def test_no_cell_reads_as_a_formula(rows: list[dict[str, Any]]) -> None:
    """A text cell starts with a formula character only behind the guard's apostrophe; numbers are numbers."""
    for record in parse(csvtable.render(rows)):
        for cell in record:
            if cell[:1] in ("=", "+", "@", "\t", "\r"):
                raise AssertionError(f"unguarded cell {cell!r}")
            if cell.startswith("-"):
                float(cell)  # a negative number, never text


@given(text=st.text())
def test_guard_is_undone_exactly(text: str) -> None:
    guarded = csvtable.guard(text)
    assert csvtable.unguard(guarded) == text
    assert not guarded.startswith(("=", "+", "-", "@", "\t", "\r"))
