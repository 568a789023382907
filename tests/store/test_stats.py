"""Stats formulas on hand-made rows, each checked three ways: raw pieces, rollups, and the filtered path."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from medama_core.store.aggregate import Run, fraction, quantile_cont, round4
from medama_core.store.filters import Filter
from medama_core.store.sqlite import analytics, marking, rollups, stats
from medama_core.store.sqlite.db import migrate

T0 = 1_717_200_000_000  # 2024-06-01T00:00:00Z
HOUR = 3_600_000
DAY = 24 * HOUR
SITE = "example.com"
FAR_FUTURE = 4_102_444_800_000  # 2100-01-01: every test hour counts as closed for refresh
COLUMNS = (
    "bid hostname pathname is_unique_user is_unique_page referrer_host referrer_group country language_base "
    "language_dialect ua_browser ua_os ua_device_type utm_source utm_medium utm_campaign duration_ms date_created"
).split()
NEUTRAL = Filter("browser", "neq", "no such browser")  # forces the raw path without changing any row


def new_db() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    migrate(conn, analytics.MIGRATIONS)
    return conn


_counter = iter(range(10**9))


def view(**fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "bid": f"b{next(_counter)}",
        "hostname": SITE,
        "pathname": "/",
        "is_unique_user": 1,
        "is_unique_page": 1,
        "referrer_host": "",
        "referrer_group": "",
        "country": "Unknown",
        "language_base": "English",
        "language_dialect": "British English",
        "ua_browser": "Chrome",
        "ua_os": "Linux",
        "ua_device_type": "Desktop",
        "utm_source": "",
        "utm_medium": "",
        "utm_campaign": "",
        "duration_ms": None,
        "date_created": T0 + 30 * 60_000,
    }
    row.update(fields)
    return row


def insert(conn: sqlite3.Connection, rows: list[dict[str, Any]]) -> None:
    """Insert views; `referrer_path` (the internal referrer's, analytics migration 13) is '' unless given."""
    names = [*COLUMNS, "referrer_path"] if any("referrer_path" in row for row in rows) else COLUMNS
    sql = f"INSERT INTO views ({', '.join(names)}) VALUES ({', '.join(':' + c for c in names)})"
    since = marking.starts(conn)
    conn.executemany(sql, ({"referrer_path": "", **row} for row in rows))
    marking.mark_since(conn, since, events=False)  # the writer's part (store/sqlite/marking.py)


def event(bid: str, name: str, value: str, at: int = T0 + 40 * 60_000) -> tuple[str, str, str, str, str, int]:
    return (bid, "batch", SITE, name, value, at)


def insert_events(conn: sqlite3.Connection, rows: list[tuple[str, str, str, str, str, int]]) -> None:
    since = marking.starts(conn)
    conn.executemany(
        "INSERT INTO events (bid, batch_id, group_name, name, value, date_created) VALUES (?,?,?,?,?,?)", rows
    )
    marking.mark_since(conn, since, views=False)


def query(start: int | None = None, end: int | None = None, *filters: Filter) -> stats.Query:
    return stats.Query(SITE, None if start is None else start * 1000, None if end is None else end * 1000, filters)


def three_ways(conn: sqlite3.Connection, fn: Callable[[stats.Query], Any], q: stats.Query) -> Any:
    """The answer from raw pieces (all hours dirty), from rebuilt rollups, and from the raw path: all equal."""
    before = fn(q)
    rollups.refresh(conn, FAR_FUTURE)
    after = fn(q)
    filtered = fn(stats.Query(q.hostname, q.start_us, q.end_us, (*q.filters, NEUTRAL)))
    assert before == after == filtered
    return after


@pytest.fixture
def conn() -> Iterator[sqlite3.Connection]:
    c = new_db()
    yield c
    c.close()


def site(conn: sqlite3.Connection, q: stats.Query | None = None) -> dict[str, Any]:
    return three_ways(conn, lambda x: stats.site_metrics(conn, x), q or query())


# ---- arithmetic -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([5], 0.5, 5.0),
        ([1, 2], 0.5, 1.5),
        ([1, 2, 4, 10], 0.25, 1.75),
        ([1, 2, 4, 10], 0.75, 5.5),
        ([3, 1, 2], 0.5, 2.0),
        ([], 0.5, None),
    ],
)
def test_quantile_cont_interpolates_like_duckdb(values: list[int], q: float, expected: float | None) -> None:
    assert quantile_cont([Run.of(sorted(values))], q) == expected


