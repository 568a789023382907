"""JSON or CSV: the `format` parameter, else the Accept header's preferences (RFC 9110 §12.5.1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medama_core.http.errors import HTTPError
from medama_core.http.negotiate import CSV, JSON, accepted_quality, choose_format


@pytest.mark.parametrize(
    "accept, expected",
    [
        (None, JSON),
        ("", JSON),
        ("*/*", JSON),  # a browser's fetch(): both acceptable, JSON is the API's own
        ("application/json", JSON),
        ("text/csv", CSV),
        ("TEXT/CSV", CSV),  # media types are case-insensitive
        ("text/csv; charset=utf-8", CSV),
        ("text/*", CSV),  # text wanted, and JSON is not text
        ("application/json, text/csv", JSON),  # a tie keeps JSON
        ("text/csv, application/json;q=0.9", CSV),
        ("text/csv;q=0.5, application/json;q=0.6", JSON),
        ("text/csv;q=0.5, */*;q=0.1", CSV),
        ("text/csv;q=0", JSON),  # refused outright
        ("text/csv;q=abc", JSON),  # an unreadable q counts as 0
        ("text/csv;q=1.5", JSON),  # out of range: as unreadable
        ("text/csv;q=nan", JSON),
        ("image/png", JSON),  # nothing we make: the default rather than a 406
        ("text/*;q=0.2, text/csv;q=0.9, application/json;q=0.5", CSV),  # the most specific range decides
        ("text/csv;q=0.9, text/*;q=0", CSV),
        ("application/*, text/csv", JSON),
    ],
)
def test_accept_header(accept: str | None, expected: str) -> None:
    assert choose_format(None, accept) == expected


@pytest.mark.parametrize("param, accept, expected", [("csv", "application/json", CSV), ("json", "text/csv", JSON)])
def test_the_format_parameter_wins(param: str, accept: str, expected: str) -> None:
    assert choose_format(param, accept) == expected


@pytest.mark.parametrize("param", ["", "CSV", "xml", "csv ", "jsonl"])
def test_an_unknown_format_is_a_400(param: str) -> None:
    with pytest.raises(HTTPError) as caught:
        choose_format(param, "text/csv")
    assert (caught.value.status, caught.value.message) == (400, "format: must be json or csv")


def test_quality_of_the_most_specific_range() -> None:
    assert accepted_quality("*/*;q=0.1, text/*;q=0.4, text/csv;q=0.8", "text/csv") == 0.8
    assert accepted_quality("*/*;q=0.1, text/*;q=0.4", "text/csv") == 0.4
    assert accepted_quality("*/*;q=0.1", "text/csv") == 0.1
    assert accepted_quality("application/json", "text/csv") == 0.0


ACCEPT_TEXT = st.one_of(
    st.text(max_size=200),
    st.lists(
        st.tuples(
            st.sampled_from(["text/csv", "application/json", "text/*", "*/*", "image/png", "TEXT/CSV", "", ";"]),
            st.one_of(st.none(), st.text(max_size=8), st.floats(allow_nan=True).map(str)),
        ),
        max_size=8,
    ).map(lambda items: ", ".join(kind + ("" if q is None else f";q={q}") for kind, q in items)),
)


@given(format_param=st.one_of(st.none(), st.text(max_size=10)), accept=st.one_of(st.none(), ACCEPT_TEXT))
def test_any_request_gets_json_csv_or_a_400(format_param: str | None, accept: str | None) -> None:
    """The invariant of the parser: whatever the client sends, a format we make or a clear 400, nothing else."""
    try:
        chosen = choose_format(format_param, accept)
    except HTTPError as exc:
        assert exc.status == 400 and format_param not in ("json", "csv")
        return
    assert chosen in (JSON, CSV)
    if format_param is not None:
        assert chosen == format_param
    elif chosen == CSV:  # CSV only when the header wants it, and more than JSON
        assert accept is not None and accepted_quality(accept, "text/csv") > accepted_quality(
            accept, "application/json"
        )
