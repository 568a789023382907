"""Randomized equivalence on ClickHouse: every stats answer equals the plain Reference of the SQLite store's test.

The same random rows, filters and periods as the SQLite store's test, written
the way ingestion writes them: views without durations, then unloads in
later batches (some views unloaded two or three times, the last one
winning), events with their views, custom events afterwards, and some events
stored before their views (matched by beacon id at read time). Each state is
checked before and after the background merges are forced to collapse every
unload pair, on the real clickhouse-server (18.16 here) and on chDB (a current
release).
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from medama_core.store.clickhouse import entries as ch_entries
from medama_core.store.clickhouse import goal_counts as ch_goals
from medama_core.store.clickhouse import hits, schema, site_data
from medama_core.store.clickhouse import stats as ch_stats
from medama_core.store.clickhouse.client import Client
from medama_core.store.filters import Filter
from medama_core.store.query import LISTS, Page, Query, previous_period
from medama_core.store.rows import VIEW_COLUMNS
from tests.store.test_equivalence import (
    PATHS,
    Reference,
    expected_goals,
    intervals_for,
    random_filters,
    random_period,
    random_rows,
    random_value,
)
from tests.store.test_stats import SITE

BATCH = 200  # ops per apply_batch, as the writer's group commit under load


def store(
    client: Client, rnd: random.Random, rows: list[dict[str, Any]], events: list[tuple[Any, ...]], orphans: bool = True
) -> None:
    """Write rows and events as ingestion would: loads (with some events), then unloads and custom events
    (and, with `orphans`, the events of some views before their view)."""
    by_bid: dict[str, list[tuple[Any, ...]]] = {}
    for event in events:
        by_bid.setdefault(event[0], []).append(event)
    early = set(rnd.sample([row["bid"] for row in rows], len(rows) // 20 if orphans else 0))
    hits.store_events(client, [event for bid in sorted(early) for event in by_bid.get(bid, [])])
    ops: list[hits.Op] = []
    later: list[hits.Op] = []
    for row in rows:
        view = tuple(None if column == "duration_ms" else row[column] for column in VIEW_COLUMNS)
        own = by_bid.get(row["bid"], []) if row["bid"] not in early else []
        loaded = [rnd.random() < 0.5 for _ in own]
        loads = [event for event, load in zip(own, loaded, strict=True) if load]
        ops.append(hits.NewView(view, loads, row.get("referrer_path", "")))
        custom = [event for event, load in zip(own, loaded, strict=True) if not load]
        if custom:
            later.append(hits.NewEvents(custom))
        if row["duration_ms"] is not None:
            for _ in range(rnd.choice([0, 0, 1, 2])):  # earlier unloads, replaced by the last
                later.append(hits.Duration(row["bid"], rnd.randrange(0, 10**6)))
            later.append(hits.Duration(row["bid"], row["duration_ms"]))
    rnd.shuffle(later)
    final = {op.bid: i for i, op in enumerate(later) if isinstance(op, hits.Duration)}
    for i, op in enumerate(later):  # the last unload of each view must come last
        if isinstance(op, hits.Duration):
            row_duration = next(r["duration_ms"] for r in rows if r["bid"] == op.bid)
            if final[op.bid] == i:
                later[i] = hits.Duration(op.bid, row_duration)
    for batch in (ops, later):
        for start in range(0, len(batch), BATCH):
            assert hits.apply_batch(client, batch[start : start + BATCH]) == [None] * len(batch[start : start + BATCH])


def compare_all(client: Client, ref: Reference, q: Query) -> None:
    """Every endpoint and variant for `q` must equal the reference."""
    context = f"query {q}"
    assert ch_stats.site_metrics(client, q) == ref.summary(q), context
    for interval in intervals_for(q):
        assert q.start_us is not None and q.end_us is not None
        got = ch_stats.interval_metrics(client, q, interval, q.start_us, q.end_us)
        assert got == ref.interval(q, interval), f"{context} {interval}"
    if q.start_us is not None and q.end_us is not None:
        before = Query(q.hostname, *previous_period(q.start_us, q.end_us), q.filters)
        interval = random.Random(q.start_us).choice(intervals_for(q))
        expected = {"current": ref.summary(q), "previous": ref.summary(before), "interval": ref.interval(q, interval)}
        assert ch_stats.summary(client, q, True, interval) == expected, f"{context} summary {interval}"
        assert ch_stats.summary(client, q, False, None) == {"current": ref.summary(q)}, context
    for endpoint in LISTS:
        for summary in (True, False):
            for variant in (False, True) if endpoint in ("referrers", "languages") else (False,):
                full = ref.listing(q, endpoint, summary, variant)
                page = random.Random(len(full)).choice((Page(), Page(3), Page(2, 1)))
                got = ch_stats.list_stats(client, q, endpoint, summary, page, variant)
                assert got == page.cut(full), f"{context} {endpoint} summary={summary} variant={variant} {page}"
    for summary in (True, False):
        full = ref.time(q, summary)
        for page in (Page(), Page(2), Page(1, 1)):
            assert ch_stats.time_stats(client, q, summary, page) == page.cut(full), f"{context} time {summary} {page}"
    expected = ref.properties(q)
    for page in (Page(), Page(1, 1)):
        assert ch_stats.properties(client, q, page) == page.cut(expected), f"{context} properties {page}"
    # Entry and exit pages: the internal referrer's path survives every unload's copy of its view.
    for summary in (True, False):
        for name, fn, want in (
            ("entries", ch_entries.entries, ref.entries(q, summary)),
            ("exits", ch_entries.exits, ref.exits(q, summary)),
        ):
            page = random.Random(len(want)).choice((Page(), Page(3), Page(2, 1)))
            assert fn(client, q, summary, page) == page.cut(want), f"{context} {name} summary={summary} {page}"
    chosen, expected_counts = expected_goals(ref, q)
    assert ch_goals.goal_counts(client, q, chosen) == expected_counts, f"{context} goals"


@pytest.mark.parametrize("seed", range(2))  # 3 before: CI time (each seed ~12 s on 18.16, ~20 s on chDB)
def test_every_endpoint_equals_the_reference(seed: int, ch: Client) -> None:
    rnd = random.Random(seed)
    rows, events = random_rows(rnd)
    store(ch, rnd, rows, events)
    ref = Reference(rows, events)
    for state in ("unmerged", "merged"):
        if state == "merged":
            for table in ("views", "events", "view_keys", "filter_hours", *schema.COPIES):
                ch.command(f"OPTIMIZE TABLE {table} FINAL")
            for table in ("views", *schema.COPIES):
                assert ch.rows(f"SELECT countIf(sign = -1) FROM {table}") == [[0]], table  # every pair collapsed
        else:
            assert ch.rows("SELECT countIf(sign = -1) > 0 FROM views") == [[1]]  # pairs to cancel at read time
        for _ in range(2):
            compare_all(ch, ref, Query(SITE, *random_period(rnd)))
        for _ in range(3):
            compare_all(ch, ref, Query(SITE, *random_period(rnd), random_filters(rnd)))
        pages = ",".join(rnd.sample(PATHS, rnd.randrange(1, 4)))
        page_filter = Filter("path", "in", pages) if rnd.random() < 0.5 else Filter("path", "eq", pages.split(",")[0])
        compare_all(ch, ref, Query(SITE, *random_period(rnd), (page_filter, *random_filters(rnd)[:1])))
        # A country by equality reads the copy sorted by country (schema.COPIES), the other filter tested on it.
        countries = ",".join(random_value(rnd, "country") for _ in range(rnd.randrange(1, 3)))
        country_filter = Filter("country", rnd.choice(("eq", "in")), countries)
        compare_all(ch, ref, Query(SITE, *random_period(rnd), (country_filter, *random_filters(rnd)[:1])))
        # A browser (with a country or another filter) reads the copy sorted by browser then country, a referrer
        # (a group, a host, or '' for direct traffic) the one sorted by its group then host (migrations 11, 12).
        browsers = ",".join(random_value(rnd, "browser") for _ in range(rnd.randrange(1, 3)))
        browser_filter = (
            Filter("browser", "in", browsers) if rnd.random() < 0.5 else Filter("browser", "eq", browsers.split(",")[0])
        )
        extra = random_filters(rnd)[:1] if rnd.random() < 0.5 else (Filter("country", "eq", countries.split(",")[0]),)
        compare_all(ch, ref, Query(SITE, *random_period(rnd), (browser_filter, *extra)))
        # One browser or referrer filter alone: the compact lists from `filter_hours` (migration 16).
        compare_all(ch, ref, Query(SITE, *random_period(rnd), (browser_filter,)))
        referrers = ",".join(rnd.choice(("", random_value(rnd, "referrer"))) for _ in range(rnd.randrange(1, 3)))
        op = "in" if "," in referrers else "eq"
        compare_all(
            ch, ref, Query(SITE, *random_period(rnd), (Filter("referrer", op, referrers), *random_filters(rnd)[:1]))
        )
        compare_all(ch, ref, Query(SITE, *random_period(rnd), (Filter("referrer", "eq", referrers.split(",")[-1]),)))


@pytest.mark.parametrize("seed", range(2))
def test_property_filtered_lists_read_from_prop_views_equal_the_reference(seed: int, ch: Client) -> None:
    """With no event stored before its view, every property-filtered compact list is read from `prop_views`
    alone (stats._prop_groups), with and without view filters, before and after the merges."""
    rnd = random.Random(100 + seed)
    rows, events = random_rows(rnd)
    store(ch, rnd, rows, events, orphans=False)
    ref = Reference(rows, events)
    names = sorted({event[3] for event in events})
    for state in ("unmerged", "merged"):
        if state == "merged":
            for table in ("views", "events", "prop_views"):
                ch.command(f"OPTIMIZE TABLE {table} FINAL")
        for _ in range(4):
            q = random_prop_query(rnd, names)
            for endpoint in LISTS:
                for variant in (False, True) if endpoint in ("referrers", "languages") else (False,):
                    kind = LISTS[endpoint][0]
                    if variant:
                        kind = {"referrer": "referrer_host", "language": "language_dialect"}.get(kind, kind)
                    assert ch_stats._prop_groups(ch, q, schema.LABELS[kind]) is not None  # the events-side read
                    for page in (Page(), Page(3, 2)) if endpoint == "pages" else (Page(),):
                        got = ch_stats.list_stats(ch, q, endpoint, True, page, variant)
                        want = page.cut(ref.listing(q, endpoint, True, variant))
                        assert got == want, f"{state} {q} {endpoint} {variant} {page}"


def random_prop_query(rnd: random.Random, names: list[str]) -> Query:
    """A query with a property name filter (`in` one or two names), often a value filter, and sometimes up to two
    other filters."""
    op = rnd.choice(("eq", "neq", "in"))
    chosen = rnd.sample(names, min(len(names), rnd.randrange(1, 3) if op == "in" else 1))
    props = [Filter("prop_name", op, ",".join(chosen))]
    if rnd.random() < 0.6:
        op = rnd.choice(("eq", "contains", "not_in"))
        props.append(Filter("prop_value", op, random_value(rnd, "prop_value")))
    others = tuple(f for f in random_filters(rnd)[:2] if f.field not in ("prop_name", "prop_value"))
    return Query(SITE, *random_period(rnd), (*props, *(others if rnd.random() < 0.5 else ())))


def compare_summary_and_time(client: Client, ref: Reference, q: Query) -> None:
    """/summary (alone, with the previous period and an interval), the intervals, /time and the full pages list."""
    context = f"query {q}"
    assert ch_stats.site_metrics(client, q) == ref.summary(q), context
    if q.start_us is not None and q.end_us is not None:
        for interval in intervals_for(q):
            got = ch_stats.interval_metrics(client, q, interval, q.start_us, q.end_us)
            assert got == ref.interval(q, interval), f"{context} {interval}"
        before = Query(q.hostname, *previous_period(q.start_us, q.end_us), q.filters)
        interval = random.Random(q.start_us).choice(intervals_for(q))
        expected = {"current": ref.summary(q), "previous": ref.summary(before), "interval": ref.interval(q, interval)}
        assert ch_stats.summary(client, q, True, interval) == expected, f"{context} summary {interval}"
    for summary in (True, False):
        full = ref.time(q, summary)
        for page in (Page(), Page(2)):
            assert ch_stats.time_stats(client, q, summary, page) == page.cut(full), f"{context} time {summary} {page}"
    assert ch_stats.list_stats(client, q, "pages", False, Page()) == ref.listing(q, "pages", False, False), context


@pytest.mark.parametrize("seed", range(2))
def test_property_filtered_summary_and_time_read_the_events_side_and_equal_the_reference(seed: int, ch: Client) -> None:
    """With no event stored before its view, a property-filtered /summary, /time and full list take the views and
    their current rows from `views_by_prop`, under their key sets (stats._by_keys, schema migration 18), never from
    `views`: the same answers before the merges (older durations still stored beside the current ones), after them,
    once every row of `views` is deleted, and once those of `prop_views` and `prop_durations` are too. The rows are
    written as ingestion writes them: unloads in later batches (some views unloaded two or three times), custom
    events before or after their view's unloads, views with several properties."""
    rnd = random.Random(200 + seed)
    rows, events = random_rows(rnd)
    store(ch, rnd, rows, events, orphans=False)
    ref = Reference(rows, events)
    names = sorted({event[3] for event in events})
    queries: list[Query] = []
    for _ in range(1000):  # filters that may match several keys of a view (a pinned one: the next test), and views
        q = random_prop_query(rnd, names)
        if len(queries) < 4 and ch_stats._pinned(q) is None and ref.summary(q)["visitors"]:
            queries.append(q)
    assert len(queries) == 4
    several = "SELECT count() FROM (SELECT bid FROM prop_views GROUP BY bid HAVING uniqExact(name, value) > 1)"
    assert ch.rows(several)[0][0] > 0  # views with several properties
    # Every property of a view with a duration holds the view's last duration (its highest version).
    last = "SELECT site, bid, name, value, argMax(duration_ms, version) FROM prop_durations"
    last += " GROUP BY site, bid, name, value"
    durations = {(r["hostname"], r["bid"]): r["duration_ms"] for r in rows}
    props = ch.rows("SELECT DISTINCT site, bid, name, value FROM prop_views")
    want = {tuple(p): durations[(p[0], p[1])] for p in props if durations[(p[0], p[1])] is not None}
    assert {tuple(r[:4]): int(r[4]) for r in ch.rows(last)} == want
    stale = "SELECT count() > uniqExact(bid, name, value) FROM prop_durations"
    for state in ("unmerged", "merged", "no views", "views_by_prop alone"):
        if state == "unmerged":
            assert ch.rows(stale) == [[1]]  # durations replaced by later unloads, still stored
        if state == "merged":
            for table in ("views", "events", "prop_views", "prop_durations", "views_by_prop"):
                ch.command(f"OPTIMIZE TABLE {table} FINAL")
            assert ch.rows(stale) == [[0]]
        if state == "no views":
            ch.command("ALTER TABLE views DELETE WHERE 1")
            site_data.wait_for_mutations(ch, ("views",))
            assert ch.rows("SELECT count() FROM views") == [[0]]
        if state == "views_by_prop alone":
            for table in ("prop_views", "prop_durations"):
                ch.command(f"ALTER TABLE {table} DELETE WHERE 1")
            site_data.wait_for_mutations(ch, ("prop_views", "prop_durations"))
        for q in queries:
            assert ch_stats._by_keys(ch_stats._resolve(ch, q)), q  # the views' key sets (schema migration 18)
            compare_summary_and_time(ch, ref, q)


