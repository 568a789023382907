"""RFC 3339 `start`/`end`: the parser's table, how microseconds meet millisecond rows, and the HTTP answers."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from medama_core.api.stats import parse_time
from medama_core.http.errors import HTTPError
from medama_core.store.sqlite import stats
from tests.helpers import Client, LiveServer
from tests.store.test_stats import COLUMNS, SITE, T0, insert, new_db, view
from tests.stores import marked

T0_US = T0 * 1000  # 2024-06-01T00:00:00Z in microseconds
HOUR_US = 3_600_000_000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-06-01T00:00:00Z", T0_US),
        ("2024-06-01T00:00:00z", T0_US),  # RFC 3339 allows lower-case t and z
        ("2024-06-01t00:00:00Z", T0_US),
        ("2024-06-01 00:00:00Z", T0_US),  # a space for T (RFC 3339 §5.6 note)
        ("2024-06-01T00:00:00+00:00", T0_US),
        ("2024-06-01T00:00:00-00:00", T0_US),  # "offset unknown": still UTC
        ("2024-06-01T02:00:00+02:00", T0_US),
        ("2024-05-31T22:00:00-02:00", T0_US),
        ("2024-06-01T05:30:00+05:30", T0_US),
        ("2024-06-01T00:00:00.5Z", T0_US + 500_000),
        ("2024-06-01T00:00:00.000001Z", T0_US + 1),
        ("2024-06-01T00:00:00.1234567Z", T0_US + 123_456),  # digits past the microsecond are dropped
        ("2024-06-01T00:00:00.999999999Z", T0_US + 999_999),
        ("2024-06-01T23:59:59.999+00:00", T0_US + 24 * HOUR_US - 1000),
        ("2024-02-29T00:00:00Z", 1_709_164_800_000_000),  # a leap day
        ("1970-01-01T00:00:00Z", 0),
        ("1969-12-31T23:59:59.5Z", -500_000),
        ("0001-01-01T00:00:00Z", -62_135_596_800_000_000),
        ("9999-12-31T23:59:59.999999Z", 253_402_300_799_999_999),
    ],
)
def test_valid_times(text: str, expected: int) -> None:
    assert parse_time("start", text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2024-06-01",  # a date alone
        "2024-06-01T00:00:00",  # no offset
        "2024-06-01T00:00Z",  # no seconds
        "2024-06-01T00:00:00 02:00",  # `+` sent unencoded arrives as a space
        "2024-06-01T00:00:00+0200",  # offset without the colon
        "2024-06-01T00:00:00+02",
        "2024-06-01T00:00:00.Z",  # a dot with no digits
        "2024-06-01T00:00:00,5Z",  # comma fraction (ISO 8601, not RFC 3339)
        "2024-6-1T00:00:00Z",
        "24-06-01T00:00:00Z",
        "2024-13-01T00:00:00Z",
        "2024-02-30T00:00:00Z",
        "2023-02-29T00:00:00Z",  # not a leap year
        "2024-06-01T24:00:00Z",
        "2024-06-01T23:60:00Z",
        "2024-06-01T23:59:60Z",  # leap seconds are refused, as upstream's Go parser does
        "2024-06-01T00:00:00+24:00",
        "2024-06-01T00:00:00+02:60",
        "0000-01-01T00:00:00Z",
        " 2024-06-01T00:00:00Z",
        "2024-06-01T00:00:00Z ",
        "２０２４-06-01T00:00:00Z",  # non-ASCII digits
        "yesterday",
    ],
)
def test_invalid_times_are_400(text: str) -> None:
    with pytest.raises(HTTPError) as caught:
        parse_time("end", text)
    assert caught.value.status == 400
    assert "end" in str(caught.value.message)


@pytest.mark.parametrize(
    ("start_us", "end_us", "start_ms", "end_ms"),
    [
        (T0_US, T0_US, T0, T0),
        (T0_US + 1, T0_US + 999, T0 + 1, T0),  # inside one millisecond: no whole millisecond is in range
        (T0_US - 1, T0_US + 1, T0, T0),
        (T0_US + 1000, T0_US + 1999, T0 + 1, T0 + 1),
        (-500_000, -1, -500, -1),  # before 1970: start rounds up, end rounds down
        (-1_500, -500, -1, -1),
    ],
)
def test_query_bounds_in_whole_milliseconds(start_us: int, end_us: int, start_ms: int, end_ms: int) -> None:
    q = stats.Query(SITE, start_us, end_us)
    assert (q.start, q.end) == (start_ms, end_ms)


@pytest.mark.parametrize(
    ("start_us", "end_us", "pageviews"),
    [
        (T0_US, T0_US, 1),  # both bounds inclusive
        (T0_US + 1, T0_US + 1000, 1),  # the row at T0 is before start; T0 + 1 ms is at end
        (T0_US + 1, T0_US + 999, 0),
        (T0_US - 1000, T0_US - 1, 0),
        (T0_US - 1, T0_US + 1_000, 2),
        (T0_US, None, 3),
        (None, T0_US, 1),
    ],
)
def test_rows_inside_microsecond_bounds(start_us: int | None, end_us: int | None, pageviews: int) -> None:
    conn = new_db()
    insert(conn, [view(date_created=T0), view(date_created=T0 + 1), view(date_created=T0 + 3_600_000 + 7)])
    assert stats.site_metrics(conn, stats.Query(SITE, start_us, end_us))["pageviews"] == pageviews
    conn.close()


@pytest.fixture
def minutes_client(server: LiveServer) -> Iterator[Client]:
    """A logged-in client and 20 views of example.com, one a minute from T0."""
    client = server.client()
    client.login()
    assert client.post("/api/websites", json_body={"hostname": SITE}).status == 201
    conn = sqlite3.connect(server.config.analyticsdb, isolation_level=None)
    sql = f"INSERT INTO views ({', '.join(COLUMNS)}) VALUES ({', '.join(':' + c for c in COLUMNS)})"
    with marked(conn):
        conn.executemany(sql, [view(date_created=T0 + i * 60_000) for i in range(20)])
    conn.close()
    yield client
    client.close()


@pytest.mark.parametrize(
    ("start", "end", "status", "pageviews"),
    [
        ("2024-06-01T00:00:00Z", "2024-06-01T00:59:59.999Z", 200, 20),
        ("2024-06-01T02:00:00+02:00", "2024-06-01T00:00:00.999999Z", 200, 1),
        ("2024-06-01T00:19:00.000001Z", "2024-06-01T05:00:00+05:00", 200, 0),  # end before start
        ("2024-05-31T19:00:00-05:00", "2024-06-01t00:10:00z", 200, 11),
        ("2024-06-01T00:00:00", "2024-06-01T01:00:00Z", 400, None),
        ("2024-06-01T00:00:00Z", "2024-06-31T00:00:00Z", 400, None),
    ],
)
def test_summary_over_http(minutes_client: Client, start: str, end: str, status: int, pageviews: int | None) -> None:
    result = minutes_client.get(f"/api/website/example.com/summary?start={quote(start)}&end={quote(end)}")
    assert result.status == status, result.body
    if pageviews is not None:
        assert result.json()["current"]["pageviews"] == pageviews
    else:
        assert result.json()["error"]["code"] == 400


def test_unencoded_plus_is_a_400_naming_the_parameter(minutes_client: Client) -> None:
    result = minutes_client.get("/api/website/example.com/pages?start=2024-06-01T00:00:00+02:00")
    assert result.status == 400
    assert "start" in result.json()["error"]["message"]
