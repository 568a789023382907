"""Writes on ClickHouse: duplicate views, last unload wins, events follow their view; rename, delete, bulk."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from medama_core.store.clickhouse import bulk, hits, schema, site_data, stats
from medama_core.store.clickhouse.client import Client, QueryFailed, Transport
from medama_core.store.filters import Filter
from medama_core.store.query import Page, Query
from medama_core.store.rows import VIEW_COLUMNS
from tests.store.test_stats import DAY, HOUR, T0, view

SITE = "a.example"


def row(**fields: Any) -> tuple[Any, ...]:
    values = view(hostname=SITE, **fields)
    return tuple(values[column] for column in VIEW_COLUMNS)


def event(bid: str, name: str, value: str, at: int = T0) -> tuple[str, str, str, str, str, int]:
    return (bid, "batch", SITE, name, value, at)


def durations(client: Client) -> dict[str, int | None]:
    return {r[0]: r[16] for r in bulk.export_rows(client, "views", SITE)}


def test_a_repeated_view_is_ignored_and_the_last_unload_wins(ch: Client) -> None:
    first, second = row(bid="v1", pathname="/a"), row(bid="v2")
    again = row(bid="v1", pathname="/changed")
    assert hits.apply_batch(ch, [hits.NewView(first), hits.NewView(again), hits.Duration("v1", 10)]) == [None] * 3
    assert hits.apply_batch(ch, [hits.NewView(again), hits.NewView(second), hits.Duration("v1", 30)]) == [None] * 3
    assert hits.apply_batch(ch, [hits.Duration("v1", 20), hits.Duration("nobody", 5)]) == [None] * 2
    exported = list(bulk.export_rows(ch, "views", SITE))
    assert [(r[0], r[2], r[16]) for r in exported] == [("v1", "/a", 20), ("v2", "/", None)]
    assert stats.site_metrics(ch, Query(SITE)) == {
        "visitors": 2,
        "pageviews": 2,
        "bounce_percentage": 0,
        "duration": 20,
    }


# (referrer_host, referrer_group) of the copies' test: "google" is a host of no group and a group's name.
COPY_REFERRERS = (("", ""), ("www.google.com", "Google"), ("google", ""), ("t.co", ""))


def test_the_sorted_copies_answer_filters_as_views_does_and_migrations_fill_them(ch: Client) -> None:
    rows = [
        row(
            bid=f"v{i}",
            pathname=f"/P{i % 3}",
            country=f"C{i % 2}",
            ua_browser=("Firefox", "chrome", "Safari")[i % 3],
            referrer_host=COPY_REFERRERS[i % 4][0],
            referrer_group=COPY_REFERRERS[i % 4][1],
            date_created=T0 + i * 1000,
            duration_ms=None,
        )
        for i in range(30)
    ]
    assert hits.apply_batch(ch, [hits.NewView(r) for r in rows]) == [None] * 30
    assert hits.apply_batch(ch, [hits.Duration(f"v{i}", 100 * i) for i in range(0, 30, 4)]) == [None] * 8
    narrow = (Filter("path", "eq", "/p1"), Filter("country", "in", "c0,c9"))
    wide = (Filter("path", "contains", "/p1"), Filter("country", "starts_with", "c0"))  # the same rows from views

    def answers(filters: tuple[Filter, ...]) -> list[object]:
        q = Query(SITE, None, None, filters)
        return [stats.summary(ch, q, False, None), stats.list_stats(ch, q, "pages", False, Page())]

    expected = answers(wide)
    assert expected[0]["current"]["pageviews"] == 5 and expected[0]["current"]["duration"] > 0
    assert answers(narrow) == expected
    assert answers(narrow[1:]) == answers((Filter("country", "starts_with", "c0"),))
    # A browser, with a country or alone (views_by_country, sorted by both), and a referrer's group or host
    # (views_by_referrer: "google" is both), each against the same rows read from views.
    by_copy = {
        (Filter("browser", "eq", "FIREFOX"), Filter("country", "eq", "c1")): (
            Filter("browser", "starts_with", "fire"),
            Filter("country", "ends_with", "1"),
        ),
        (Filter("browser", "in", "firefox,safari"),): (Filter("browser", "not_in", "chrome"),),
        (Filter("referrer", "eq", "google"),): (Filter("referrer", "starts_with", "google"),),
        # Every referrer but direct traffic: t.co, the host google and the group Google.
        (Filter("referrer", "in", "t.co,google"), Filter("path", "neq", "/p0")): (
            Filter("referrer", "neq", ""),
            Filter("path", "neq", "/p0"),
        ),
    }
    for filters, same in by_copy.items():
        found = answers(filters)
        assert found == answers(same) and found[0]["current"]["pageviews"] > 0, filters
    assert stats._table(Query(SITE, None, None, tuple(by_copy)[0])) == "views_by_country"
    assert stats._table(Query(SITE, None, None, tuple(by_copy)[2])) == "views_by_referrer"
    direct = answers((Filter("referrer", "eq", ""),))  # the host alone, never the group
    assert direct[0]["current"]["pageviews"] == 8
    expected_copies = [answers(filters) for filters in (*by_copy, (Filter("referrer", "eq", ""),))]
    # Rows stored before migration 5 are copied by it (and by 11 and 12), and only once when they run again
    # (cut short).
    for table in schema.COPIES:
        ch.command(f"DROP TABLE {table}_rows")
        ch.command(f"DROP TABLE {table}")
    for _ in range(2):
        ch.command("DROP TABLE medama_schema")
        assert schema.migrate(ch, 0) == schema.MIGRATIONS[-1][0]
        assert answers(narrow) == expected
        assert [answers(filters) for filters in (*by_copy, (Filter("referrer", "eq", ""),))] == expected_copies
        for table in schema.COPIES:  # copied once (merges may have collapsed some pairs of views already)
            assert ch.rows(f"SELECT sum(sign), sumIf(sign, duration_ms > 0) FROM {table}") == [[30, 7]], table


def test_a_property_filter_takes_the_views_of_the_period_wherever_their_events_lie(ch: Client) -> None:
    # The filter reads the events by their view's time (prop_views, migration 7), never by their own.
    inside = T0 + HOUR
    ops: list[hits.Op] = [
        hits.NewView(row(bid="after", date_created=inside)),  # its event comes 10 days later
        hits.NewView(row(bid="outside", date_created=T0 - 5 * DAY)),  # its event lies inside the period
        hits.NewView(row(bid="before", date_created=inside)),  # its event is dated 30 days earlier
        hits.NewView(row(bid="free", date_created=inside), [event("free", "plan", "free", inside)]),
        hits.NewView(row(bid="again", date_created=inside)),  # sent again later, dated outside, with the event
    ]
    assert hits.apply_batch(ch, ops) == [None] * 5
    later: list[hits.Op] = [
        hits.NewEvents([event("after", "plan", "pro", T0 + 10 * DAY), event("outside", "plan", "pro", inside)]),
        hits.NewView(row(bid="again", date_created=T0 - 5 * DAY), [event("again", "plan", "pro", T0 - 5 * DAY)]),
    ]
    assert hits.apply_batch(ch, later) == [None] * 2
    assert bulk.insert_events(ch, [event("before", "plan", "pro", T0 - 30 * DAY)]) == 1
    pro = (Filter("prop_value", "eq", "pro"),)
    q = Query(SITE, (T0 - HOUR) * 1000, (T0 + DAY) * 1000, pro)

    def answers() -> list[object]:
        return [
            stats.summary(ch, q, True, "day"),
            stats.list_stats(ch, q, "pages", True, Page()),
            stats.list_stats(ch, Query(SITE, filters=pro), "pages", True, Page()),
        ]

    expected = answers()
    assert expected[0]["current"]["pageviews"] == 3  # after, before, again
    assert expected[0]["previous"]["pageviews"] == 0  # outside is older than the previous period
    assert expected[2] == [{"path": "/", "visitors": 4, "visitors_percentage": 1.0}]  # all time: outside too
    # Events stored before migrations 6 and 7 are given their view's time (6), flags and dimensions (7) by
    # them, once when they run again (cut short); migration 8 then drops `event_views`.
    ch.command("DROP TABLE prop_views")
    for _ in range(2):
        ch.command("DROP TABLE medama_schema")
        assert schema.migrate(ch, 0) == schema.MIGRATIONS[-1][0]
        assert answers() == expected
        assert ch.rows("SELECT count() FROM prop_views") == [[5]]
        assert ch.rows("EXISTS TABLE event_views") == [[0]]


def test_a_filtered_summary_reads_the_period_and_the_previous_one_at_once(ch: Client) -> None:
    # The previous period ends at the instant the period starts: a view at that millisecond counts in both.
    times = {"prev": T0 - 2 * HOUR, "shared": T0, "cur": T0 + HOUR, "late": T0 + 11 * HOUR, "old": T0 - 11 * HOUR}
    ops: list[hits.Op] = [
        hits.NewView(row(bid=bid, date_created=at, pathname=f"/{bid}", ua_browser="Firefox"))
        for bid, at in times.items()
    ]
    ops.append(hits.NewView(row(bid="chrome", date_created=T0, ua_browser="Chrome", pathname="/shared")))
    assert hits.apply_batch(ch, ops) == [None] * len(ops)
    assert hits.apply_batch(ch, [hits.Duration(bid, 1000 * (i + 1)) for i, bid in enumerate(times)]) == [None] * 5
    everything = (Filter("browser", "contains", ""),)  # filtered (raw rows), every row kept
    for start, interval in ((T0, "hour"), (T0, None), (T0 + 2 * HOUR, "day"), (T0 - 20 * HOUR, None)):
        period = (start * 1000, (start + 10 * HOUR) * 1000)
        unfiltered = stats.summary(ch, Query(SITE, *period), True, interval)  # the pre-aggregates' answer
        assert stats.summary(ch, Query(SITE, *period, everything), True, interval) == unfiltered, (start, interval)
    shared = Query(SITE, T0 * 1000, (T0 + 10 * HOUR) * 1000, (Filter("path", "eq", "/shared"),))  # views_by_path
    assert [stats.summary(ch, shared, True, None)[p]["pageviews"] for p in ("current", "previous")] == [2, 2]
    firefox = Query(SITE, (T0 + 12 * HOUR) * 1000, (T0 + 22 * HOUR) * 1000, (Filter("browser", "eq", "firefox"),))
    answer = stats.summary(ch, firefox, True, "hour")
    assert [answer[p]["pageviews"] for p in ("current", "previous")] == [0, 1]  # only the previous period has rows
    assert answer["previous"]["duration"] == 4000  # "late", unloaded
    assert sum(bucket["pageviews"] for bucket in answer["interval"]) == 0


class Recording:
    """The engine's transport, noting the table of every INSERT sent through it."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.inserts: list[str] = []

    def send(
        self, sql: str, params: Mapping[str, str], rows: bytes | None = None, stream: bool = False
    ) -> Iterator[bytes]:
        if rows is not None:
            self.inserts.append(sql.split()[2])
        return self.inner.send(sql, params, rows, stream)

    def close(self) -> None:
        self.inner.close()