def test_round4_is_half_away_from_zero_on_the_exact_double() -> None:
    assert round4(1 / 32) == 0.0313  # 0.03125 is exact: the tie goes up
    assert round4(3 / 160) == 0.0187  # 0.01875 is stored just below the tie
    assert fraction(1, 0) == 0
    assert fraction(2, 3) == 0.6667


@pytest.mark.parametrize(
    ("durations", "expected"),
    [
        ([10, 20], 15),
        ([1, 2], 2),  # 1.5 rounds half to even: 2
        ([2, 3], 2),  # 2.5 rounds half to even: 2
        ([10, 20, 40], 20),
        ([0, 1], 0),  # 0.5 -> 0
        ([None, None], 0),
        ([7, None], 7),  # views without a duration are left out
    ],
)
def test_summary_duration_is_the_rounded_median(
    conn: sqlite3.Connection, durations: list[int | None], expected: int
) -> None:
    insert(conn, [view(duration_ms=d) for d in durations])
    assert site(conn)["duration"] == expected


@pytest.mark.parametrize(
    ("durations", "expected"),
    [
        ([99, 99, 99, 99, 99, 99], 0.0),  # under 100 ms is not a bounce but counts in the denominator
        ([100, 5000, 6000, 6000, 6000, 6000], round4(2 / 6)),  # both bounds inclusive
        ([5001, 99, 100, 100, 100, 100], round4(4 / 6)),
        ([100, 100, 100, 100, 100], 0),  # only 5 timed landing views: 0
        ([100, 100, 100, 100, 100, None, None], 0),  # views without duration do not qualify
    ],
)
def test_bounce_rule(conn: sqlite3.Connection, durations: list[int | None], expected: float) -> None:
    insert(conn, [view(duration_ms=d) for d in durations])
    insert(conn, [view(duration_ms=100, is_unique_user=0) for _ in range(10)])  # repeat views never count
    assert site(conn)["bounce_percentage"] == expected


def test_visitors_pageviews_and_empty_site(conn: sqlite3.Connection) -> None:
    assert site(conn) == {"visitors": 0, "pageviews": 0, "bounce_percentage": 0, "duration": 0}
    insert(conn, [view(), view(is_unique_user=0), view(date_created=T0 + 3 * DAY)])
    assert site(conn) == {"visitors": 2, "pageviews": 3, "bounce_percentage": 0, "duration": 0}


def test_period_bounds_are_inclusive(conn: sqlite3.Connection) -> None:
    insert(conn, [view(date_created=T0), view(date_created=T0 + HOUR), view(date_created=T0 + HOUR + 1)])
    assert site(conn, query(T0, T0 + HOUR))["pageviews"] == 2
    assert site(conn, query(T0 + 1, T0 + HOUR + 1))["pageviews"] == 2
    assert site(conn, query(T0 + 2 * HOUR, T0 + 3 * HOUR))["pageviews"] == 0


# ---- lists ------------------------------------------------------------------------------------------


def listing(conn: sqlite3.Connection, endpoint: str, summary: bool = True, **kw: Any) -> list[dict[str, Any]]:
    page = stats.Page(kw.pop("limit", None), kw.pop("offset", 0))
    q = kw.pop("q", query())
    return three_ways(conn, lambda x: stats.list_stats(conn, x, endpoint, summary, page, **kw), q)  # type: ignore[no-any-return]


def test_referrers_keep_the_empty_group_and_zero_visitor_groups(conn: sqlite3.Connection) -> None:
    insert(
        conn,
        [
            view(),
            view(referrer_host="www.google.com", referrer_group="Google"),
            view(referrer_host="t.co", is_unique_user=0),
        ],
    )
    assert listing(conn, "referrers") == [
        {"referrer": "", "visitors": 1, "visitors_percentage": 0.5},
        {"referrer": "Google", "visitors": 1, "visitors_percentage": 0.5},
        {"referrer": "t.co", "visitors": 0, "visitors_percentage": 0},
    ]
    hosts = listing(conn, "referrers", variant=True)
    assert [row["referrer"] for row in hosts] == ["", "www.google.com", "t.co"]


