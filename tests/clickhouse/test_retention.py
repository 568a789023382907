"""Retention on ClickHouse (server 18.16 and chDB): old raw rows deleted by mutation, pre-aggregates kept."""

from __future__ import annotations

from medama_core.store.clickhouse import hits, retention, site_data, stats
from medama_core.store.clickhouse.client import Client
from medama_core.store.filters import Filter
from medama_core.store.query import Page, Query
from tests.clickhouse.test_writes import SITE, event, row
from tests.store.test_stats import T0

DAY = 86_400_000


def test_purge_deletes_old_rows_and_keeps_unfiltered_answers(ch: Client) -> None:
    views = [row(bid="o1", pathname="/a"), row(bid="o2", pathname="/b", is_unique_user=0)]
    views += [row(bid="n1", pathname="/a", date_created=T0 + 3 * DAY)]
    assert hits.apply_batch(ch, [hits.NewView(v) for v in views]) == [None] * 3
    hits.store_events(ch, [event("o1", "plan", "pro", T0 + 60_000), event("n1", "plan", "free", T0 + 3 * DAY)])
    old = Query(SITE, T0 * 1000, (T0 + DAY) * 1000 - 1)
    before = (stats.summary(ch, old, False, "day"), stats.list_stats(ch, old, "pages", True, Page()))
    props = stats.properties(ch, old, Page())
    assert before[0]["current"]["pageviews"] == 2 and props == [{"name": "plan", "events": 1, "events_percentage": 1.0}]
    plan = Query(SITE, old.start_us, old.end_us, (Filter("prop_name", "eq", "plan"),))  # property filters alone
    values = stats.properties(ch, plan, Page())
    assert values == [{"value": "pro", "events": 1, "events_percentage": 1.0}]
    assert retention.raw_floor(ch, SITE) is None

    assert retention.purge_step(ch, SITE, T0 + DAY) == retention.Step(2)

    assert ch.rows(f"SELECT bid FROM views WHERE hostname = '{SITE}' ORDER BY bid") == [["n1"]]
    assert ch.rows("SELECT name, value FROM events") == [["plan", "free"]]
    assert ch.rows("SELECT name, value, view_created FROM prop_views") == [["plan", "free", T0 + 3 * DAY]]
    assert ch.rows(f"SELECT bid FROM view_keys WHERE hostname = '{SITE}'") == [["n1"]]
    assert retention.raw_floor(ch, SITE) == T0 + DAY
    assert (stats.summary(ch, old, False, "day"), stats.list_stats(ch, old, "pages", True, Page())) == before
    assert stats.properties(ch, old, Page()) == props
    assert stats.properties(ch, plan, Page()) == values  # from `event_hours`, as the unfiltered counts
    assert retention.purge_step(ch, SITE, T0 + DAY) == retention.Step(0)


def test_purge_deletes_a_prop_views_row_with_its_view_or_its_event(ch: Client) -> None:
    # "gone": its view is purged, its event (later) kept; "kept": its view kept, its event purged.
    views = [row(bid="gone", pathname="/gone"), row(bid="kept", pathname="/kept", date_created=T0 + 3 * DAY)]
    views += [row(bid="new", pathname="/new", date_created=T0 + 3 * DAY)]
    assert hits.apply_batch(ch, [hits.NewView(v) for v in views]) == [None] * 3
    hits.store_events(ch, [event("gone", "plan", "pro", T0 + 5 * DAY), event("kept", "plan", "pro", T0)])
    hits.store_events(ch, [event("new", "plan", "pro", T0 + 3 * DAY)])
    pro = Query(SITE, filters=(Filter("prop_value", "eq", "pro"),))
    assert [r["path"] for r in stats.list_stats(ch, pro, "pages", True, Page())] == ["/gone", "/kept", "/new"]

    assert retention.purge_step(ch, SITE, T0 + DAY) == retention.Step(1)

    assert ch.rows("SELECT bid FROM prop_views") == [["new"]]
    assert stats._prop_groups(ch, pro, "pathname") is not None  # read from prop_views, as `views` answers it
    assert stats.list_stats(ch, pro, "pages", True, Page()) == [
        {"path": "/new", "visitors": 1, "visitors_percentage": 1.0}
    ]
    assert stats.site_metrics(ch, pro)["pageviews"] == 1