def test_a_batch_writes_each_table_once_and_folds_what_it_holds(ch: Client) -> None:
    assert hits.apply_batch(ch, [hits.NewView(row(bid="old", date_created=T0 - HOUR))]) == [None]
    recording = Recording(ch.transport)
    ch.transport = recording
    ops: list[hits.Op] = [
        hits.Duration("new", 900),  # before its view in the batch: applied to it all the same
        hits.NewView(row(bid="new", date_created=T0), [event("new", "plan", "pro", T0 + 5)]),
        hits.NewEvents([event("old", "theme", "dark", T0 + 7), event("new", "size", "xl", T0 + 8)]),
        hits.NewView(row(bid="old", date_created=T0 + 3), [event("old", "again", "yes", T0 + 9)]),  # sent again
        hits.Duration("old", 300),
        hits.Duration("new", 1200),  # the last unload of a beacon id wins
        hits.DropCount(0, SITE, "bot", 2),
    ]
    assert hits.apply_batch(ch, ops) == [None] * len(ops)
    ch.transport = recording.inner
    assert recording.inserts == [
        "views",
        "view_keys",
        "prop_durations",
        "views_by_prop",
        "events",
        "prop_views",
        "drops",
    ]
    assert durations(ch) == {"old": 300, "new": 1200}
    # Each view's row after the batch under each of its new properties and names, once (none stored: no pairs).
    copies = "SELECT bid, named, name, value, sign, version, duration_ms FROM views_by_prop"
    assert ch.rows(f"{copies} ORDER BY bid, named, name") == [
        ["new", 0, "plan", "pro", 1, 0, 1200],
        ["new", 0, "size", "xl", 1, 0, 1200],
        ["new", 1, "plan", "", 1, 0, 1200],
        ["new", 1, "size", "", 1, 0, 1200],
        ["new", 2, "", "2", 1, 0, 1200],  # and under its key set (schema migration 18)
        ["old", 0, "again", "yes", 1, 1, 300],
        ["old", 0, "theme", "dark", 1, 1, 300],
        ["old", 1, "again", "", 1, 1, 300],
        ["old", 1, "theme", "", 1, 1, 300],
        ["old", 2, "", "2", 1, 1, 300],
    ]
    sets = "SELECT bid, key_names, key_values FROM views_by_prop WHERE named = 2 ORDER BY bid"
    assert ch.rows(sets) == [["new", ["plan", "size"], ["pro", "xl"]], ["old", ["again", "theme"], ["yes", "dark"]]]
    assert ch.rows("SELECT sum(sign), count() FROM views WHERE bid = 'new'") == [[1, 1]]  # one row, no pair
    assert stats.site_metrics(ch, Query(SITE))["pageviews"] == 2
    assert ch.rows("SELECT bid, name, site FROM events ORDER BY date_created") == [
        ["new", "plan", SITE],
        ["old", "theme", SITE],
        ["new", "size", SITE],
        ["old", "again", SITE],
    ]
    assert ch.rows("SELECT bid, name, view_created FROM prop_views ORDER BY date_created") == [
        ["new", "plan", T0],
        ["old", "theme", T0 - HOUR],
        ["new", "size", T0],
        ["old", "again", T0 - HOUR],  # the stored view's time, not the one sent again
    ]
    assert hits.drop_counts(ch, 0, 0) == [(0, SITE, "bot", 2)]