def test_pages_drop_zero_visitor_paths_and_sort_with_tie_breakers(conn: sqlite3.Connection) -> None:
    insert(
        conn,
        [
            view(pathname="/b"),
            view(pathname="/a"),
            view(pathname="/a", is_unique_page=0),
            view(pathname="/c"),
            view(pathname="/c", is_unique_page=0),
            view(pathname="/z", is_unique_page=0),
        ],
    )
    summary = listing(conn, "pages")
    assert [row["path"] for row in summary] == ["/a", "/b", "/c"]  # ties: path ascending
    full = listing(conn, "pages", summary=False)
    assert [row["path"] for row in full] == ["/a", "/c", "/b"]  # ties: pageviews, then path
    assert full[0] == {
        "path": "/a",
        "visitors": 1,
        "visitors_percentage": round4(1 / 3),
        "pageviews": 2,
        "pageviews_percentage": round4(2 / 6),  # the total counts the dropped /z too
        "bounce_percentage": 0,
        "duration": 0,
    }


def test_languages_locale_and_full_rows(conn: sqlite3.Connection) -> None:
    insert(conn, [view(language_dialect="American English", duration_ms=1000 * i) for i in range(1, 8)])
    insert(conn, [view(language_base="French", language_dialect="French", duration_ms=50)])
    assert listing(conn, "languages", summary=False) == [
        {
            "language": "English",
            "visitors": 7,
            "visitors_percentage": 0.875,
            "bounce_percentage": round4(5 / 7),
            "duration": 4000,
        },
        {"language": "French", "visitors": 1, "visitors_percentage": 0.125, "bounce_percentage": 0, "duration": 50},
    ]
    assert [r["language"] for r in listing(conn, "languages", variant=True)] == ["American English", "French"]


@pytest.mark.parametrize(("limit", "offset", "expected"), [(None, 0, 4), (2, 0, 2), (2, 3, 1), (5000, 5000, 0)])
def test_limit_and_offset(conn: sqlite3.Connection, limit: int | None, offset: int, expected: int) -> None:
    insert(conn, [view(ua_browser=name) for name in ("A", "B", "C", "D")])
    assert len(listing(conn, "browsers", limit=limit, offset=offset)) == expected


def test_time_having_and_orders(conn: sqlite3.Connection) -> None:
    rows = [view(pathname="/long", duration_ms=d) for d in (1000, 2000, 3000)]
    rows += [view(pathname="/short", duration_ms=d) for d in (100, 200, 300, 400)]
    rows += [view(pathname="/two", duration_ms=d) for d in (5000, 5000)]  # 2 visitors: dropped
    rows += [view(pathname="/zero", duration_ms=d) for d in (0, 0, 1)]  # median 0: dropped
    rows += [view(pathname="/lowq", duration_ms=d) for d in (0, 0, 0, 9, 9, 9, 9)]  # median 9, p25 0
    insert(conn, rows)

    def time(summary: bool) -> list[dict[str, Any]]:
        return three_ways(conn, lambda x: stats.time_stats(conn, x, summary, stats.Page()), query())  # type: ignore[no-any-return]

    summary = time(True)
    total = 6000 + 1000 + 36
    assert summary == [
        {"path": "/long", "duration": 2000, "duration_percentage": round4(6000 / total)},
        {"path": "/short", "duration": 250, "duration_percentage": round4(1000 / total)},
        {"path": "/lowq", "duration": 9, "duration_percentage": round4(36 / total)},
    ]
    full = time(False)
    assert [r["path"] for r in full] == ["/short", "/long"]  # /lowq dropped: lower quartile 0
    assert full[0] == {
        "path": "/short",
        "duration": 250,
        "duration_upper_quartile": 325,
        "duration_lower_quartile": 175,
        "duration_percentage": round4(1000 / 7000),
        "visitors": 4,
    }


# ---- filters ----------------------------------------------------------------------------------------