def test_rename_keeps_the_pre_aggregates_of_purged_days(ch: Client) -> None:
    """A purged site renamed answers as before under its new name: the deleted days' pre-aggregates go
    with it, at every span level (a period over the purged and kept days reads spans straddling the floor)."""
    hour = 3_600_000
    views = [
        row(bid=f"o{h}", pathname=f"/{h % 3}", date_created=T0 + h * hour + 5, duration_ms=h * 100) for h in range(20)
    ]
    views += [row(bid=f"n{d}", pathname="/a", date_created=T0 + d * DAY + 5, duration_ms=700) for d in (2, 3, 9)]
    assert hits.apply_batch(ch, [hits.NewView(v) for v in views]) == [None] * len(views)
    hits.store_events(ch, [event("o1", "plan", "pro", T0 + 60_000), event("n2", "plan", "free", T0 + 2 * DAY + 5)])
    periods = [Query(SITE, T0 * 1000, (T0 + DAY) * 1000 - 1), Query(SITE, T0 * 1000, (T0 + 20 * DAY) * 1000 - 1)]

    def answers(hostname: str) -> list[object]:
        found: list[object] = []
        for q in periods:
            q = Query(hostname, q.start_us, q.end_us)
            found += [stats.summary(ch, q, True, "day"), stats.list_stats(ch, q, "pages", True, Page())]
            found.append(stats.properties(ch, q, Page()))
        return found

    before = answers(SITE)
    assert retention.purge_step(ch, SITE, T0 + DAY) == retention.Step(20)
    assert answers(SITE) == before
    site_data.rename_site_data(ch, SITE, "b.example")
    assert answers("b.example") == before
    assert retention.raw_floor(ch, "b.example") == T0 + DAY and retention.raw_floor(ch, SITE) is None
    assert answers(SITE)[0]["current"]["pageviews"] == 0  # type: ignore[index]


def test_the_previous_period_keeps_its_first_hour_after_a_purge(ch: Client) -> None:
    """/summary's previous period starts a microsecond after midnight, so its first hour is cut: once
    purged, that hour's views still count (as on SQLite, store/sqlite/rollups.py _purged_edges)."""
    views = [row(bid=f"o{m}", date_created=T0 + m * 60_000 + 5, duration_ms=300) for m in (0, 1, 30, 59, 61)]
    views += [row(bid="n1", date_created=T0 + 2 * DAY + 5)]
    assert hits.apply_batch(ch, [hits.NewView(v) for v in views]) == [None] * len(views)
    q = Query(SITE, (T0 + DAY) * 1000, (T0 + 2 * DAY) * 1000 - 1)
    before = stats.summary(ch, q, True, "day")
    assert before["previous"]["pageviews"] == 5
    assert retention.purge_step(ch, SITE, T0 + 2 * DAY) == retention.Step(5)
    assert stats.summary(ch, q, True, "day") == before