class FailingOn(Recording):
    """The engine's transport, refusing every INSERT into one table as the server would refuse it."""

    def __init__(self, inner: Transport, table: str) -> None:
        super().__init__(inner)
        self.table = table

    def send(
        self, sql: str, params: Mapping[str, str], rows: bytes | None = None, stream: bool = False
    ) -> Iterator[bytes]:
        if rows is not None and sql.split()[2] == self.table:
            raise QueryFailed(f"ClickHouse error: refused INSERT into {self.table}", 241)
        return super().send(sql, params, rows, stream)


def test_a_failed_insert_fails_the_ops_with_rows_in_it_or_after_and_keeps_the_rest(ch: Client) -> None:
    assert hits.apply_batch(ch, [hits.NewView(row(bid="old"))]) == [None]
    failing = FailingOn(ch.transport, "events")
    ch.transport = failing
    ops: list[hits.Op] = [
        hits.Duration("old", 700),  # its rows are all in the first INSERT (views)
        hits.NewView(row(bid="new"), [event("new", "plan", "pro")]),
        hits.DropCount(0, SITE, "bot", 1),
    ]
    outcomes = hits.apply_batch(ch, ops)
    ch.transport = failing.inner
    assert failing.inserts == ["views", "view_keys", "views_by_prop"]
    assert outcomes[0] is None
    assert isinstance(outcomes[1], QueryFailed) and isinstance(outcomes[2], QueryFailed)
    assert durations(ch) == {"old": 700, "new": None}  # the view went in before the events failed
    assert hits.drop_counts(ch, 0, 0) == []


def test_a_bad_op_fails_alone(ch: Client) -> None:
    bad = hits.NewView(row(bid="x", pathname="\ud800"))  # a lone surrogate cannot be stored
    short = hits.NewEvents([("b", "batch")])
    outcomes = hits.apply_batch(ch, [hits.NewView(row(bid="ok")), bad, short, hits.DropCount(0, SITE, "bot", 2)])
    assert outcomes[0] is None and outcomes[3] is None
    assert isinstance(outcomes[1], ValueError) and isinstance(outcomes[2], ValueError)
    assert [r[0] for r in bulk.export_rows(ch, "views")] == ["ok"]
    assert hits.drop_counts(ch, 0, 0) == [(0, SITE, "bot", 2)]


def test_events_count_through_their_view_even_when_stored_before_it(ch: Client) -> None:
    hits.store_events(ch, [event("late", "plan", "pro")])  # the view comes later: site '' until read
    ops: list[hits.Op] = [
        hits.NewView(row(bid="v1", ua_browser="Firefox"), [event("v1", "plan", "free")]),
        hits.NewEvents([event("v1", "theme", "dark"), event("nobody", "plan", "gone")]),
        hits.NewView(row(bid="late", ua_browser="Chrome")),
    ]
    assert hits.apply_batch(ch, ops) == [None] * 3
    assert stats.properties(ch, Query(SITE), Page()) == [
        {"name": "plan", "events": 2, "events_percentage": 0.6667},
        {"name": "theme", "events": 1, "events_percentage": 0.3333},
    ]
    firefox = Query(SITE, filters=(Filter("browser", "eq", "firefox"),))
    chrome = Query(SITE, filters=(Filter("browser", "eq", "chrome"),))
    assert [r["events"] for r in stats.properties(ch, firefox, Page())] == [1, 1]
    assert stats.properties(ch, chrome, Page()) == [{"name": "plan", "events": 1, "events_percentage": 1.0}]
    pro = Query(SITE, filters=(Filter("prop_value", "eq", "PRO"),))
    assert stats.site_metrics(ch, pro)["pageviews"] == 1


def test_a_property_filtered_list_counts_each_matching_view_once_from_prop_views(ch: Client) -> None:
    # Read from `prop_views` alone (schema migration 7): a view with two matching events counts once, with its
    # own flags and label; unloads change nothing; an event stored before its view sends the read to `views`.
    ops: list[hits.Op] = [
        hits.NewView(row(bid="twice", pathname="/a", ua_browser="Firefox"), [event("twice", "plan", "pro")]),
        hits.NewView(row(bid="repeat", pathname="/a", is_unique_user=0), [event("repeat", "plan", "pro")]),
        hits.NewView(
            row(bid="other", pathname="/b", is_unique_page=0, ua_browser="Safari"), [event("other", "plan", "pro")]
        ),
        hits.NewView(row(bid="free", pathname="/c"), [event("free", "plan", "free")]),
        hits.NewView(row(bid="none", pathname="/d")),
        hits.NewView(row(bid="old", pathname="/e", date_created=T0 - 2 * DAY), [event("old", "plan", "pro", T0)]),
    ]
    assert hits.apply_batch(ch, ops) == [None] * len(ops)
    later: list[hits.Op] = [hits.NewEvents([event("twice", "PLAN", "Pro", T0 + 5 * DAY)])]
    later += [hits.Duration(bid, 2000) for bid in ("twice", "repeat", "other")] + [hits.Duration("twice", 40)]
    assert hits.apply_batch(ch, later) == [None] * len(later)
    pro = (Filter("prop_name", "eq", "plan"), Filter("prop_value", "eq", "pro"))
    q = Query(SITE, (T0 - HOUR) * 1000, (T0 + DAY) * 1000, pro)
    assert stats._prop_groups(ch, q, "pathname") is not None  # no orphan event: the events-side read
    assert stats.list_stats(ch, q, "pages", True, Page()) == [
        {"path": "/a", "visitors": 2, "visitors_percentage": 1.0}
    ]  # "/b" is no unique page; "/e"'s view lies before the period
    assert stats.list_stats(ch, q, "browsers", True, Page()) == [
        {"browser": "Firefox", "visitors": 1, "visitors_percentage": 0.5},
        {"browser": "Safari", "visitors": 1, "visitors_percentage": 0.5},
        {"browser": "Chrome", "visitors": 0, "visitors_percentage": 0.0},
    ]  # "repeat" is not a unique user
    firefox = Query(SITE, q.start_us, q.end_us, (*pro, Filter("browser", "eq", "firefox")))
    assert stats.list_stats(ch, firefox, "pages", True, Page()) == [
        {"path": "/a", "visitors": 1, "visitors_percentage": 1.0}
    ]
    assert stats.list_stats(ch, Query(SITE, filters=pro), "pages", True, Page()) == [
        {"path": "/a", "visitors": 2, "visitors_percentage": 0.6667},
        {"path": "/e", "visitors": 1, "visitors_percentage": 0.3333},
    ]
    not_pro = Query(SITE, q.start_us, q.end_us, (Filter("prop_value", "neq", "pro"),))
    assert stats.list_stats(ch, not_pro, "pages", True, Page()) == [
        {"path": "/c", "visitors": 1, "visitors_percentage": 1.0}
    ]
    expected = stats.list_stats(ch, q, "pages", True, Page())
    hits.store_events(ch, [event("late", "plan", "pro")])  # before its view: site '' until read
    assert stats._prop_groups(ch, q, "pathname") is None  # only `views` can place it
    assert hits.apply_batch(ch, [hits.NewView(row(bid="late", pathname="/a"))]) == [None]
    assert (
        stats.list_stats(ch, q, "pages", True, Page())
        == [{"path": "/a", "visitors": 3, "visitors_percentage": 1.0}]
        != expected
    )