def pinned_query(rnd: random.Random, events: list[tuple[Any, ...]]) -> Query:
    """A query pinning a stored property (prop_name and prop_value by equality, in either case) or, one time in three,
    a name alone (prop_name by equality, perhaps with another name filter), sometimes with up to two other
    filters."""
    name, value = rnd.choice(events)[3:5]
    if rnd.random() < 0.3:
        name, value = name.upper(), value.lower()
    props: tuple[Filter, ...] = (Filter("prop_name", "eq", name), Filter("prop_value", "eq", value))
    if rnd.random() < 1 / 3:
        props = (
            Filter("prop_name", "eq", name),
            *((Filter("prop_name", "neq", "theme"),) if rnd.random() < 0.5 else ()),
        )
    others = tuple(f for f in random_filters(rnd)[:2] if f.field not in ("prop_name", "prop_value"))
    return Query(SITE, *random_period(rnd), (*props, *(others if rnd.random() < 0.5 else ())))


@pytest.mark.parametrize("seed", range(1))  # 2 before: CI time (seed 1 took 12 s on 18.16, 24 s on chDB)
def test_pinned_property_filters_read_views_by_prop_and_equal_the_reference(seed: int, ch: Client) -> None:
    """A filter pinning one property or name reads its rows of `views_by_prop` (schema migration 15) as `views`'
    own: every endpoint equals the reference before the merges (unload pairs and stale rows stored),
    after them, and its summaries, /time and lists once every row of `views`, `prop_views` and `prop_durations`
    is deleted. Views with the same property twice, or in two cases ("plan" and "Plan"), or two values of one
    name, count once."""
    rnd = random.Random(300 + seed)
    rows, events = random_rows(rnd)
    store(ch, rnd, rows, events, orphans=False)
    ref = Reference(rows, events)
    queries = [pinned_query(rnd, events) for _ in range(4)]
    twice = (
        "SELECT count() FROM (SELECT bid FROM prop_views GROUP BY bid, lower(name), lower(value) HAVING count() > 1)"
    )
    assert ch.rows(twice)[0][0] > 0  # views with a property twice
    for state in ("unmerged", "merged", "views_by_prop alone"):
        if state == "merged":
            for table in ("views", "events", "prop_views", "prop_durations", "views_by_prop"):
                ch.command(f"OPTIMIZE TABLE {table} FINAL")
        if state == "views_by_prop alone":
            for table in ("views", "prop_views", "prop_durations"):
                ch.command(f"ALTER TABLE {table} DELETE WHERE 1")
            site_data.wait_for_mutations(ch, ("views", "prop_views", "prop_durations"))
        for q in queries:
            assert ch_stats._by_prop(ch_stats._resolve(ch, q)), q
            if state == "views_by_prop alone":
                compare_summary_and_time(ch, ref, q)
                for endpoint in LISTS:
                    for summary in (True, False):
                        got = ch_stats.list_stats(ch, q, endpoint, summary, Page())
                        assert got == ref.listing(q, endpoint, summary, False), f"{state} {q} {endpoint} {summary}"
            else:
                compare_all(ch, ref, q)


def test_pinned_property_filters_matching_events_stored_before_their_views_read_the_events_side(ch: Client) -> None:
    """An event stored before its view (site '') has no rows in `views_by_prop`: a pinned filter it matches reads
    the events' side and `views` (stats._prop_source), and equals the reference; one it does not match reads
    `views_by_prop`."""
    rnd = random.Random(400)
    rows, events = random_rows(rnd)
    store(ch, rnd, rows, events, orphans=True)
    ref = Reference(rows, events)
    early = {
        (str(name).lower(), str(value).lower())
        for name, value in ch.rows("SELECT name, value FROM events WHERE site = ''")
    }
    chosen = {True: 0, False: 0}
    for _ in range(12):
        q = pinned_query(rnd, events)
        fields = {"prop_name": 0, "prop_value": 1}  # pinned_query's filters: eq, and neq on a name
        orphaned = any(
            all((pair[fields[f.field]] == f.value.lower()) == (f.op == "eq") for f in q.prop_filters) for pair in early
        )
        assert ch_stats._by_prop(ch_stats._resolve(ch, q)) is not orphaned, q
        chosen[orphaned] += 1
        compare_summary_and_time(ch, ref, q)
    assert all(chosen.values()), chosen
