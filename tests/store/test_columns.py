"""Column copies of closed days (store/sqlite/columns.py, store/sqlite/scan.py): encoding, masks, quantiles, upkeep.

The property tests state the invariant that matters: for any values stored and
any filter, the column copies give exactly what the raw rows give through the
SQL of store/filters.py.
"""

from __future__ import annotations

import json
import sqlite3
from array import array
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medama_core.store.aggregate import BOUNCE_MAX_MS, BOUNCE_MIN_MS, Group, Run, quantile_cont
from medama_core.store.filters import FIELDS, OPERATORS, PROP_FIELDS, Filter, ascii_lower
from medama_core.store.sqlite import columns, rollups, scan, stats
from medama_core.store.sqlite.db import Transaction
from medama_core.store.sqlite.rollups import KIND_SQL, KINDS
from tests.store.test_stats import DAY, FAR_FUTURE, HOUR, SITE, event, insert, insert_events, new_db, view

T_DAY = 1_717_200_000_000 // DAY * DAY  # a UTC midnight


@pytest.fixture(autouse=True, scope="module")
def _every_day_copied() -> Any:
    """Copy every day with a view and roll up every kind, however few the views (the thresholds of
    store/sqlite/rollups.py are for real sites, tested in test_equivalence.py)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rollups, "MIN_BLOCK_VIEWS", 0)
        patch.setattr(rollups, "SMALL_SITE_VIEWS", 0)
        yield


TEXTS = ["", "a", "A", "a_b", "a%b", "/x", "/X", "é", "É", "ß", "x,y", "Unknown", "  ", "İ"]
VIEW_FIELDS = [field for field in FIELDS if field not in PROP_FIELDS]
ROW_COLUMNS = {
    "pathname": "path",
    "referrer_host": "referrer",
    "referrer_group": "referrer",
    "utm_source": "utm_source",
    "utm_medium": "utm_medium",
    "utm_campaign": "utm_campaign",
    "ua_browser": "browser",
    "ua_os": "os",
    "ua_device_type": "device",
    "country": "country",
    "language_base": "language",
    "language_dialect": "language",
}

text = st.sampled_from(TEXTS) | st.text(max_size=4)
FEW = ["a", "A", "/x", "/X", "é", "É", "", "a_b", "x,y"]  # at most 9 values: copies with 3 codes a plane exist
stored_text = st.sampled_from(FEW) | st.sampled_from(FEW) | text
rows_strategy = st.lists(
    st.fixed_dictionaries(
        {name: stored_text for name in ROW_COLUMNS}
        | {
            "is_unique_user": st.integers(0, 1),
            "is_unique_page": st.integers(0, 1),
            "duration_ms": st.none() | st.integers(0, 6000) | st.sampled_from([0, 1, 100, 5000, 2**33]),
            "date_created": st.integers(T_DAY, T_DAY + DAY - 1),
        }
    ),
    min_size=1,
    max_size=25,
)
CASES = [str, str.upper, str.lower, str.swapcase]


@st.composite
def filters_for(draw: st.DrawFn, rows: list[dict[str, Any]]) -> Filter:
    """A filter on a view field whose value is often a stored value in another case, or a list of them."""
    field = draw(st.sampled_from(VIEW_FIELDS))
    stored = [row[column] for row in rows for column, f in ROW_COLUMNS.items() if f == field]
    one = st.sampled_from(stored).map(lambda v: draw(st.sampled_from(CASES))(v)) | text
    value = draw(one | one | st.lists(one, min_size=1, max_size=3).map(",".join))
    return Filter(field, draw(st.sampled_from(OPERATORS)), value)


@st.composite
def prop_filters_for(draw: st.DrawFn, events: list[tuple[int, str, str, int]]) -> Filter:
    """A prop filter whose value is often a stored event name or value in another case, or a list of them."""
    field = draw(st.sampled_from(sorted(PROP_FIELDS)))
    stored = [name if field == "prop_name" else value for _, name, value, _ in events] or [""]
    one = st.sampled_from(stored).map(lambda v: draw(st.sampled_from(CASES))(v)) | text
    value = draw(one | one | st.lists(one, min_size=1, max_size=3).map(",".join))
    return Filter(field, draw(st.sampled_from(OPERATORS)), value)


events_strategy = st.lists(
    st.tuples(st.integers(0, 24), stored_text, stored_text, st.integers(-DAY // 2, DAY)), max_size=20
)  # (view index, name, value, time after the view: some the day before or after)


def _stored(
    rows: list[dict[str, Any]], plane_codes: int, events: tuple[tuple[int, str, str, int], ...] = ()
) -> sqlite3.Connection:
    conn = new_db()
    views = [view(**row) for row in rows]
    insert(conn, views)
    insert_events(
        conn,
        [
            event(views[i % len(views)]["bid"], name, value, views[i % len(views)]["date_created"] + after)
            for i, name, value, after in events
        ],
    )
    old = columns.PLANE_CODES
    columns.PLANE_CODES = plane_codes
    try:
        rollups.refresh(conn, FAR_FUTURE)
    finally:
        columns.PLANE_CODES = old
    return conn


def raw_groups(conn: sqlite3.Connection, query: stats.Query, label: str) -> dict[Any, Group]:
    """The reference: every row of the period through the filters' SQL, counted and sorted in Python."""
    params: dict[str, object] = {}
    where = stats._where(query, params, query.start, query.end, "v.date_created")
    sql = f"SELECT {label}, v.is_unique_user, v.is_unique_page, v.duration_ms FROM views v WHERE {where}"
    groups: dict[Any, Group] = {}
    durations: dict[Any, list[int]] = {}
    for value, unique_user, unique_page, duration in conn.execute(sql, params):
        group = groups.setdefault(value, Group())
        group.pageviews += 1
        group.visitors += unique_user
        group.page_visitors += unique_page
        if duration is not None:
            group.measured += 1
            group.duration_sum += duration
            group.timed += unique_user
            group.bounces += unique_user if BOUNCE_MIN_MS <= duration <= BOUNCE_MAX_MS else 0
            group.ones += duration <= 1
            group.zeros += duration <= 0
            durations.setdefault(value, []).append(duration)
    for value, group in groups.items():
        group.runs = [Run.of(sorted(durations.get(value, [])))]
    return groups