FILTER_ROWS = [
    {"pathname": "/a_b", "country": "United Kingdom", "referrer_host": "www.google.com", "referrer_group": "Google"},
    {"pathname": "/axb", "country": "Germany", "referrer_host": "t.co", "referrer_group": ""},
    {"pathname": "/100%", "country": "germany", "referrer_host": "", "referrer_group": ""},
    {"pathname": "/Blog/Post", "country": "France", "language_base": "French", "language_dialect": "Canadian French"},
]


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (Filter("path", "eq", "/a_b"), ["/a_b"]),  # `_` is not a wildcard
        (Filter("path", "eq", "/100%"), ["/100%"]),
        (Filter("path", "eq", "/blog/post"), ["/Blog/Post"]),  # case-insensitive
        (Filter("path", "neq", "/a_b"), ["/100%", "/Blog/Post", "/axb"]),
        (Filter("path", "contains", "B"), ["/Blog/Post", "/a_b", "/axb"]),
        (Filter("path", "not_contains", "b"), ["/100%"]),
        (Filter("path", "starts_with", "/a"), ["/a_b", "/axb"]),
        (Filter("path", "not_starts_with", "/a"), ["/100%", "/Blog/Post"]),
        (Filter("path", "ends_with", "%"), ["/100%"]),
        (Filter("path", "not_ends_with", "B"), ["/100%", "/Blog/Post"]),
        (Filter("path", "ends_with", ""), ["/100%", "/Blog/Post", "/a_b", "/axb"]),
        (Filter("country", "eq", "GERMANY"), ["/100%", "/axb"]),
        (Filter("country", "in", "france,united kingdom"), ["/Blog/Post", "/a_b"]),
        (Filter("country", "not_in", "france,united kingdom"), ["/100%", "/axb"]),
        (Filter("referrer", "eq", "google"), ["/a_b"]),  # the group
        (Filter("referrer", "eq", "t.co"), ["/axb"]),  # the host
        (Filter("referrer", "eq", ""), ["/100%", "/Blog/Post"]),  # direct: host only
        (Filter("referrer", "neq", "google"), ["/100%", "/Blog/Post", "/axb"]),
        (Filter("language", "eq", "canadian french"), ["/Blog/Post"]),
        (Filter("language", "eq", "english"), ["/100%", "/a_b", "/axb"]),
    ],
)
def test_filter_operators(conn: sqlite3.Connection, flt: Filter, expected: list[str]) -> None:
    insert(conn, [view(**fields) for fields in FILTER_ROWS])
    rows = stats.list_stats(conn, query(None, None, flt), "pages", True, stats.Page())
    assert sorted(row["path"] for row in rows) == expected


def test_prop_filters_count_each_view_once(conn: sqlite3.Connection) -> None:
    insert(conn, [view(bid="x", pathname="/p"), view(bid="y", pathname="/q")])
    insert_events(conn, [event("x", "plan", "pro"), event("x", "plan", "pro"), event("y", "plan", "free")])
    rows = stats.list_stats(conn, query(None, None, Filter("prop_value", "eq", "pro")), "pages", True, stats.Page())
    assert rows == [{"path": "/p", "visitors": 1, "visitors_percentage": 1.0}]


def test_properties_by_name_and_by_value(conn: sqlite3.Connection) -> None:
    insert(conn, [view(bid="x"), view(bid="y"), view(bid="z", hostname="other.com")])
    insert_events(
        conn,
        [event("x", "plan", "pro"), event("y", "plan", "free"), event("y", "theme", "dark"), event("z", "plan", "x")],
    )

    def props(*filters: Filter) -> list[dict[str, Any]]:
        return three_ways(conn, lambda q: stats.properties(conn, q, stats.Page()), query(None, None, *filters))  # type: ignore[no-any-return]

    assert props() == [
        {"name": "plan", "events": 2, "events_percentage": round4(2 / 3)},
        {"name": "theme", "events": 1, "events_percentage": round4(1 / 3)},
    ]
    assert props(Filter("prop_name", "eq", "PLAN")) == [
        {"value": "free", "events": 1, "events_percentage": 0.5},
        {"value": "pro", "events": 1, "events_percentage": 0.5},
    ]
    assert props(Filter("prop_name", "eq", "")) == props()
    after = stats.properties(conn, query(T0 + DAY, None), stats.Page())
    assert after == []  # the period applies to the events' time