def test_purge_takes_a_kept_view_out_of_a_property_whose_events_all_go(ch: Client) -> None:
    """A view the purge keeps, whose every event of a property it purges, matches that property no more: its rows
    under it in `views_by_prop` (schema migration 15) go too (retention._props_losing_events), while a view with a
    later event of the property keeps them, and so do its other properties. A filter that can match several keys
    of a view no longer reads the views' key sets (stats._by_keys), which still hold the purged property."""
    views = [row(bid="kept", pathname="/kept", date_created=T0 + 3 * DAY), row(bid="gone", pathname="/gone")]
    views += [row(bid="both", pathname="/both", date_created=T0 + 3 * DAY)]
    assert hits.apply_batch(ch, [hits.NewView(v) for v in views]) == [None] * 3
    old, later = event("kept", "plan", "pro", T0), event("kept", "theme", "dark", T0 + 4 * DAY)
    both = [event("both", "Plan", "pro", T0), event("both", "plan", "PRO", T0 + 4 * DAY)]
    hits.store_events(ch, [old, later, *both, event("gone", "plan", "pro", T0 + 5 * DAY)])
    pro = Query(SITE, filters=(Filter("prop_name", "eq", "plan"), Filter("prop_value", "eq", "pro")))
    dark = Query(SITE, filters=(Filter("prop_name", "eq", "theme"), Filter("prop_value", "eq", "dark")))
    plan = Query(SITE, filters=(Filter("prop_name", "eq", "plan"),))  # the name alone
    assert stats._by_prop(stats._resolve(ch, pro)) and stats._by_prop(stats._resolve(ch, plan))

    def pages(q: Query) -> list[str]:
        return [r["path"] for r in stats.list_stats(ch, q, "pages", True, Page())]

    assert pages(pro) == ["/both", "/gone", "/kept"] and pages(plan) == ["/both", "/gone", "/kept"]
    value = Query(SITE, filters=(Filter("prop_value", "eq", "pro"),))  # a value alone: several keys of a view
    assert stats._by_keys(stats._resolve(ch, value)) and pages(value) == ["/both", "/gone", "/kept"]

    assert retention.purge_step(ch, SITE, T0 + DAY) == retention.Step(1)

    key_rows = "SELECT DISTINCT bid, named, name, value FROM views_by_prop WHERE named < 2 ORDER BY bid, named, name"
    assert ch.rows(key_rows) == [
        ["both", 0, "plan", "pro"],
        ["both", 1, "plan", ""],
        ["kept", 0, "theme", "dark"],
        ["kept", 1, "theme", ""],
    ]
    assert pages(pro) == ["/both"] and pages(plan) == ["/both"]
    assert stats.site_metrics(ch, pro)["pageviews"] == 1
    assert pages(dark) == ["/kept"]
    # The kept view's key set (schema migration 18) still holds plan=pro: a purged site's filters of several keys
    # read the events' side.
    assert not stats._by_keys(stats._resolve(ch, value))
    assert pages(value) == ["/both"] and stats.site_metrics(ch, value)["pageviews"] == 1


def test_a_list_under_one_browser_filter_counts_only_the_kept_rows_after_a_purge(ch: Client) -> None:
    """`filter_hours` (schema migration 16) is not purged: a period reaching before the floor reads the raw rows,
    as every filtered answer does; one after it still reads `filter_hours`."""
    views = [row(bid="o1", pathname="/old", ua_browser="Firefox"), row(bid="o2", pathname="/old", ua_browser="Chrome")]
    views += [row(bid="n1", pathname="/new", ua_browser="firefox", date_created=T0 + 3 * DAY)]
    assert hits.apply_batch(ch, [hits.NewView(v) for v in views]) == [None] * 3
    firefox = (Filter("browser", "eq", "firefox"),)
    everything = Query(SITE, None, None, firefox)
    assert [r["path"] for r in stats.list_stats(ch, everything, "pages", True, Page())] == ["/new", "/old"]

    assert retention.purge_step(ch, SITE, T0 + DAY) == retention.Step(2)

    assert stats._hourly_groups(ch, everything, "path", ("visitors", "page_visitors")) is None  # before the floor
    assert stats.list_stats(ch, everything, "pages", True, Page()) == [
        {"path": "/new", "visitors": 1, "visitors_percentage": 1.0}
    ]
    later = Query(SITE, (T0 + DAY) * 1000, None, firefox)
    assert stats._hourly_groups(ch, later, "path", ("visitors", "page_visitors")) is not None
    assert stats.list_stats(ch, later, "pages", True, Page()) == [
        {"path": "/new", "visitors": 1, "visitors_percentage": 1.0}
    ]