def _counts(groups: dict[Any, Any], full: bool) -> dict[Any, tuple[Any, ...]]:
    if not full:
        return {label: (g.visitors, g.page_visitors) for label, g in groups.items()}
    fields = ("visitors", "page_visitors", "pageviews", "bounces", "timed", "duration_sum", "measured", "zeros")
    return {
        label: (*(getattr(g, f) for f in fields), g.ones, g.duration(0.25), g.duration()) for label, g in groups.items()
    }


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    rows=rows_strategy,
    events=events_strategy,
    plane_codes=st.sampled_from([255, 2, 3]),
    kind=st.sampled_from(sorted(columns.KIND_COLUMNS)),
    edges=st.just((0, DAY - 1)) | st.tuples(st.integers(0, DAY - 1), st.integers(0, DAY - 1)),
    # Selected views picked row by row (0: always, as a page filter's few views; 16: as shipped, which a
    # day of at most 25 views rarely meets), and their durations parted per key by passes or view by view.
    pick_ratio=st.sampled_from([0, scan.PICK_RATIO]),
    few_keys=st.sampled_from([0, scan.FEW_KEYS]),
    # Columns of more than this many values are long tails, coded by SQLite, their dictionaries ordered
    # and indexed every `step` values (as shipped, a day of at most 25 views has none).
    tails=st.sampled_from([(columns.PASS_VALUES, columns.INDEX_STEP), (2, 1), (2, 2), (3, 3)]),
)
def test_column_copies_answer_as_the_raw_rows(
    data: st.DataObject,
    rows: list[dict[str, Any]],
    events: list[tuple[int, str, str, int]],
    plane_codes: int,
    kind: int,
    edges: tuple[int, int],
    pick_ratio: int,
    few_keys: int,
    tails: tuple[int, int],
) -> None:
    saved = scan.PICK_RATIO, scan.FEW_KEYS, columns.PASS_VALUES, columns.INDEX_STEP
    scan.PICK_RATIO, scan.FEW_KEYS = pick_ratio, few_keys  # type: ignore[misc]
    columns.PASS_VALUES, columns.INDEX_STEP = tails  # type: ignore[misc]
    try:
        _copies_answer_as_the_raw_rows(data, rows, events, plane_codes, kind, edges)
    finally:
        scan.PICK_RATIO, scan.FEW_KEYS, columns.PASS_VALUES, columns.INDEX_STEP = saved  # type: ignore[misc]