def test_rename_moves_everything_and_delete_removes_it(ch: Client) -> None:
    hits.apply_batch(ch, [hits.NewView(row(bid="v1"), [event("v1", "plan", "pro")]), hits.DropCount(0, SITE, "bot")])
    hits.apply_batch(ch, [hits.Duration("v1", 400)])
    leftover = view(hostname="b.example", bid="old")
    hits.apply_batch(ch, [hits.NewView(tuple(leftover[c] for c in VIEW_COLUMNS))])
    site_data.rename_site_data(ch, SITE, "b.example")
    assert stats.site_metrics(ch, Query(SITE))["pageviews"] == 0
    assert stats.site_metrics(ch, Query("b.example")) == {
        "visitors": 1,
        "pageviews": 1,
        "bounce_percentage": 0,
        "duration": 400,
    }
    assert [r["events"] for r in stats.properties(ch, Query("b.example"), Page())] == [1]
    pro = (Filter("prop_value", "eq", "pro"),)
    assert [
        stats.site_metrics(ch, Query(host, T0 * 1000, (T0 + HOUR) * 1000, pro))["pageviews"]
        for host in (SITE, "b.example")
    ] == [0, 1]
    assert stats.list_stats(ch, Query("b.example"), "pages", True, Page()) == [
        {"path": "/", "visitors": 1, "visitors_percentage": 1.0}
    ]
    assert stats.list_stats(ch, Query(SITE), "pages", True, Page()) == []
    assert hits.drop_counts(ch, 0, 0) == [(0, "b.example", "bot", 1)]
    assert site_data.unique_visitors_since(ch, ["b.example", SITE], 0) == {"b.example": 1, SITE: 0}
    hits.apply_batch(ch, [hits.Duration("v1", 500)])  # the renamed view still takes unloads
    assert durations(ch) == {}
    site_data.delete_site_data(ch, ["b.example"])
    for table in schema.TABLES:
        assert ch.rows(f"SELECT count() FROM {table}") == [[0]], table


def test_bulk_insert_and_export_round_trip(ch: Client) -> None:
    rows = [row(bid=f"v{i}", date_created=T0 + i * 1000, duration_ms=i if i % 2 else None) for i in range(50)]
    assert bulk.insert_views(ch, rows + rows[:5]) == 50  # views already stored are ignored
    events = [event(f"v{i}", "k", str(i), T0 + i) for i in range(0, 50, 10)]
    assert bulk.insert_events(ch, events) == 5
    assert list(bulk.export_rows(ch, "views")) == rows
    assert list(bulk.export_rows(ch, "views", SITE, T0 + 10_000, T0 + 12_000)) == rows[10:12]
    assert list(bulk.export_rows(ch, "events")) == events
    assert stats.property_counts(ch, Query(SITE)) == {("k", str(i)): 1 for i in range(0, 50, 10)}


def test_compact_lists_from_hourly_counts_equal_the_raw_rows_at_every_edge(ch: Client) -> None:
    """Views on and beside hour edges, periods starting and ending on, before and after them: the hourly
    sums plus raw edges (unfiltered) must equal the raw rows (a filter that keeps every row), for the
    compact lists and /time (whose pages with 3 visitors and durations show)."""
    hour = 3_600_000
    base = T0 - T0 % hour
    offsets = [0, 1, hour - 1, hour, hour + 1, 2 * hour - 1, 2 * hour, 3 * hour + 5]
    views = [
        row(bid=f"e{i}", date_created=base + at, pathname=f"/{i % 2}", is_unique_user=i % 2)
        for i, at in enumerate(offsets)
    ]
    unloads = [hits.Duration(f"e{i}", d) for i, d in enumerate([5, 0, 1, 700, 900, 40, 2]) if i != 3]
    assert hits.apply_batch(ch, [hits.NewView(v) for v in views] + unloads) == [None] * 14
    assert hits.apply_batch(ch, [hits.Duration("e1", 1), hits.Duration("e4", 0)]) == [None] * 2
    neutral = (Filter("browser", "neq", "no such browser"),)
    assert sorted(r["path"] for r in stats.time_stats(ch, Query(SITE), False, Page())) == ["/0", "/1"]
    bounds = [None, *(base + at + d for at in (0, hour, 2 * hour, 3 * hour) for d in (-1, 0, 1))]
    for start in bounds:
        for end in bounds:
            if start is not None and end is not None and end < start:
                continue
            us = (None if start is None else start * 1000, None if end is None else end * 1000)
            for endpoint in ("pages", "browsers"):
                hourly = stats.list_stats(ch, Query(SITE, *us), endpoint, True, Page())
                raw = stats.list_stats(ch, Query(SITE, *us, neutral), endpoint, True, Page())
                assert hourly == raw, (start, end, endpoint)
            for summary in (True, False):
                hourly = stats.time_stats(ch, Query(SITE, *us), summary, Page())
                assert hourly == stats.time_stats(ch, Query(SITE, *us, neutral), summary, Page()), (start, end)


