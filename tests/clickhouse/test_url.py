"""The backend URL parser: table cases, and any string gives a URL or a URLError naming the problem."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medama_core.store.clickhouse.url import ClickHouseURL, URLError, parse_url

GOOD = [
    ("clickhouse://localhost/medama", ClickHouseURL(False, "localhost", 8123, "medama")),
    ("clickhouses://db.example.com/analytics", ClickHouseURL(True, "db.example.com", 8443, "analytics")),
    ("clickhouse://u:p%40ss@10.0.0.5:9123/m_1", ClickHouseURL(False, "10.0.0.5", 9123, "m_1", "u", "p@ss")),
    ("clickhouse://reader@[::1]:8123/x", ClickHouseURL(False, "::1", 8123, "x", "reader", "")),
    ("CLICKHOUSE://h/d", ClickHouseURL(False, "h", 8123, "d")),
    ("clickhouse://a:b:c@h/d", ClickHouseURL(False, "h", 8123, "d", "a", "b:c")),
]
BAD = [
    ("postgres://h/d", "starts with clickhouse://"),
    ("clickhouse://h", "names no database"),
    ("clickhouse://h/", "database name"),
    ("clickhouse://h/1db", "database name"),
    ("clickhouse://h/d-b", "database name"),
    ("clickhouse://h/d?x=1", "no query"),
    ("clickhouse://h:0/d", "port"),
    ("clickhouse://h:65536/d", "port"),
    ("clickhouse://h:http/d", "port"),
    ("clickhouse://:8123/d", "host"),
    ("clickhouse://h h/d", "host"),
    ("clickhouse://[::1/d", "host"),
    ("clickhouse://@h/d", "user name"),
    ("clickhouse://u:p%0a@h/d", "control characters"),
]


@pytest.mark.parametrize(("text", "expected"), GOOD)
def test_good_urls(text: str, expected: ClickHouseURL) -> None:
    assert parse_url(text) == expected


@pytest.mark.parametrize(("text", "problem"), BAD)
def test_bad_urls_name_their_problem(text: str, problem: str) -> None:
    with pytest.raises(URLError, match=problem):
        parse_url(text)


def test_the_password_stays_out_of_logs() -> None:
    url = parse_url("clickhouse://me:hunter2@h:1/d")
    assert "hunter2" not in url.redacted() and "hunter2" not in repr(url)
    assert url.redacted() == "clickhouse://me@h:1/d"


@given(st.text())
def test_any_string_parses_or_raises_url_error(text: str) -> None:
    try:
        url = parse_url(text)
    except URLError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert 0 < url.port < 65536 and url.database and url.host


@given(
    st.sampled_from(["clickhouse", "clickhouses"]),
    st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z0-9-]{1,10}){0,3}", fullmatch=True),
    st.integers(1, 65535),
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,30}", fullmatch=True),
)
def test_well_formed_urls_round_trip(scheme: str, host: str, port: int, database: str) -> None:
    url = parse_url(f"{scheme}://{host}:{port}/{database}")
    assert (url.secure, url.host, url.port, url.database) == (scheme == "clickhouses", host, port, database)