def _copies_answer_as_the_raw_rows(
    data: st.DataObject,
    rows: list[dict[str, Any]],
    events: list[tuple[int, str, str, int]],
    plane_codes: int,
    kind: int,
    edges: tuple[int, int],
) -> None:
    flts = data.draw(st.lists(filters_for(rows), max_size=2))
    # Prop filters on views: an event of the view, at any time, matching all of them.
    flts += data.draw(st.lists(prop_filters_for(events), min_size=0 if flts else 1, max_size=2))
    conn = _stored(rows, plane_codes, events)
    if plane_codes == 255:  # with 2 or 3 codes a plane, a day of many values may be left uncopied
        assert conn.execute("SELECT 1 FROM column_days WHERE name = '~flags'").fetchone()
    start, end = T_DAY + min(edges), T_DAY + max(edges)
    query = stats.Query(SITE, start * 1000, end * 1000, tuple(flts))
    raw = raw_groups(conn, query, KIND_SQL[kind])
    for full in (False, True):
        ours = stats.snapshot(conn, stats.column_groups, query, kind, full)
        assert _counts(ours, full) == _counts(raw, full)
    raw_site = raw_groups(conn, query, KIND_SQL[KINDS["total"]])
    site, _ = stats.snapshot(conn, stats.column_buckets, query)

    def metrics(group: Any) -> tuple[Any, ...]:
        return group.visitors, group.pageviews, group.bounce_rate(), group.duration()  # what /summary reads

    assert [metrics(g) for g in site.values()] == [metrics(g) for g in raw_site.values()]
    assert set(site) <= {0}
    # Events: the period on their own time, filters on their view and on the name and value.
    view_flts = [flt for flt in flts if flt.field not in PROP_FIELDS]
    props = data.draw(st.lists(st.sampled_from(["prop_name", "prop_value"]), max_size=1))
    prop_filters = tuple(Filter(field, data.draw(st.sampled_from(OPERATORS)), data.draw(text)) for field in props)
    for span in ((start, end), (start - DAY, end + DAY)):
        q = stats.Query(SITE, span[0] * 1000, span[1] * 1000, (*view_flts, *prop_filters))
        copied = stats.snapshot(conn, stats.property_counts, q)
        conn.execute("SAVEPOINT raw")
        conn.execute("DELETE FROM column_days")
        assert copied == stats.property_counts(conn, q)
        conn.execute("ROLLBACK TO raw")
        conn.execute("RELEASE raw")
    conn.close()


def _tail_day(conn: sqlite3.Connection) -> columns.Day:
    """A day of 600 views of 300 paths (a long tail: two planes), two thirds of them with a duration."""
    rows = [
        {"pathname": f"/p{i % 300}", "duration_ms": None if i % 3 == 0 else i * 7, "date_created": T_DAY + i * 1000}
        for i in range(600)
    ]
    insert(conn, [view(**row) for row in rows])
    rollups.refresh(conn, FAR_FUTURE)
    conn.execute("BEGIN")
    return next(columns.load(conn, SITE, [T_DAY // DAY], ["pathname"], True))


def test_a_page_filter_on_a_long_tail_counts_no_values_and_picks_its_views() -> None:
    """A filter on one path of a day of many paths (two planes: more values than one plane holds)
    tells that it selects some of them without counting the values of the day's text, and its 2 views
    of 600 are picked from the planes row by row, which are not made big integers; the counts and
    durations are those of masking the whole planes (and so are a filtered summary's counts and
    medians); its label comes from the span `find` met."""
    conn = new_db()
    day = _tail_day(conn)
    column = day.columns["pathname"]
    assert len(column.planes) == 2
    day_scan = scan.DayScan(day)
    mask = day_scan.codes_mask(column, column.find(["/p7"]) or [])
    assert column.dictionary._count is None
    fields = ("visitors", "pageviews", "measured", scan.DURATION_SUM)
    counts, runs = day_scan.group_counts("pathname", mask, fields, True)
    assert column.dictionary._plain is None  # its label read from the span found, the text not scanned again
    # A filtered /summary's buckets and medians from the same rows (every view of this day is in hour 0).
    picks = day_scan.picks(mask)
    assert picks is not None and len(picks) == 2
    assert day_scan.in_hours(picks, 0, 0) == picks and day_scan.in_hours(picks, 1, 23) == []
    site = day_scan.site_counts(picks)
    run = day_scan.masked_run(picks, lambda lo, hi: [], True)
    assert not day_scan._ints
    assert (site.pageviews, site.visitors, scan.quantile([run], 0.5)) == (2, 2, (7 * 7 + 307 * 7) / 2)
    assert site == day_scan.site_counts(mask)
    assert scan.quantile([day_scan.masked_run(mask, lambda lo, hi: [], True)], 0.25) == scan.quantile([run], 0.25)
    assert counts["pageviews"] == {"/p7": 2} and runs == {"/p7": array("q", [7 * 7, 307 * 7])}
    saved = scan.PICK_RATIO
    scan.PICK_RATIO = 10**6  # type: ignore[misc]
    try:
        assert scan.DayScan(day).group_counts("pathname", mask, fields, True) == (counts, runs)
    finally:
        scan.PICK_RATIO = saved  # type: ignore[misc]
    conn.execute("COMMIT")
    conn.close()


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.lists(st.integers(0, 10**6), max_size=40).map(sorted), min_size=1, max_size=4),
    picks=st.lists(st.booleans(), min_size=40, max_size=40),
    q=st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]),
    step=st.sampled_from([1, 3, 64]),
)
def test_quantile_over_masked_runs_equals_sorting(
    values: list[list[int]], picks: list[bool], q: float, step: int
) -> None:
    sources: list[scan.Source] = []
    chosen: list[int] = []
    old = scan.SAMPLE_STEP
    scan.SAMPLE_STEP = step  # samples every `step` values: windows of `step` values are read
    try:
        for index, run in enumerate(values):
            if index % 2:
                sources.append(scan.ArrayRun(array("q", run)))
                chosen += run
            else:
                mask = bytes(0xFF if picks[i] else 0 for i in range(len(run)))
                samples = run[step - 1 :: step]
                sources.append(scan.MaskedRun(samples, len(run), lambda lo, hi, run=run: run[lo:hi], mask))
                chosen += [v for v, pick in zip(run, picks, strict=False) if pick]
        expected = quantile_cont([rollups.Run.of(sorted(chosen))], q) if chosen else None
        assert scan.quantile(sources, q) == expected
    finally:
        scan.SAMPLE_STEP = old