def test_summaries_and_properties_from_hourly_tables_equal_the_raw_rows(ch: Client) -> None:
    """Durations in many buckets (ties, 0 and 1, a bucket's edges), late unloads that move a view to
    another bucket, events before and after their views, periods and interval origins on and off the
    hours (a bucket edge inside an hour is read raw): the summaries and /properties of an unfiltered
    query (hourly tables) must equal the raw rows' (a filter that keeps every row), merged or not."""
    hour = 3_600_000
    base = T0 - T0 % hour
    spread = [0, 1, hour // 2, hour - 1, hour, 5 * hour + 7, 26 * hour - 1, 26 * hour, 30 * 24 * hour + 3]
    first = [0, 1, 1, 2, 31, 32, 33, 95, 96, 100, 5000, 5001, 22_000, 22_001, 10**6, 0, 1]
    views, unloads, later, events = [], [], [], []
    for i in range(60):
        bid = f"s{i}"
        at = base + spread[i % len(spread)] + (i // len(spread)) * 3 * hour
        views.append(hits.NewView(row(bid=bid, date_created=at, pathname=f"/{i % 3}", is_unique_user=i % 2)))
        if i % 7:
            unloads.append(hits.Duration(bid, first[i % len(first)]))
        if i % 5 == 0:
            later.append(hits.Duration(bid, first[(i * 3) % len(first)] + 40))  # moves it to another bucket
        if i % 4 == 0:
            events.append(event(bid, "plan", f"v{i % 3}", at + 5))
    hits.store_events(ch, [event("s1", "early", "yes", base + 10)])  # before its view: site '' until read
    assert hits.apply_batch(ch, views) == [None] * len(views)
    assert hits.apply_batch(ch, unloads + [hits.NewEvents(events)]) == [None] * (len(unloads) + 1)
    assert hits.apply_batch(ch, later) == [None] * len(later)
    neutral = (Filter("browser", "neq", "no such browser"),)
    bounds = [base + at + d for at in (0, 26 * hour, 31 * 24 * hour) for d in (-1, 0, hour // 2)]
    intervals = (None, "hour", "day", "week", "month")
    for state in ("unmerged", "merged"):
        if state == "merged":
            for table in schema.TABLES:
                ch.command(f"OPTIMIZE TABLE {table} FINAL")
        for i, start in enumerate(bounds):
            for j, end in enumerate(bounds):
                if end < start:
                    continue
                us = (start * 1000, end * 1000 + 999)
                interval = intervals[(i + j) % len(intervals)]
                hourly = stats.summary(ch, Query(SITE, *us), True, interval)
                assert hourly == stats.summary(ch, Query(SITE, *us, neutral), True, interval), (start, end, interval)
                raw = stats.properties(ch, Query(SITE, *us, neutral), Page())
                assert stats.properties(ch, Query(SITE, *us), Page()) == raw, (start, end)
        assert stats.site_metrics(ch, Query(SITE)) == stats.site_metrics(ch, Query(SITE, filters=neutral))


def test_a_hostname_sharing_the_site_key_is_told_apart(ch: Client) -> None:
    """Rows are found by a 64-bit hash of the hostname; names are compared too once `sites` holds two names
    for one key. No real pair collides, so the impostor's rows are forged with this site's key."""
    assert hits.apply_batch(ch, [hits.NewView(row(bid="v1", date_created=T0 + 5))]) == [None]
    assert hits.apply_batch(ch, [hits.Duration("v1", 300)]) == [None]
    impostor = "site_key, 'impostor.example'"
    ch.command(
        f"INSERT INTO hourly SELECT {impostor}, kind, level, hour, value, 5, 5, 5, 5, 5, 1500, 5, 0, 0 FROM hourly"
    )
    ch.command(f"INSERT INTO duration_hours SELECT {impostor}, kind, value, level, hour, bucket, 5 FROM duration_hours")
    ch.command(f"INSERT INTO durations SELECT {impostor}, kind, value, bucket, hour, 7, 5 FROM durations")
    day = (T0 - T0 % 86_400_000) * 1000
    q = Query(SITE, day, day + 86_400_000_000 - 1)
    expected = {"visitors": 1, "pageviews": 1, "bounce_percentage": 0, "duration": 300}
    assert stats.site_metrics(ch, q) != expected  # without its name in `sites`, the impostor counts
    ch.command(f"INSERT INTO sites SELECT site_key, 'impostor.example' FROM sites WHERE hostname = '{SITE}'")
    assert stats.site_metrics(ch, q) == expected
    assert stats.summary(ch, q, True, "hour")["current"] == expected
    assert stats.list_stats(ch, q, "pages", True, Page()) == [{"path": "/", "visitors": 1, "visitors_percentage": 1.0}]


def test_property_durations_follow_every_unload_and_every_new_property(ch: Client) -> None:
    """An unload writes its view's duration under each of the view's properties (`prop_durations`, schema
    migration 9), those stored by earlier batches looked up in `prop_keys` (migration 10); a property that comes
    after the view's unload gets its current duration. A property-filtered /summary and /time read them, and
    answer as the same views selected by a view filter (read from `views`); migrations 9 and 10 fill both
    tables from the stored rows, once when run again."""
    pro = [event(bid, "plan", "pro") for bid in ("multi", "fresh", "none")]
    ops: list[hits.Op] = [
        hits.NewView(row(bid="multi", pathname="/a", ua_browser="P"), [pro[0], event("multi", "theme", "dark")]),
        hits.NewView(row(bid="late", pathname="/a", ua_browser="P")),  # its property comes after its unload
        hits.NewView(row(bid="same", pathname="/b", ua_browser="P")),  # its property comes with its unload
        hits.NewView(row(bid="fresh", pathname="/b", ua_browser="P"), [pro[1]]),
        hits.Duration("fresh", 3000),  # folded into its new view: version 0
        hits.NewView(row(bid="none", pathname="/b", ua_browser="P"), [pro[2]]),  # never unloaded
        hits.NewView(row(bid="plain", pathname="/a")),
        hits.Duration("plain", 50),
    ]
    assert hits.apply_batch(ch, ops) == [None] * len(ops)
    later: list[list[hits.Op]] = [
        [hits.Duration("multi", 1000), hits.Duration("late", 4000)],
        [hits.Duration("multi", 2000), hits.NewEvents([event("late", "plan", "pro", T0 + HOUR)])],
        [hits.NewEvents([event("same", "plan", "pro"), event("multi", "size", "xl")]), hits.Duration("same", 700)],
        [hits.Duration("same", 800), hits.Duration("plain", 60)],
    ]
    for batch in later:
        assert hits.apply_batch(ch, batch) == [None] * len(batch)
    current = (
        "SELECT bid, name, max(version), argMax(duration_ms, version) FROM prop_durations"
        " GROUP BY bid, name ORDER BY bid, name"
    )
    expected_rows = [
        ["fresh", "plan", 0, 3000],
        ["late", "plan", 1, 4000],
        ["multi", "plan", 2, 2000],
        ["multi", "size", 2, 2000],
        ["multi", "theme", 2, 2000],
        ["same", "plan", 2, 800],
    ]
    assert ch.rows(current) == expected_rows
    period = (T0 * 1000, (T0 + DAY) * 1000)
    by_prop = Query(SITE, *period, (Filter("prop_name", "eq", "plan"), Filter("prop_value", "eq", "pro")))
    by_view = Query(SITE, *period, (Filter("browser", "eq", "p"),))  # the same views, read from `views`

    def answers(q: Query) -> list[object]:
        found: list[object] = [stats.summary(ch, q, True, "hour"), stats.site_metrics(ch, q)]
        return found + [stats.time_stats(ch, q, summary, Page()) for summary in (True, False)]

    expected = answers(by_view)
    assert expected[1] == {"visitors": 5, "pageviews": 5, "bounce_percentage": 0, "duration": 2500}
    assert answers(by_prop) == expected
    for name, value in (("theme", "dark"), ("size", "xl")):  # only "multi", at its last unload
        q = Query(SITE, *period, (Filter("prop_name", "eq", name), Filter("prop_value", "eq", value)))
        assert stats.site_metrics(ch, q)["duration"] == 2000, name
    for table in ("prop_key_rows", "prop_keys", "prop_durations"):
        ch.command(f"DROP TABLE {table}")
    for _ in range(2):
        ch.command("DROP TABLE medama_schema")
        assert schema.migrate(ch, 0) == schema.MIGRATIONS[-1][0]
        assert answers(by_prop) == expected
        assert ch.rows(current) == expected_rows
        assert ch.rows("SELECT count() FROM prop_keys FINAL") == [[7]]
    assert hits.apply_batch(ch, [hits.Duration("multi", 3000)]) == [None]  # its properties, from the backfill
    assert ch.rows(f"SELECT * FROM ({current}) WHERE bid = 'multi'") == [
        ["multi", name, 3, 3000] for name in ("plan", "size", "theme")
    ]


def test_views_by_prop_holds_each_view_once_per_property_through_unloads_and_migration_15(ch: Client) -> None:
    """A view's rows of `views` again under each of its properties and property names, lower-cased (`views_by_prop`,
    schema migration 15): its row under a key new to it, once however often and in whatever case the property
    comes; an unload's pair under each key stored before (looked up in `prop_keys`), and its new row under a key
    new in the unload's batch. A filter pinning a property or a name reads them as `views`. Migration 15 fills the
    same net rows from the stored ones, once when run again, and later unloads find the properties it filled."""
    first = [event("a", "Plan", "Pro"), event("a", "plan", "pro"), event("a", "theme", "dark")]
    batches: list[list[hits.Op]] = [
        [hits.NewView(row(bid="a", pathname="/a"), first), hits.NewView(row(bid="b", pathname="/b"))],
        [hits.Duration("a", 100)],
        [hits.Duration("a", 200), hits.NewEvents([event("a", "PLAN", "PRO"), event("a", "size", "xl")])],
        [hits.NewEvents([event("b", "plan", "pro")])],
        [hits.NewEvents([event("b", "Plan", "pro")]), hits.Duration("b", 50)],
    ]
    for batch in batches:
        assert hits.apply_batch(ch, batch) == [None] * len(batch)
    net = (
        "SELECT bid, named, name, value, sum(sign), sum(sign * ifNull(duration_ms, 0)), sum(sign * version),"
        " sumIf(sign, sign = 1) FROM views_by_prop WHERE named < 2"
        " GROUP BY bid, named, name, value ORDER BY bid, named, name, value"
    )
    expected = [
        ["a", 0, "plan", "pro", 1, 200, 2, 3],  # v0, then the pairs of two unloads
        ["a", 0, "size", "xl", 1, 200, 2, 1],  # new in the second unload's batch: its row after it
        ["a", 0, "theme", "dark", 1, 200, 2, 3],
        ["a", 1, "plan", "", 1, 200, 2, 3],  # the names alone, as their properties
        ["a", 1, "size", "", 1, 200, 2, 1],
        ["a", 1, "theme", "", 1, 200, 2, 3],
        ["b", 0, "plan", "pro", 1, 50, 1, 2],  # a property of a stored view, then its unload's pair
        ["b", 1, "plan", "", 1, 50, 1, 2],
    ]
    assert ch.rows(net) == expected
    period = (T0 * 1000, (T0 + DAY) * 1000)
    pro = Query(SITE, *period, (Filter("prop_name", "eq", "PLAN"), Filter("prop_value", "eq", "pro")))
    plan = Query(SITE, *period, (Filter("prop_name", "eq", "plan"),))
    assert stats._by_prop(stats._resolve(ch, pro)) and stats._by_prop(stats._resolve(ch, plan))

    def answers(q: Query) -> list[object]:
        found: list[object] = [stats.summary(ch, q, True, "hour"), stats.list_stats(ch, q, "pages", True, Page())]
        return found + [stats.time_stats(ch, q, summary, Page()) for summary in (True, False)]

    expected_answers = answers(Query(SITE, *period))  # both views have the property: all of the site's
    assert expected_answers[0]["current"]["pageviews"] == 2
    assert answers(pro) == expected_answers and answers(plan) == expected_answers
    ch.command("DROP TABLE views_by_prop")
    for _ in range(2):
        ch.command("DROP TABLE medama_schema")
        assert schema.migrate(ch, 0) == schema.MIGRATIONS[-1][0]
        assert [r[:7] for r in ch.rows(net)] == [r[:7] for r in expected]
        assert answers(pro) == expected_answers and answers(plan) == expected_answers
    assert hits.apply_batch(ch, [hits.Duration("a", 300)]) == [None]
    keys = [r[1:4] for r in expected if r[0] == "a"]  # looked up in `prop_keys`, as migrated
    assert [r[:6] for r in ch.rows(net) if r[0] == "a"] == [["a", *key, 1, 300] for key in keys]


def test_views_by_prop_holds_each_views_key_set_through_unloads_new_properties_and_migration_19(ch: Client) -> None:
    """A view's rows once more under its whole key set (`views_by_prop`, `named` 2, schema migration 18): its
    distinct lower-cased properties, sorted, in two arrays, any character kept; an unload writes the pair that
    replaces its row, and a set that grows (with or without an unload) cancels the row under the old set. Filters
    that can match several keys of one view (`in`, a negation, `contains`) read those rows and count each view
    once, as the same views picked by page do; not on a site retention purged. Migration 18 fills the same net
    rows from the stored ones, once when run again, and later unloads find the sets it wrote."""
    odd = "o'k\\\t["  # a quote, a backslash, a tab and a bracket, inside an array
    batches: list[list[hits.Op]] = [
        [
            hits.NewView(row(bid="a", pathname="/a"), [event("a", "Plan", "Pro"), event("a", "plan", "pro")]),
            hits.NewView(row(bid="b", pathname="/b")),
            hits.NewView(row(bid="c", pathname="/c"), [event("c", "Size", "S"), event("c", odd, "V")]),
        ],
        [hits.Duration("a", 100), hits.NewEvents([event("a", "theme", "dark")])],  # grows with an unload
        [hits.Duration("a", 200), hits.NewEvents([event("a", "PLAN", "PRO"), event("a", "size", "xl")])],
        [hits.NewEvents([event("b", "plan", "pro")])],
        [hits.NewEvents([event("b", "Plan", "pro")]), hits.Duration("b", 50)],  # no new key: the unload's pair
        [hits.NewEvents([event("b", "theme", "light")])],  # grows without an unload: same version
    ]
    for batch in batches:
        assert hits.apply_batch(ch, batch) == [None] * len(batch)
    net = (
        "SELECT bid, value, key_names, key_values, sum(sign), sum(sign * ifNull(duration_ms, 0)), sum(sign * version)"
        " FROM views_by_prop WHERE named = 2 GROUP BY bid, value, key_names, key_values HAVING sum(sign) != 0"
        " ORDER BY bid"
    )
    expected = [
        ["a", "3", ["plan", "size", "theme"], ["pro", "xl", "dark"], 1, 200, 2],
        ["b", "2", ["plan", "theme"], ["pro", "light"], 1, 50, 1],
        ["c", "2", [odd, "size"], ["v", "s"], 1, 0, 0],
    ]
    assert ch.rows(net) == expected
    period = (T0 * 1000, (T0 + DAY) * 1000)
    several = [
        (Filter("prop_name", "in", "plan,theme"),),
        (Filter("prop_name", "neq", "plan"),),  # a and c by another name, b by theme
        (Filter("prop_value", "contains", "r"),),  # a by pro, b by pro
        (Filter("prop_name", "eq", "PLAN"), Filter("prop_value", "neq", "pro")),  # no view
        (Filter("prop_value", "eq", "v"),),  # c, by its odd name
    ]
    pages = [("/a", "/b"), ("/a", "/b", "/c"), ("/a", "/b"), (), ("/c",)]

    def answers(q: Query) -> list[object]:
        found: list[object] = [stats.summary(ch, q, True, "hour"), stats.list_stats(ch, q, "pages", True, Page())]
        found.append(stats.list_stats(ch, q, "browsers", False, Page()))
        return found + [stats.time_stats(ch, q, summary, Page()) for summary in (True, False)]

    def same_as_pages() -> None:
        for props, paths in zip(several, pages, strict=True):
            q = Query(SITE, *period, props)
            assert stats._by_keys(stats._resolve(ch, q)), props
            by_page = Query(SITE, *period, (Filter("path", "in", ",".join(paths or ("/none",))),))
            assert answers(q) == answers(by_page), props

    same_as_pages()
    ch.command("ALTER TABLE views_by_prop DELETE WHERE named = 2")
    ch.command("ALTER TABLE medama_schema DELETE WHERE version >= 18")
    site_data.wait_for_mutations(ch, ("views_by_prop", "medama_schema"))
    for _ in range(2):  # migration 18 again (cut short): the sets filled once
        assert schema.migrate(ch, 0) == schema.MIGRATIONS[-1][0]
        assert ch.rows(net) == expected
        assert ch.rows("SELECT count() FROM views_by_prop WHERE named = 2 AND bid = 'c'") == [[1]]
        ch.command("ALTER TABLE medama_schema DELETE WHERE version >= 18")
        site_data.wait_for_mutations(ch, ("medama_schema",))
    same_as_pages()
    assert hits.apply_batch(ch, [hits.Duration("b", 70)]) == [None]  # its set, as migrated
    assert ch.rows(net)[1] == ["b", "2", ["plan", "theme"], ["pro", "light"], 1, 70, 2]
    ch.command("OPTIMIZE TABLE views_by_prop FINAL")
    assert ch.rows(net)[1] == ["b", "2", ["plan", "theme"], ["pro", "light"], 1, 70, 2]
    same_as_pages()
    ch.insert("raw_floor", ("hostname", "floor"), [(SITE, T0 - DAY)])  # purged: the events' side answers
    assert not stats._by_keys(stats._resolve(ch, Query(SITE, *period, several[0])))
    for props, paths in zip(several, pages, strict=True):
        by_page = Query(SITE, *period, (Filter("path", "in", ",".join(paths or ("/none",))),))
        assert answers(Query(SITE, *period, props)) == answers(by_page), props


def test_lists_under_one_browser_or_referrer_filter_from_filter_hours_equal_the_raw_rows(ch: Client) -> None:
    """Views in several browsers and referrers (a group that is the host in other case, a group of its own, none,
    direct traffic), on and beside hour edges, some unloaded (pairs unmerged, then merged): a compact list under one
    browser or referrer filter (`filter_hours`, schema migration 16, and the edges' raw rows) equals the raw rows'
    answer (the same filter and one that keeps every row), for periods on, before and after the edges; then the
    rows stored before the migration are counted by it once, also when it runs again (cut short)."""
    base = T0 - T0 % HOUR
    offsets = [0, 1, HOUR - 1, HOUR, HOUR + 1, 2 * HOUR - 1, 2 * HOUR, 3 * HOUR + 5, 20 * HOUR, 40 * HOUR + 7]
    referrers = [("google.com", "Google"), ("google", "GOOGLE"), ("", ""), ("t.co", "Twitter"), ("a.net", "")]
    views = []
    for i in range(60):
        host, group = referrers[i % len(referrers)]
        views.append(
            row(
                bid=f"f{i}",
                date_created=base + offsets[i % len(offsets)] + i // len(offsets) * 7,
                pathname=f"/{i % 3}",
                is_unique_user=i % 2,
                is_unique_page=i % 3 != 1,
                ua_browser=("Firefox", "firefox", "Chrome", "Safari")[i % 4],
                referrer_host=host,
                referrer_group=group,
            )
        )
    assert hits.apply_batch(ch, [hits.NewView(v) for v in views]) == [None] * len(views)
    assert hits.apply_batch(ch, [hits.Duration(f"f{i}", i) for i in range(0, 60, 3)]) == [None] * 20
    keep = Filter("path", "neq", "/no such page")
    filters = [
        Filter("browser", "eq", "FireFox"),
        Filter("browser", "in", "chrome,safari,chrome"),
        Filter("referrer", "eq", "google"),
        Filter("referrer", "eq", "Twitter"),
        Filter("referrer", "eq", ""),
        Filter("referrer", "in", "a.net"),
    ]
    bounds = [None, base, base + 1, base + HOUR + 1, base + 40 * HOUR]

    def answers(against_raw: bool = False) -> list[object]:
        """Every keyed answer, each checked against the raw rows' first (the later states compare with these)."""
        found = []
        for flt in filters:
            assert stats._filter_keys(Query(SITE, None, None, (flt,))) is not None, flt
            for start in bounds:
                for end in bounds:
                    if start is not None and end is not None and end < start:
                        continue
                    us = (None if start is None else start * 1000, None if end is None else end * 1000)
                    for endpoint in ("pages", "browsers", "referrers"):
                        keyed = stats.list_stats(ch, Query(SITE, *us, (flt,)), endpoint, True, Page())
                        if against_raw:
                            raw = stats.list_stats(ch, Query(SITE, *us, (flt, keep)), endpoint, True, Page())
                            assert keyed == raw, (flt, start, end, endpoint)
                        found.append(keyed)
        return found

    expected = answers(against_raw=True)
    assert stats._filter_keys(Query(SITE, None, None, (Filter("referrer", "in", "google,t.co"),))) is None
    assert stats._filter_keys(Query(SITE, None, None, (Filter("browser", "neq", "chrome"),))) is None
    whole = stats.list_stats(
        ch, Query(SITE, None, None, (Filter("referrer", "eq", "google"),)), "browsers", True, Page()
    )
    assert sum(r["visitors"] for r in whole) == 12  # host google or group google, each view once
    for table in ("views", "filter_hours"):
        ch.command(f"OPTIMIZE TABLE {table} FINAL")
    assert answers() == expected
    ch.command("DROP TABLE filter_hour_counts")
    ch.command("DROP TABLE filter_hours")
    for _ in range(2):
        ch.command("DROP TABLE medama_schema")
        assert schema.migrate(ch, 0) == schema.MIGRATIONS[-1][0]
        assert answers() == expected


def test_lists_under_one_property_name_from_prop_name_hours_equal_the_raw_rows(ch: Client) -> None:
    """Views with properties of two names in several cases (one view with both, one with a name twice), on and
    beside hour edges, some unloaded (pairs unmerged, then merged): a compact list under one property name filter
    alone (`prop_name_hours`, schema migration 17, and the edges' rows of `views_by_prop`) equals the answer read
    from the rows (the same name with a second name filter keeping every row), for periods on, before and after the
    edges; the rows stored before the migration are counted by it once, also when it runs again (cut short); a
    purged site reads the rows."""
    base = T0 - T0 % HOUR
    offsets = [0, 1, HOUR - 1, HOUR, HOUR + 1, 2 * HOUR - 1, 2 * HOUR, 3 * HOUR + 5, 20 * HOUR, 40 * HOUR + 7]
    props = [[("Plan", "pro")], [("plan", "free"), ("theme", "dark")], [], [("THEME", "x"), ("theme", "y")]]
    ops: list[hits.Op] = []
    for i in range(48):
        at = base + offsets[i % len(offsets)] + i // len(offsets) * 7
        found = [event(f"n{i}", name, value, at) for name, value in props[i % len(props)]]
        view_row = row(bid=f"n{i}", date_created=at, pathname=f"/{i % 3}", is_unique_user=i % 2, ua_browser=str(i % 5))
        ops.append(hits.NewView(view_row, found))
    assert hits.apply_batch(ch, ops) == [None] * len(ops)
    assert hits.apply_batch(ch, [hits.Duration(f"n{i}", i) for i in range(0, 48, 3)]) == [None] * 16
    names = [Filter("prop_name", "eq", "PLAN"), Filter("prop_name", "in", "theme"), Filter("prop_name", "eq", "x")]
    keep = Filter("prop_name", "neq", "no such name")
    bounds = [None, base - 1, base, base + 1, base + HOUR + 1, base + 40 * HOUR]

    def answers() -> list[object]:
        found = []
        for flt in names:
            assert stats._name_key(stats._resolve(ch, Query(SITE, None, None, (flt,)))) is not None, flt
            for start in bounds:
                for end in bounds:
                    if start is not None and end is not None and end < start:
                        continue
                    us = (None if start is None else start * 1000, None if end is None else end * 1000)
                    for endpoint in ("pages", "browsers"):
                        keyed = stats.list_stats(ch, Query(SITE, *us, (flt,)), endpoint, True, Page())
                        raw = stats.list_stats(ch, Query(SITE, *us, (flt, keep)), endpoint, True, Page())
                        assert keyed == raw, (flt, start, end, endpoint)
                        found.append(keyed)
        return found

    expected = answers()
    whole = stats.list_stats(ch, Query(SITE, None, None, (names[1],)), "pages", True, Page())
    assert sum(r["visitors"] for r in whole) == sum(1 for i in range(48) if i % 4 in (1, 3) and i % 2)
    assert stats._name_key(Query(SITE, None, None, (Filter("prop_name", "in", "plan,theme"),))) is None
    for table in ("views_by_prop", "prop_name_hours"):
        ch.command(f"OPTIMIZE TABLE {table} FINAL")
    assert answers() == expected
    ch.command("DROP TABLE prop_name_hour_counts")
    ch.command("DROP TABLE prop_name_hours")
    for _ in range(2):
        ch.command("DROP TABLE medama_schema")
        assert schema.migrate(ch, 0) == schema.MIGRATIONS[-1][0]
        assert answers() == expected
    plan = stats._resolve(ch, Query(SITE, None, None, (names[0],)))
    assert stats._hourly_groups(ch, plan, "path", ("visitors",)) is not None  # from `prop_name_hours`
    ch.insert("raw_floor", ("hostname", "floor"), [(SITE, base - DAY)])
    assert stats._hourly_groups(ch, plan, "path", ("visitors",)) is None  # a purge: the rows


def test_hourly_and_filter_hours_by_hour_hold_the_sums_of_the_span_grouping(ch: Client) -> None:
    """Migration 19's views (`hourly_counts`, `filter_hour_counts` grouping by hour, the span levels joined after):
    views in several hours of one 16-hour span, on 16- and 256-hour edges and across a month's end, with referrers of
    a group and without, then unloads: per key, the sums in `hourly` and `filter_hours` equal those written by the
    views before it (made again beside them into copies); and the views as migrated group by hour (the levels'
    arrayJoin not in their GROUP BY)."""
    for table, made, select in (
        ("hourly", "hourly_counts", schema._HOURLY_COUNTS.split(" AS\n", 1)[1]),
        ("filter_hours", "filter_hour_counts", schema._FILTER_HOURS_SELECT.format(where="1")),
    ):
        ch.command(f"CREATE TABLE {table}_spans AS {table}")
        ch.command(f"CREATE MATERIALIZED VIEW {made}_spans TO {table}_spans AS {select}")
        grouped = str(ch.rows(f"SHOW CREATE TABLE {made}")[0][0]).rsplit("GROUP BY", 1)[1]
        assert "toInt64(256)" not in grouped and "intDiv(date_created, 3600000)" in grouped, made
    month_end = T0 + 30 * DAY - 1000  # 2024-06-30 23:59:59 UTC: a 256-hour span starting in June holds July's hours
    span = 16 * HOUR
    ats = [T0 - T0 % span + at for at in (0, 1, HOUR, HOUR + 5, 15 * HOUR, span, span + 1)]
    ats += [month_end, month_end + 2_000, T0 - T0 % (256 * HOUR) - 1]
    referrers = (("", ""), ("www.google.com", "Google"), ("google", ""), ("x.org", "x.org"))
    views = [
        row(
            bid=f"h{i}",
            date_created=at,
            pathname=f"/{i % 3}",
            is_unique_user=i % 2,
            ua_browser=("Firefox", "firefox", "Safari")[i % 3],
            referrer_host=referrers[i % 4][0],
            referrer_group=referrers[i % 4][1],
        )
        for i, at in enumerate(ats)
    ]
    assert hits.apply_batch(ch, [hits.NewView(v) for v in views]) == [None] * len(views)
    assert hits.apply_batch(ch, [hits.Duration(f"h{i}", 10 * i) for i in range(0, len(ats), 2)]) == [None] * 5

    def sums(table: str, keys: str) -> list[list[Any]]:
        counted = [name for name in schema.ROW_COUNTS if table.startswith("hourly") or name in schema.FILTER_COUNTS]
        return ch.rows(
            f"SELECT {keys}, {', '.join(f'sum({name})' for name in counted)} FROM {table}"
            f" GROUP BY {keys} ORDER BY {keys}"
        )

    for table, keys in (
        ("hourly", "hostname, kind, level, hour, value"),
        ("filter_hours", "hostname, field, fkey, kind, level, hour, value"),
    ):
        assert sums(table, keys) == sums(f"{table}_spans", keys), table


def test_prop_name_hours_by_hour_hold_the_sums_of_the_span_grouping(ch: Client) -> None:
    """Migration 20's `prop_name_hour_counts` (grouping by hour, the span levels joined after): views with properties
    in several hours of one 16-hour span, on 16- and 256-hour edges and across a month's end, then unloads (their
    rows under each name cancelled and written again): per key, the sums in `prop_name_hours` equal those written
    by the view before it (made again beside it into a copy); and the view as migrated groups by hour."""
    ch.command("CREATE TABLE prop_name_hours_spans AS prop_name_hours")
    ch.command(
        "CREATE MATERIALIZED VIEW prop_name_hour_counts_spans TO prop_name_hours_spans AS "
        + schema._PROP_NAME_HOURS_SELECT.format(where="1")
    )
    grouped = str(ch.rows("SHOW CREATE TABLE prop_name_hour_counts")[0][0]).rsplit("GROUP BY", 1)[1]
    assert "toInt64(256)" not in grouped and "intDiv(date_created, 3600000)" in grouped
    month_end = T0 + 30 * DAY - 1000  # 2024-06-30 23:59:59 UTC: a 256-hour span starting in June holds July's hours
    span = 16 * HOUR
    ats = [T0 - T0 % span + at for at in (0, 1, HOUR, HOUR + 5, 15 * HOUR, span, span + 1)]
    ats += [month_end, month_end + 2_000, T0 - T0 % (256 * HOUR) - 1]
    ops: list[hits.Op] = []
    for i, at in enumerate(ats):
        view = row(bid=f"p{i}", date_created=at, pathname=f"/{i % 3}", is_unique_user=i % 2)
        names = ("plan", "Plan", "size")[: 1 + i % 3]
        ops.append(hits.NewView(view, [event(f"p{i}", name, f"v{i % 2}", at) for name in names]))
    assert hits.apply_batch(ch, ops) == [None] * len(ops)
    assert hits.apply_batch(ch, [hits.Duration(f"p{i}", 10 * i) for i in range(0, len(ats), 2)]) == [None] * 5
    keys = "hostname, name, kind, level, hour, value"
    counts = ", ".join(f"sum({name})" for name in schema.FILTER_COUNTS)

    def sums(table: str) -> list[list[Any]]:
        return ch.rows(f"SELECT {keys}, {counts} FROM {table} GROUP BY {keys} ORDER BY {keys}")

    assert sums("prop_name_hours") == sums("prop_name_hours_spans")
    assert len(sums("prop_name_hours")) > len(ats)