# ---- previous and interval --------------------------------------------------------------------------


def test_previous_window_shares_the_start_instant() -> None:
    assert stats.previous_period(10_000, 15_000) == (5_000, 10_000)


def test_interval_buckets_align_on_start_and_fill_gaps(conn: sqlite3.Connection) -> None:
    start = T0 - 2 * HOUR  # local midnight at UTC+02:00
    insert(conn, [view(date_created=start), view(date_created=start + DAY + 5, duration_ms=10)])
    q = query(start, start + 3 * DAY - 1)

    def buckets(interval: str) -> list[dict[str, Any]]:
        assert q.start_us is not None and q.end_us is not None
        return three_ways(conn, lambda x: stats.interval_metrics(conn, x, interval, q.start_us, q.end_us), q)  # type: ignore[no-any-return]

    days = buckets("day")
    assert [b["date"] for b in days] == ["2024-05-31 22:00:00+00", "2024-06-01 22:00:00+00", "2024-06-02 22:00:00+00"]
    assert [b["pageviews"] for b in days] == [1, 1, 0]
    assert days[1]["duration"] == 10
    assert len(buckets("hour")) == 72
    months = buckets("month")
    assert [(b["date"], b["visitors"]) for b in months] == [
        ("2024-05-01 00:00:00+00", 1),
        ("2024-06-01 00:00:00+00", 1),
    ]


def test_interval_minute_and_fractional_start(conn: sqlite3.Connection) -> None:
    insert(conn, [view(date_created=T0 + 90_000)])
    start_us = T0 * 1000 + 500_000  # 00:00:00.5
    q = stats.Query(SITE, start_us, start_us + 3 * 60 * 10**6)
    result = stats.interval_metrics(conn, q, "minute", start_us, start_us + 3 * 60 * 10**6)
    assert [b["date"] for b in result][:2] == ["2024-06-01 00:00:00.5+00", "2024-06-01 00:01:00.5+00"]
    assert [b["pageviews"] for b in result] == [0, 1, 0, 0]


def test_bucket_count() -> None:
    assert stats.bucket_count("day", 0, 86400 * 10**6) == 2
    assert stats.bucket_count("month", T0 * 1000, (T0 + 40 * DAY) * 1000) == 2
    assert stats.bucket_count("hour", 10, 5) == 0


def test_rollup_stays_exact_after_late_updates(conn: sqlite3.Connection) -> None:
    insert(conn, [view(bid="late", duration_ms=None), view(duration_ms=300)])
    assert site(conn)["duration"] == 300
    conn.execute("UPDATE views SET duration_ms = 100 WHERE bid = 'late'")  # an unload after the rebuild
    assert stats.site_metrics(conn, query())["duration"] == 200
    conn.execute("DELETE FROM views WHERE bid = 'late'")
    assert site(conn)["duration"] == 300


def test_upgrade_from_the_first_rollup_layout_rebuilds_every_hour() -> None:
    """Rows stored under migration 3 are read raw after the upgrade, then from rebuilt rollups."""
    old = sqlite3.connect(":memory:", isolation_level=None)
    migrate(old, analytics.MIGRATIONS[:3])
    insert(old, [view(date_created=T0 + i * HOUR, duration_ms=10 * i, pathname=f"/{i % 4}") for i in range(80)])
    assert migrate(old, analytics.MIGRATIONS) == analytics.MIGRATIONS[-1].version
    assert old.execute("SELECT COUNT(*) FROM rollup_dirty").fetchone()[0] == 80
    q = query(T0 + 5 * HOUR + 1, T0 + 70 * HOUR)
    raw = stats.list_stats(old, q, "pages", False, stats.Page())
    rollups.refresh(old, FAR_FUTURE)
    assert old.execute("SELECT COUNT(*) FROM rollup_dirty").fetchone()[0] == 0
    assert stats.list_stats(old, q, "pages", False, stats.Page()) == raw
    assert stats.site_metrics(old, q)["duration"] == 380  # the views of hours 6..70