@given(values=st.lists(text, max_size=300), plane_codes=st.sampled_from([2, 3, 16, 255]))
def test_column_codes_decode_to_the_values(values: list[str], plane_codes: int) -> None:
    old = columns.PLANE_CODES
    columns.PLANE_CODES = plane_codes
    try:
        encoded = columns.encode_column(values)
    finally:
        columns.PLANE_CODES = old
    if len(set(values)) > plane_codes**2:
        assert encoded is None
        return
    assert encoded is not None
    dictionary, data = encoded
    n = len(values)
    planes = [data[i : i + n] for i in range(0, len(data), n)] if n else []
    assert 0 not in data
    if len(planes) == 1:
        assert [dictionary[code - 1] for code in planes[0]] == values
    elif planes:
        assert [dictionary[(h - 1) * plane_codes + lo - 1] for h, lo in zip(*planes, strict=True)] == values


def _copies(conn: sqlite3.Connection) -> dict[tuple[int, str], tuple[str, bytes]]:
    rows = conn.execute("SELECT day, name, dictionary, data FROM column_days")
    return {(day, name): (dictionary, data) for day, name, dictionary, data in rows}


def test_backfill_copies_days_built_without_a_copy() -> None:
    conn = new_db()
    times = [T_DAY + i * 7 * HOUR for i in range(12)]
    insert(conn, [view(date_created=at, duration_ms=i * 100, pathname=f"/{i % 3}") for i, at in enumerate(times)])
    rollups.refresh(conn, FAR_FUTURE)
    built = _copies(conn)
    assert {day for day, _ in built} == {(T_DAY + i * 7 * HOUR) // DAY for i in range(12)}
    conn.execute("DELETE FROM column_days")
    assert columns.has_missing(conn)
    assert columns.backfill(conn, 2) == 2
    while columns.backfill(conn):
        pass
    assert not columns.has_missing(conn)
    assert _copies(conn) == built


def test_a_day_with_too_many_values_is_not_copied_and_reads_raw(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(columns, "PLANE_CODES", 2)  # at most 4 values
    conn = new_db()
    rows = [view(date_created=T_DAY + i * HOUR, pathname=f"/{i}", country="Spain") for i in range(6)]
    insert(conn, rows)
    rollups.refresh(conn, FAR_FUTURE)
    (meta,) = conn.execute("SELECT dictionary FROM column_days").fetchone()
    assert json.loads(meta)["rows"] == columns.NOT_COPIED
    query = stats.Query(SITE, T_DAY * 1000, (T_DAY + DAY) * 1000 - 1, (Filter("country", "eq", "spain"),))
    plan = stats.snapshot(conn, columns.plan, SITE, T_DAY, T_DAY + DAY - 1)
    assert plan.days == [] and plan.raw == [(T_DAY, T_DAY + 6 * HOUR - 1)]  # up to the last hour with rows
    got = stats.snapshot(conn, stats.list_stats, query, "pages", True, stats.Page())
    assert [row["path"] for row in got] == [f"/{i}" for i in range(6)]


def test_plan_uses_whole_hours_of_clean_copied_days() -> None:
    conn = new_db()
    insert(conn, [view(date_created=T_DAY + i * HOUR) for i in range(0, 72, 5)])
    rollups.refresh(conn, FAR_FUTURE)
    conn.execute("INSERT INTO rollup_dirty VALUES (?, ?)", (SITE, (T_DAY + DAY) // HOUR + 3))  # 03:00 of day 2
    start, end = T_DAY + 90 * 60_000, T_DAY + 3 * DAY - 1
    plan = stats.snapshot(conn, columns.plan, SITE, start, end)
    first = T_DAY // DAY
    # (the last row is at 22:00 of day 3: no hour after it is looked at)
    assert plan.days == [(first, 2, 23), (first + 1, 0, 2), (first + 1, 4, 23), (first + 2, 0, 22)]
    assert plan.raw == [(start, T_DAY + 2 * HOUR - 1), (T_DAY + DAY + 3 * HOUR, T_DAY + DAY + 4 * HOUR - 1)]
    # A copy of a day's first hours (today's closed hours): the hours after it are read raw.
    conn.execute("DELETE FROM rollup_dirty")
    with Transaction(conn):
        columns.build_day(conn, SITE, first + 2, 5)
    plan = stats.snapshot(conn, columns.plan, SITE, T_DAY + 2 * DAY, T_DAY + 3 * DAY - 1)
    assert plan.days == [(first + 2, 0, 5)]
    assert plan.raw == [(T_DAY + 2 * DAY + 6 * HOUR, T_DAY + 2 * DAY + 23 * HOUR - 1)]
    # A period of ten thousand years costs no more than the site's own hours.
    plan = stats.snapshot(conn, columns.plan, SITE, -62_135_596_800_000, 253_402_300_799_999)
    assert plan.days == [(first, 0, 23), (first + 1, 0, 23), (first + 2, 0, 5)]


def test_properties_with_view_filters_take_events_by_their_own_time() -> None:
    """Events are counted in the period of their own time, whichever day their view is on, from the
    events' copies of clean days, the same as from the raw rows."""
    evening = view(pathname="/a", date_created=T_DAY + 23 * HOUR + 30 * 60_000)
    morning = view(pathname="/A", date_created=T_DAY + 10 * HOUR)
    other = view(pathname="/b", date_created=T_DAY + 10 * HOUR)
    conn = new_db()
    insert(conn, [evening, morning, other])
    insert_events(
        conn,
        [
            event(evening["bid"], "plan", "pro", T_DAY + 23 * HOUR + 45 * 60_000),
            event(evening["bid"], "plan", "free", T_DAY + DAY + 15 * 60_000),  # the next day
            event(morning["bid"], "plan", "pro", T_DAY + 10 * HOUR + 5 * 60_000),
            event(morning["bid"], "theme", "dark", T_DAY + 14 * HOUR),
            event(other["bid"], "plan", "pro", T_DAY + 10 * HOUR + 5 * 60_000),
        ],
    )
    rollups.refresh(conn, FAR_FUTURE)
    page = Filter("path", "eq", "/a")
    cases = [
        (T_DAY, T_DAY + 12 * HOUR - 1, (), {("plan", "pro"): 1}),
        (T_DAY, T_DAY + 2 * DAY - 1, (), {("plan", "pro"): 2, ("plan", "free"): 1, ("theme", "dark"): 1}),
        (T_DAY + DAY, T_DAY + DAY + HOUR - 1, (), {("plan", "free"): 1}),
        (T_DAY + 10 * HOUR + 5 * 60_000, T_DAY + 14 * HOUR, (), {("plan", "pro"): 1, ("theme", "dark"): 1}),
        (T_DAY, T_DAY + 2 * DAY - 1, (Filter("prop_name", "eq", "PLAN"),), {("plan", "pro"): 2, ("plan", "free"): 1}),
    ]
    for start, end, props, expected in cases:
        query = stats.Query(SITE, start * 1000, end * 1000, (page, *props))
        assert stats.snapshot(conn, stats.property_counts, query) == expected, (start, end)
    days = {day for (day,) in conn.execute("SELECT day FROM column_days WHERE name = 'e:'")}
    assert days == {T_DAY // DAY, T_DAY // DAY + 1}


def test_prop_filters_on_views_follow_events_that_come_later() -> None:
    """A view's event pairs are in its day's copy; an event that comes later (here the next day) makes
    the view's hour dirty, so it is read raw until the refresher copies the day again."""
    early, late = view(date_created=T_DAY + 9 * HOUR), view(date_created=T_DAY + 15 * HOUR)
    conn = new_db()
    insert(conn, [early, late])
    insert_events(conn, [event(early["bid"], "plan", "pro", T_DAY + 9 * HOUR + 60_000)])
    rollups.refresh(conn, FAR_FUTURE)
    query = stats.Query(SITE, T_DAY * 1000, (T_DAY + DAY - 1) * 1000, (Filter("prop_value", "eq", "PRO"),))

    def pages() -> tuple[int, list[tuple[int, int, int]]]:
        got = stats.snapshot(conn, stats.list_stats, query, "pages", True, stats.Page())
        plan = stats.snapshot(conn, columns.plan, SITE, T_DAY, T_DAY + DAY - 1, props=True)
        return got[0]["visitors"] if got else 0, plan.days

    day = T_DAY // DAY
    assert pages() == (1, [(day, 9, 15)])  # from the copy (the site's rows are at 09:00-15:59)
    insert_events(conn, [event(late["bid"], "plan", "pro", T_DAY + DAY + HOUR)])
    # The site's rows now reach into the next day (the event), so the plan looks up to 23:00.
    assert pages() == (2, [(day, 9, 14), (day, 16, 23)])  # 15:00 is dirty: read raw
    rollups.refresh(conn, FAR_FUTURE)
    assert pages() == (2, [(day, 9, 23)])  # copied again, with the new pair
    conn.execute("DELETE FROM events WHERE bid = ?", (early["bid"],))
    assert pages() == (1, [(day, 10, 23)])
    rollups.refresh(conn, FAR_FUTURE)
    assert pages() == (1, [(day, 9, 23)])


def test_a_day_with_too_many_sets_of_event_pairs_serves_view_filters_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(columns, "PLANE_CODES", 2)  # at most 4 values a column
    rows = [view(date_created=T_DAY + i * HOUR) for i in range(6)]
    conn = new_db()
    insert(conn, rows)
    insert_events(conn, [event(row["bid"], "order", str(i)) for i, row in enumerate(rows)])
    rollups.refresh(conn, FAR_FUTURE)
    plain = stats.snapshot(conn, columns.plan, SITE, T_DAY, T_DAY + DAY - 1)
    props = stats.snapshot(conn, columns.plan, SITE, T_DAY, T_DAY + DAY - 1, props=True)
    assert plain.days == [(T_DAY // DAY, 0, 5)] and props.days == []
    query = stats.Query(SITE, T_DAY * 1000, (T_DAY + DAY - 1) * 1000, (Filter("prop_value", "in", "1,4"),))
    got = stats.snapshot(conn, stats.list_stats, query, "pages", True, stats.Page())
    assert [(row["path"], row["visitors"]) for row in got] == [("/", 2)]


def test_todays_closed_hours_get_a_copy_of_their_own() -> None:
    """refresh_open copies the closed hours of the open day; a later hour makes it copy again, and
    filtered answers over today equal the raw rows' throughout."""
    now = T_DAY + 5 * HOUR + 20 * 60_000  # 05:20 today
    conn = new_db()
    rows = [view(date_created=T_DAY + i * 20 * 60_000, country="Chile" if i % 4 else "Peru") for i in range(16)]
    insert(conn, rows)
    rollups.refresh(conn, now)
    assert columns.refresh_open(conn, now) == 1
    assert columns.refresh_open(conn, now) == 0  # up to date
    plan = stats.snapshot(conn, columns.plan, SITE, T_DAY, now)
    assert plan.days == [(T_DAY // DAY, 0, 4)] and plan.raw == [(T_DAY + 5 * HOUR, now)]
    query = stats.Query(SITE, T_DAY * 1000, now * 1000, (Filter("country", "neq", "peru"),))
    expected = [{"country": "Chile", "visitors": 12, "visitors_percentage": 1.0}]
    assert stats.snapshot(conn, stats.list_stats, query, "countries", True, stats.Page()) == expected
    later = now + 2 * HOUR  # 07:20: hour 5 and 6 closed, hour 5 had rows and is rebuilt
    rollups.refresh(conn, later)
    assert columns.refresh_open(conn, later) == 1
    plan = stats.snapshot(conn, columns.plan, SITE, T_DAY, later)
    assert plan.days == [(T_DAY // DAY, 0, 5)]  # (05:00 holds the last row)
    meta = conn.execute("SELECT dictionary FROM column_days WHERE name = ''").fetchone()[0]
    assert json.loads(meta)["last"] == 6
    assert stats.snapshot(conn, stats.list_stats, query, "countries", True, stats.Page()) == expected


def test_todays_copies_are_made_a_few_sites_per_call() -> None:
    now = T_DAY + 3 * HOUR + 60_000
    conn = new_db()
    sites = ["a.example", "b.example", "c.example"]
    insert(conn, [view(hostname=site, date_created=T_DAY + i * HOUR) for site in sites for i in range(3)])
    rollups.refresh(conn, now)
    assert [columns.refresh_open(conn, now, 2) for _ in range(3)] == [2, 1, 0]
    last = "SELECT json_extract(dictionary, '$.last') FROM column_days WHERE name = '' ORDER BY hostname"
    assert [row[0] for row in conn.execute(last)] == [2, 2, 2]


def test_a_site_whose_rows_are_gone_is_not_copied_again_and_again() -> None:
    """Rows deleted after their hours were rolled up: the copy records that there is nothing to copy,
    so the refresher moves on instead of rebuilding it on every call."""
    now = T_DAY + 3 * HOUR + 60_000
    conn = new_db()
    insert(conn, [view(date_created=T_DAY + i * HOUR) for i in range(3)])
    rollups.refresh(conn, now)
    conn.execute("DELETE FROM views")
    assert columns.refresh_open(conn, now) == 1
    assert columns.refresh_open(conn, now) == 0
    plan = stats.snapshot(conn, columns.plan, SITE, T_DAY, now)
    assert plan.days == []


# Values made of the characters that build the JSON text's structure, so that quotes, commas,
# backslashes and brackets inside values meet the separators `find` counts.
tricky = st.text(alphabet=st.sampled_from(['"', ",", " ", "\\", "[", "]", "a", "A", "é", "\n", "\u2028"]), max_size=6)


@settings(max_examples=500, deadline=None)
@given(values=st.lists(tricky, max_size=30), data=st.data())
def test_find_in_the_dictionary_text_equals_parsing_it(values: list[str], data: st.DataObject) -> None:
    """Column.find gives exactly the positions whose ASCII-lowered value is wanted (or gives up with None),
    and Column.value what the parsed dictionary holds, for values shaped like the text's own syntax."""
    wanted = data.draw(st.lists(st.one_of(st.sampled_from(values or [""]), tricky), max_size=3))
    lowered = [ascii_lower(value) for value in wanted]
    column = columns.Column(json.dumps(values), (b"",), 255)
    found = column.find(lowered)
    expected = [i for i, value in enumerate(values) if ascii_lower(value) in lowered]
    if found is not None:
        assert found == expected
    else:
        assert '\\", "' in json.dumps(values) or any('", "' in json.dumps(value) for value in lowered)
    for position in found or ():
        assert column.value(position) == values[position]


@settings(max_examples=500, deadline=None)
@given(values=st.lists(tricky, max_size=40), data=st.data())
def test_a_dictionary_read_by_windows_equals_parsing_it(values: list[str], data: st.DataObject) -> None:
    """Dictionary.values_at, batches (as written and lowered) and positions give what the parsed list
    gives, whatever the window (a few characters: every value its own batch, windows cut anywhere)."""
    window = data.draw(st.sampled_from([1, 5, 17, columns.DICTIONARY_WINDOW]))
    saved = columns.DICTIONARY_WINDOW
    columns.DICTIONARY_WINDOW = window  # type: ignore[misc]
    try:
        dictionary = columns.Dictionary(json.dumps(values))
        order = data.draw(st.permutations(range(len(values))))
        assert dictionary.values_at(order) == [values[i] for i in order]
        assert [value for batch in dictionary.batches() for value in batch] == values
        assert [value for batch in dictionary.batches(lowered=True) for value in batch] == [
            ascii_lower(value) for value in values
        ]
        wanted = set(data.draw(st.lists(st.one_of(st.sampled_from(values or [""]), tricky), max_size=3)))
        assert dictionary.positions(wanted) == [i for i, value in enumerate(values) if value in wanted]
    finally:
        columns.DICTIONARY_WINDOW = saved  # type: ignore[misc]


@pytest.mark.parametrize("values", [["a", ", ", "b"], [", ", ", "], ["x", ", "], [", "]])
def test_find_gives_up_on_the_value_that_is_the_separator(values: list[str]) -> None:
    """The value `, ` is written `", "`, the very text between two values: searched for, it was found at
    every separator (`[", ", ", "]` gave positions 0, 1, 1; a full run's hypothesis draw met it). A
    dictionary holding it is read whole for its values (not by the separators' offsets)."""
    column = columns.Column(json.dumps(values), (b"",), 255)
    assert column.find([", "]) is None
    assert column.find(["b", "x", "a"]) == [i for i, value in enumerate(values) if value in ("a", "b", "x")]
    assert not column.dictionary.plain
    assert column.dictionary.values_at(range(len(values))) == values


@settings(max_examples=1000, deadline=None)
@given(values=st.lists(tricky, max_size=30))
def test_a_dictionary_counted_in_its_text_has_as_many_values_as_parsed(values: list[str]) -> None:
    """len(Column) counts the values in the JSON text without parsing it (a filter asks whether it
    selects all of them): always the parsed list's length, for values shaped like the text's syntax; and
    the dictionary stays unparsed (a long tail's day holds tens of thousands of values)."""
    column = columns.Column(json.dumps(values), (b"",), 255)
    assert len(column) == len(values)
    assert column.dictionary._ends is None


@pytest.mark.parametrize("values", [[], [""], ["a", ", ", "b"], [", ", ", "], ["x", ", "], [", "]])
def test_the_separator_value_is_counted_once(values: list[str]) -> None:
    assert len(columns.Column(json.dumps(values), (b"",), 255)) == len(values)


def _tail_copy(conn: sqlite3.Connection, paths: list[str], pass_values: int, step: int) -> None:
    """A day whose views have `paths` (one view each, and a second for every third), its path column a
    long tail (more than `pass_values` values) whose dictionary is indexed every `step` values."""
    rows = [view(pathname=path, date_created=T_DAY + i * 1000) for i, path in enumerate(paths + paths[::3])]
    insert(conn, rows)
    saved = columns.PASS_VALUES, columns.INDEX_STEP
    columns.PASS_VALUES, columns.INDEX_STEP = pass_values, step  # type: ignore[misc]
    try:
        rollups.refresh(conn, FAR_FUTURE)
    finally:
        columns.PASS_VALUES, columns.INDEX_STEP = saved  # type: ignore[misc]


# Values with escapes, quotes and commas (some make the text not plain: no index, the full scan), their
# case variants, and the value that is the separator.
indexed_text = tricky | st.sampled_from(["/a", "/A", "/b", "/B/c", "/b/C", ", ", '", ', "x", "X"])


@settings(max_examples=150, deadline=None)
@given(values=st.lists(indexed_text, min_size=3, max_size=30, unique=True), data=st.data())
def test_an_indexed_long_tail_finds_what_a_full_scan_finds(values: list[str], data: st.DataObject) -> None:
    """A long tail's dictionary is stored in (ASCII-lowered, value) order, every case variant of a value
    together, with a sparse index when its text is plain; `find` there reads samples and blocks, never the
    whole text, and gives the positions the full scan of the text gives (block boundaries at any step, the
    variants across them), the values met, and the count."""
    step = data.draw(st.sampled_from([1, 2, 3, 5]))
    conn = new_db()
    _tail_copy(conn, values, 2, step)
    conn.execute("BEGIN")
    day = next(columns.load(conn, SITE, [T_DAY // DAY], ["pathname"], False))
    column = day.columns["pathname"]
    stored = json.loads(conn.execute("SELECT dictionary FROM column_days WHERE name = 'pathname'").fetchone()[0])
    assert stored == sorted(values, key=lambda value: (ascii_lower(value), value))
    indexed = conn.execute("SELECT 1 FROM column_days WHERE name = ?", (columns.INDEX + "pathname",)).fetchone()
    assert bool(indexed) == (", " not in values and not any(value.endswith('", ') for value in values))
    wanted = data.draw(st.lists(st.sampled_from(values) | indexed_text, max_size=3))
    lowered = [ascii_lower(value) for value in wanted]
    found = column.find(lowered)
    expected = [i for i, value in enumerate(stored) if ascii_lower(value) in lowered]
    if indexed:
        assert found == expected
        assert column.dictionary.values_at(found) == [stored[i] for i in found]
        assert len(column) == len(stored)
        as_written = set(wanted)  # the labels whose runs a filtered list reads (Dictionary.positions)
        assert column.dictionary.positions(as_written) == [i for i, value in enumerate(stored) if value in as_written]
        assert column.dictionary._text is None  # none of it read whole
    assert columns.Dictionary(json.dumps(stored)).find(lowered) in (found, None)  # the full scan agrees
    assert column.dictionary.values_at(range(len(stored))) == stored
    conn.execute("COMMIT")
    conn.close()


def test_a_page_filtered_read_of_an_indexed_long_tail_reads_no_dictionary_text_whole() -> None:
    """A filter on one page (and a country) of a day of many paths, counted per path and over time, reads
    the path dictionary's index and a few bytes at its samples and one block, never the text whole (on a
    200k-path day it was half of a page-filtered panel's time), and answers as the raw rows."""
    conn = new_db()
    paths = [f"/p{i}" for i in range(60)] + ["/P7", "/p7/"]
    _tail_copy(conn, paths, 8, 4)
    path_rowid = conn.execute("SELECT rowid FROM column_days WHERE name = 'pathname'").fetchone()[0]
    flts = (Filter("path", "eq", "/p7"), Filter("country", "eq", "Unknown"))
    query = stats.Query(SITE, T_DAY * 1000, (T_DAY + DAY - 1) * 1000, flts)
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        pages = stats.snapshot(conn, stats.column_groups, query, KINDS["path"], True)
        site, _ = stats.snapshot(conn, stats.column_buckets, query)
    finally:
        conn.set_trace_callback(None)
    whole = columns._DICTIONARY_SQL.replace(":rowid", str(path_rowid))
    assert any("~index:pathname" in statement for statement in statements)  # read from the copy
    assert whole not in statements
    raw = raw_groups(conn, query, KIND_SQL[KINDS["path"]])
    assert _counts(pages, True) == _counts(raw, True) and set(pages) == {"/p7", "/P7"}
    assert [g.pageviews for g in site.values()] == [sum(g.pageviews for g in raw.values())]
    conn.close()
