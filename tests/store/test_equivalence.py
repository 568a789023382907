"""Randomized equivalence: every stats answer equals a plain reference computed from the raw rows.

The reference below reads all rows into Python and applies the documented
semantics directly (filters as in store/filters.py, formulas of spec §4), with
no rollups, no SQL aggregation and no sampled runs. Random data, random
filters (every field and operator, prop filters, in/not_in lists), random
periods and random rollup states (all dirty, built, partly dirty again) must
give identical answers. A second test runs upstream's SQL in DuckDB over the
same rows for the unfiltered endpoints.
"""

from __future__ import annotations

import math
import random
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from medama_core import goals
from medama_core.store import aggregate
from medama_core.store.aggregate import round4
from medama_core.store.filters import FIELDS, MAX_IN_VALUES, NEGATED, OPERATORS, PROP_FIELDS, Filter, ascii_lower
from medama_core.store.meta_rows import Goal
from medama_core.store.sqlite import columns, entries, goal_counts, rawruns, rollups, scan, stats
from tests.store.test_stats import COLUMNS, DAY, FAR_FUTURE, HOUR, SITE, event, insert, insert_events, new_db, view

STEPS_MS = {"minute": 60_000, "hour": HOUR, "day": DAY, "week": 7 * DAY}
START = 1_711_929_600_000  # 2024-04-01T00:00:00Z; the data spans 140 days from here, so 64-day blocks get built
SPAN_DAYS = 140
PATHS = ["/", "/a", "/A", "/b", "/a_b", "/100%", "/blog/post", "/Blog/Post", "/é"]
REFERRERS = [("", ""), ("t.co", ""), ("www.google.com", "Google"), ("google", ""), ("news.ycombinator.com", "HN")]
COUNTRIES = ["Germany", "germany", "France", "United Kingdom", "Unknown"]
LANGUAGES = [("English", "British English"), ("English", "American English"), ("French", "French")]
UTM = [("", "", ""), ("news", "email", "spring"), ("News", "social", ""), ("x", "", "c,1")]
PROPS = [("plan", "pro"), ("plan", "free"), ("theme", "dark"), ("Plan", "PRO")]
TAIL = 150  # long-tail values: each seen a few times at most over the data


# ---- random data ------------------------------------------------------------------------------------


def random_rows(rnd: random.Random) -> tuple[list[dict[str, Any]], list[tuple[str, str, str, str, str, int]]]:
    """Views spread over SPAN_DAYS days, plus a dense hour (stored runs above the inline size)."""
    rows = []
    times = [START + rnd.randrange(SPAN_DAYS * DAY) for _ in range(rnd.randrange(300, 700))]
    burst = START + rnd.randrange(SPAN_DAYS) * DAY + rnd.randrange(24) * HOUR
    times += [burst + rnd.randrange(HOUR) for _ in range(rnd.choice([0, 300, 1300]))]
    for at in times:
        rows.append(random_view(rnd, at))
    rows.append(view(hostname="other.org", date_created=START + DAY))  # another site's row never counts
    events = []
    for row in rows:
        events += random_events(rnd, row)
    return rows, events


def random_view(rnd: random.Random, at: int) -> dict[str, Any]:
    """A view at `at`; about one in four has a long-tail path, referrer or campaign (seen once, twice or
    more in all: rare values, and values that become common later)."""
    ref = rnd.choice(REFERRERS)
    lang = rnd.choice(LANGUAGES)
    utm = rnd.choice(UTM)
    path = rnd.choice(PATHS)
    if rnd.random() < 0.25:
        path = f"/tail/{rnd.randrange(TAIL)}"
    if rnd.random() < 0.15:
        ref = (f"tail{rnd.randrange(TAIL)}.example", "")
    if rnd.random() < 0.1:
        utm = (utm[0], utm[1], f"c{rnd.randrange(TAIL)}")
    duration = rnd.choice([None, None, 0, 1, 2, 3, rnd.randrange(100, 5001), rnd.randrange(0, 10**6)])
    # The internal referrer's path (entry and exit pages): none (an entry) for about half, else a page,
    # sometimes a long-tail one or one never viewed. Drawn from a source of its own, so that the other
    # values are the ones the tests drew before it existed.
    came = random.Random(at * 7 + rnd.getstate()[1][0])
    came_from = came.choice(
        ["", "", "", came.choice(PATHS), came.choice(PATHS), f"/tail/{came.randrange(TAIL)}", "/gone"]
    )
    return view(
        referrer_path=came_from,
        pathname=path,
        is_unique_user=int(rnd.random() < 0.5),
        is_unique_page=int(rnd.random() < 0.6),
        referrer_host=ref[0],
        referrer_group=ref[1],
        country=rnd.choice(COUNTRIES),
        language_base=lang[0],
        language_dialect=lang[1],
        ua_browser=rnd.choice(["Chrome", "Firefox", "Safari"]),
        ua_os=rnd.choice(["Linux", "iOS"]),
        ua_device_type=rnd.choice(["Desktop", "Mobile"]),
        utm_source=utm[0],
        utm_medium=utm[1],
        utm_campaign=utm[2],
        duration_ms=duration,
        date_created=at,
    )


def random_events(rnd: random.Random, row: dict[str, Any]) -> list[tuple[str, str, str, str, str, int]]:
    events = []
    for _ in range(rnd.choice([0, 0, 0, 1, 2])):
        name, value = rnd.choice(PROPS)
        if rnd.random() < 0.2:
            value = f"v{rnd.randrange(TAIL)}"  # a long tail of property values
        events.append(event(row["bid"], name, value, row["date_created"] + rnd.choice([0, 5, HOUR])))
    return events


def random_value(rnd: random.Random, field: str) -> str:
    pool = {
        "path": PATHS,
        "referrer": [v for pair in REFERRERS for v in pair],
        "utm_source": [u[0] for u in UTM],
        "utm_medium": [u[1] for u in UTM],
        "utm_campaign": [u[2] for u in UTM],
        "browser": ["chrome", "FIREFOX", "Safari", "edge"],
        "os": ["linux", "iOS"],
        "device": ["desktop", "Mobile"],
        "country": COUNTRIES,
        "language": [v for pair in LANGUAGES for v in pair],
        "prop_name": [p[0] for p in PROPS],
        "prop_value": [p[1] for p in PROPS],
    }[field]
    value = rnd.choice(pool)
    roll = rnd.random()
    if roll < 0.2 and value:  # a part of a value
        i = rnd.randrange(len(value))
        value = value[i : rnd.randrange(i, len(value) + 1)]
    elif roll < 0.3:
        value = value.upper()
    elif roll < 0.35:
        value = ""
    return value


def random_filters(rnd: random.Random) -> tuple[Filter, ...]:
    filters = []
    for field in rnd.sample(list(FIELDS), rnd.choice([1, 1, 2, 3])):
        op = rnd.choice(OPERATORS)
        if op in ("in", "not_in"):
            value = ",".join(random_value(rnd, field) for _ in range(rnd.randrange(1, 4)))
        else:
            value = random_value(rnd, field)
        filters.append(Filter(field, op, value))
    return tuple(filters)


def random_period(rnd: random.Random) -> tuple[int | None, int | None]:
    """Unix microseconds; whole days, whole hours, odd instants, open ends."""
    roll = rnd.random()
    if roll < 0.1:
        return None, None
    start = START + rnd.randrange(-2, SPAN_DAYS) * DAY
    if roll < 0.5:
        start += rnd.choice([0, 7 * HOUR, 19 * HOUR])
    elif roll < 0.8:
        start += rnd.randrange(DAY)
    length = rnd.choice([HOUR, 5 * HOUR, DAY, 7 * DAY, 30 * DAY, 90 * DAY, 150 * DAY]) + rnd.choice([-1, 0, 0, 1])
    start_us = start * 1000 + rnd.choice([0, 0, 0, 1, 999, 500_000])
    end_us = start_us + length * 1000 + rnd.choice([0, 0, -1, 1])
    if roll > 0.95:
        return start_us, None
    return start_us, end_us


# ---- the reference ----------------------------------------------------------------------------------


def _column_test(op: str, values: list[str]) -> Callable[[str], bool]:
    """One column's positive test on a lower-cased value (in, eq, contains, starts_with, ends_with)."""
    if op == "in":
        allowed = set(values[:MAX_IN_VALUES])
        return lambda text: text in allowed
    value = values[0]
    return {
        "eq": lambda text: text == value,
        "contains": lambda text: value in text,
        "starts_with": lambda text: text.startswith(value),
        "ends_with": lambda text: text.endswith(value),
    }[op]


def ref_matches(flt: Filter, row: dict[str, Any]) -> bool:
    """The documented filter semantics on a views row or an events row (`name`, `value`)."""
    positive = "eq" if flt.op == "neq" else flt.op.removeprefix("not_")
    values = flt.values()
    columns = {
        "path": ["pathname"],
        "referrer": ["referrer_host", "referrer_group"],
        "utm_source": ["utm_source"],
        "utm_medium": ["utm_medium"],
        "utm_campaign": ["utm_campaign"],
        "browser": ["ua_browser"],
        "os": ["ua_os"],
        "device": ["ua_device_type"],
        "country": ["country"],
        "language": ["language_base", "language_dialect"],
        "prop_name": ["name"],
        "prop_value": ["value"],
    }[flt.field]
    hit = False
    for index, column in enumerate(columns):
        # An empty referrer is direct traffic: it is compared with the host only.
        column_values = values if index == 0 or flt.field != "referrer" else [v for v in values if v]
        if column_values and _column_test(positive, column_values)(ascii_lower(row[column])):
            hit = True
    return hit != (flt.op in NEGATED)


class Reference:
    """All rows in memory; every endpoint answered by the plainest code that follows spec §4."""

    def __init__(self, rows: list[dict[str, Any]], events: list[tuple[str, str, str, str, str, int]]) -> None:
        self.rows = [row for row in rows if row["hostname"] == SITE]
        self.events: dict[str, list[dict[str, Any]]] = {}
        for bid, _, _, name, value, at in events:
            self.events.setdefault(bid, []).append({"name": name, "value": value, "at": at})

    def select(self, q: stats.Query) -> list[dict[str, Any]]:
        view_filters = [f for f in q.filters if f.field not in ("prop_name", "prop_value")]
        prop_filters = [f for f in q.filters if f.field in ("prop_name", "prop_value")]
        chosen = []
        for row in self.rows:
            at_us = row["date_created"] * 1000
            if q.start_us is not None and at_us < q.start_us or q.end_us is not None and at_us > q.end_us:
                continue
            if not all(ref_matches(f, row) for f in view_filters):
                continue
            if prop_filters and not any(
                all(ref_matches(f, e) for f in prop_filters) for e in self.events.get(row["bid"], [])
            ):
                continue
            chosen.append(row)
        return chosen

    @staticmethod
    def quantile(rows: list[dict[str, Any]], q: float) -> int:
        values = sorted(r["duration_ms"] for r in rows if r["duration_ms"] is not None)
        if not values:
            return 0
        position = (len(values) - 1) * q
        low, high = values[math.floor(position)], values[math.ceil(position)]
        return round(float(low) + float(high - low) * (position - math.floor(position)))

    @staticmethod
    def metrics(rows: list[dict[str, Any]]) -> dict[str, Any]:
        timed = [r for r in rows if r["is_unique_user"] and r["duration_ms"] is not None]
        bounces = [r for r in timed if 100 <= r["duration_ms"] <= 5000]
        return {
            "visitors": sum(r["is_unique_user"] for r in rows),
            "pageviews": len(rows),
            "bounce_percentage": round4(len(bounces) / len(timed)) if len(timed) > 5 else 0,
            "duration": Reference.quantile(rows, 0.5),
        }

    def summary(self, q: stats.Query) -> dict[str, Any]:
        return self.metrics(self.select(q))

    def interval(self, q: stats.Query, interval: str) -> list[dict[str, Any]]:
        assert q.start_us is not None and q.end_us is not None
        rows = self.select(q)
        if interval == "month":
            first, last = (q.start_us // 1000, q.end_us // 1000)
            months = [_month(first) + i for i in range(_month(last) - _month(first) + 1)]
            buckets: dict[int, list[dict[str, Any]]] = {m: [] for m in months}
            for row in rows:
                buckets[_month(row["date_created"])].append(row)
            return [
                {"date": f"{m // 12:04d}-{m % 12 + 1:02d}-01 00:00:00+00", **self.metrics(buckets[m])} for m in months
            ]
        step_us = STEPS_MS[interval] * 1000
        count = (q.end_us - q.start_us) // step_us + 1
        found: list[list[dict[str, Any]]] = [[] for _ in range(count)]
        for row in rows:
            found[(row["date_created"] * 1000 - q.start_us) // step_us].append(row)
        result = []
        for i in range(count):
            seconds, micro = divmod(q.start_us + i * step_us, 10**6)
            text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")
            text += f".{micro:06d}".rstrip("0") if micro else ""
            result.append({"date": text + "+00", **self.metrics(found[i])})
        return result

    def listing(self, q: stats.Query, endpoint: str, summary: bool, variant: bool) -> list[dict[str, Any]]:
        label, key = {
            "pages": (lambda r: r["pathname"], "path"),
            "referrers": (
                (lambda r: r["referrer_host"])
                if variant
                else (lambda r: r["referrer_group"] if r["referrer_group"] else r["referrer_host"]),
                "referrer",
            ),
            "sources": (lambda r: r["utm_source"], "source"),
            "mediums": (lambda r: r["utm_medium"], "medium"),
            "campaigns": (lambda r: r["utm_campaign"], "campaign"),
            "browsers": (lambda r: r["ua_browser"], "browser"),
            "os": (lambda r: r["ua_os"], "os"),
            "devices": (lambda r: r["ua_device_type"], "device"),
            "countries": (lambda r: r["country"], "country"),
            "languages": ((lambda r: r["language_dialect"]) if variant else (lambda r: r["language_base"]), "language"),
        }[endpoint]
        rows = self.select(q)
        groups: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            groups.setdefault(label(row), []).append(row)
        unique = "is_unique_page" if endpoint == "pages" else "is_unique_user"
        total = sum(r[unique] for r in rows)
        out = []
        for name, members in groups.items():
            visitors = sum(r[unique] for r in members)
            if endpoint == "pages" and visitors == 0:
                continue
            item: dict[str, Any] = {key: name, "visitors": visitors, "visitors_percentage": _share(visitors, total)}
            if not summary:
                if endpoint == "pages":
                    item["pageviews"] = len(members)
                    item["pageviews_percentage"] = _share(len(members), len(rows))
                metrics = self.metrics(members)
                item["bounce_percentage"] = metrics["bounce_percentage"]
                item["duration"] = metrics["duration"]
            out.append(item)
        if endpoint == "pages" and not summary:
            out.sort(key=lambda i: (-i["visitors"], -i["pageviews"], i[key]))
        else:
            out.sort(key=lambda i: (-i["visitors"], i[key]))
        return out

    def time(self, q: stats.Query, summary: bool) -> list[dict[str, Any]]:
        groups: dict[str, list[dict[str, Any]]] = {}
        for row in self.select(q):
            groups.setdefault(row["pathname"], []).append(row)
        kept = []
        for path, members in groups.items():
            visitors = sum(r["is_unique_page"] for r in members)
            median = self.quantile(members, 0.5)
            lower = self.quantile(members, 0.25)
            if visitors >= 3 and median > 0 and (summary or lower > 0):
                total_ms = sum(r["duration_ms"] for r in members if r["duration_ms"] is not None)
                kept.append((path, members, visitors, median, lower, total_ms))
        total = sum(item[5] for item in kept)
        out = []
        for path, members, visitors, median, lower, total_ms in kept:
            share = _share(total_ms, total)
            if summary:
                out.append({"path": path, "duration": median, "duration_percentage": share})
            else:
                upper = self.quantile(members, 0.75)
                out.append(
                    {
                        "path": path,
                        "duration": median,
                        "duration_upper_quartile": upper,
                        "duration_lower_quartile": lower,
                        "duration_percentage": share,
                        "visitors": visitors,
                    }
                )
        if summary:
            out.sort(
                key=lambda i: (-i["duration_percentage"], -i["duration"], -_visitors(groups[i["path"]]), i["path"])
            )
        else:
            out.sort(key=lambda i: (-i["visitors"], -i["duration"], i["path"]))
        return out

    def entries(self, q: stats.Query, summary: bool) -> list[dict[str, Any]]:
        """Views with no internal referrer, per page (docs/insights.md)."""
        chosen = [r for r in self.select(q) if r.get("referrer_path", "") == ""]
        by_path: dict[str, list[dict[str, Any]]] = {}
        for row in chosen:
            by_path.setdefault(row["pathname"], []).append(row)
        visitors_total = _visitors(chosen)
        out = []
        for path, members in by_path.items():
            item: dict[str, Any] = {
                "path": path,
                "entries": len(members),
                "entries_percentage": _share(len(members), len(chosen)),
                "visitors": _visitors(members),
                "visitors_percentage": _share(_visitors(members), visitors_total),
            }
            if not summary:
                item["bounce_percentage"] = self.metrics(members)["bounce_percentage"]
            out.append(item)
        out.sort(key=lambda i: (-i["entries"], -i["visitors"], i["path"]))
        return out

    def exits(self, q: stats.Query, summary: bool) -> list[dict[str, Any]]:
        """Per page: its views less the views whose internal referrer it was, at least 0."""
        chosen = self.select(q)
        views: dict[str, list[dict[str, Any]]] = {}
        for row in chosen:
            views.setdefault(row["pathname"], []).append(row)
        out = []
        for path, members in views.items():
            left = len(members) - sum(1 for r in chosen if r.get("referrer_path", "") == path)
            if left > 0:
                out.append({"path": path, "exits": left, "visitors": _visitors(members), "pageviews": len(members)})
        total = sum(i["exits"] for i in out)
        visitors_total = sum(i["visitors"] for i in out)
        for item in out:
            item["exits_percentage"] = _share(item["exits"], total)
            item["visitors_percentage"] = _share(item["visitors"], visitors_total)
            item["exit_percentage"] = _share(item["exits"], item["pageviews"])
        out.sort(key=lambda i: (-i["exits"], -i["visitors"], i["path"]))
        keys = ["path", "exits", "exits_percentage", "visitors", "visitors_percentage"]
        if not summary:
            keys += ["pageviews", "exit_percentage"]
        return [{key: item[key] for key in keys} for item in out]

    def properties(self, q: stats.Query) -> list[dict[str, Any]]:
        kept_filters = [f for f in q.filters if not (f.field == "prop_name" and f.value == "")]
        view_filters = [f for f in kept_filters if f.field not in ("prop_name", "prop_value")]
        prop_filters = [f for f in kept_filters if f.field in ("prop_name", "prop_value")]
        counts: dict[tuple[str, str], int] = {}
        for row in self.rows:
            if not all(ref_matches(f, row) for f in view_filters):
                continue
            for e in self.events.get(row["bid"], []):
                at_us = e["at"] * 1000
                if q.start_us is not None and at_us < q.start_us or q.end_us is not None and at_us > q.end_us:
                    continue
                if all(ref_matches(f, e) for f in prop_filters):
                    counts[(e["name"], e["value"])] = counts.get((e["name"], e["value"]), 0) + 1
        total = sum(counts.values())
        if any(f.field == "prop_name" for f in kept_filters):
            items = sorted(counts.items(), key=lambda i: (-i[1], i[0][1], i[0][0]))
            return [{"value": v, "events": n, "events_percentage": _share(n, total)} for (_, v), n in items]
        names: dict[str, int] = {}
        for (name, _), n in counts.items():
            names[name] = names.get(name, 0) + n
        ranked = sorted(names.items(), key=lambda i: (-i[1], i[0]))
        return [{"name": name, "events": n, "events_percentage": _share(n, total)} for name, n in ranked]


def _share(part: int, whole: int) -> float:
    return round4(part / whole) if whole else 0


def _visitors(rows: list[dict[str, Any]]) -> int:
    return sum(r["is_unique_page"] for r in rows)


def _month(ms: int) -> int:
    moment = datetime.fromtimestamp(ms // 1000, UTC)
    return moment.year * 12 + moment.month - 1


# ---- the comparison ---------------------------------------------------------------------------------


def intervals_for(q: stats.Query) -> list[str]:
    if q.start_us is None or q.end_us is None:
        return []
    span_ms = (q.end_us - q.start_us) // 1000
    chosen = ["day", "week", "month"]
    if span_ms <= 40 * DAY:
        chosen.append("hour")
    if span_ms <= 2 * DAY:
        chosen.append("minute")
    return chosen


# Goals as the store gets them, each its own filters (goals.goal_filters): page goals over PATHS (and the
# tail's paths), one with an overlapping path ("/b" is kept by its filters but is no match), event goals.
GOALS = [
    goals.goal_filters(Goal(f"g{i}", SITE, "", page, name, value, 0), ())
    for i, (page, name, value) in enumerate(
        [("/a*", None, None), ("*post*", None, None), ("/", None, None), ("/b*b", None, None), ("*", None, None)]
        + [(None, "plan", "pro"), (None, "theme", None)]
    )
]


def expected_goals(ref: Reference, q: stats.Query) -> tuple[list[tuple[Filter, ...]], tuple[int, list[Any]]]:
    """The goals a request may ask for under `q` (no event goal under prop filters: the API refuses it), and
    goal_counts' answer from the reference: the summary's visitors, and each goal's views and page visitors."""
    chosen = [goal for goal in GOALS if not (q.prop_filters and any(f.field in PROP_FIELDS for f in goal))]
    counts = []
    for goal in chosen:
        rows = ref.select(stats.Query(q.hostname, q.start_us, q.end_us, (*q.filters, *goal)))
        counts.append((len(rows), sum(1 for row in rows if row["is_unique_page"])))
    return chosen, (ref.summary(q)["visitors"], counts)


def compare_all(conn: sqlite3.Connection, ref: Reference, q: stats.Query) -> None:
    """Every endpoint and variant for `q`: ours (inside a read snapshot) must equal the reference."""

    def ours(fn: Callable[..., Any], *args: Any) -> Any:
        return stats.snapshot(conn, fn, *args)

    context = f"query {q}"
    assert ours(stats.site_metrics, q) == ref.summary(q), context
    for interval in intervals_for(q):
        assert q.start_us is not None and q.end_us is not None
        got = ours(stats.interval_metrics, q, interval, q.start_us, q.end_us)
        assert got == ref.interval(q, interval), f"{context} {interval}"
    if q.start_us is not None and q.end_us is not None:
        before = stats.Query(q.hostname, *stats.previous_period(q.start_us, q.end_us), q.filters)
        interval = random.Random(q.start_us).choice(intervals_for(q))
        expected = {"current": ref.summary(q), "previous": ref.summary(before), "interval": ref.interval(q, interval)}
        assert ours(stats.summary, q, True, interval) == expected, f"{context} summary {interval}"
    for endpoint in stats.LISTS:
        for summary in (True, False):
            for variant in (False, True) if endpoint in ("referrers", "languages") else (False,):
                full = ref.listing(q, endpoint, summary, variant)
                for page in (stats.Page(), stats.Page(3), stats.Page(2, 1)):
                    got = ours(stats.list_stats, q, endpoint, summary, page, variant)
                    assert got == page.cut(full), f"{context} {endpoint} summary={summary} variant={variant} {page}"
    for summary in (True, False):
        full = ref.time(q, summary)
        for page in (stats.Page(), stats.Page(2), stats.Page(1, 1)):
            assert ours(stats.time_stats, q, summary, page) == page.cut(full), f"{context} time {summary} {page}"
    expected = ref.properties(q)
    for page in (stats.Page(), stats.Page(1, 1)):
        assert ours(stats.properties, q, page) == page.cut(expected), f"{context} properties {page}"
    for summary in (True, False):
        for name, fn, want in (
            ("entries", entries.entries, ref.entries(q, summary)),
            ("exits", entries.exits, ref.exits(q, summary)),
        ):
            for page in (stats.Page(), stats.Page(3), stats.Page(2, 1)):
                assert ours(fn, q, summary, page) == page.cut(want), f"{context} {name} summary={summary} {page}"
    chosen, want = expected_goals(ref, q)
    assert ours(goal_counts.goal_counts, q, chosen) == want, f"{context} goals"


@pytest.fixture
def storage_knobs(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The storage's size limits, scaled to the test data. Odd seeds store every run apart and read them,
    and the column copies' durations, through blob windows. Column copies: seeds 2 and 6 code columns of
    more than 3 values in two planes, 3 and 7 copy no day with a column of more than 4 values (every path
    column here has 9), so filtered answers come raw. Seeds 6 and 7 are small sites (their lists read raw
    rows); seeds 4 and 5 build only the blocks of 40 views or more; seeds 1 and 4 hold 3 labels at most
    in a filtered tally's memory; seeds 3 and 5 merge blocks' runs as streams; odd seeds let the
    copies' durations a filtered tally kept go part way; seeds 1, 2, 5 and 6 hold 0 or 40 raw durations
    of a request in memory and put the rest in the temporary database, 5 values to a row; seeds 0, 2, 4,
    5 and 6 read the column copies in pieces of 3 to 9 views (cut anywhere, through the views without a
    duration too) and their dictionaries 8 characters at a time; seeds 1, 2, 3 and 6 code the columns of
    more than 2 values by SQLite, in chunks of 3 or 4 views (the others in chunks of 3 to 8), their
    dictionaries encoded 2 values at a time; seeds 0, 2, 5 and 6 pick every day's selected views from the
    planes row by row (as a page filter's few views), and seeds 1 and 2 part the durations of a day's
    selected views per key view by view however few the keys; every refresh works in batches of about
    64 views."""
    seed = request.node.callspec.params["seed"]
    use_full_site(monkeypatch)
    if seed % 2:
        monkeypatch.setattr(rollups, "INLINE_RUN", 0)
        monkeypatch.setattr(rollups, "INLINE_DURATIONS", 0)
        monkeypatch.setattr(stats, "COLUMN_DURATIONS_HELD", 0)  # filtered medians read day durations by windows
        # Filtered lists and /time keep the copies' durations of about three days, then give them up and
        # read the rows shown again.
        monkeypatch.setattr(stats, "TALLY_RUNS_HELD", 3 * stats.KEPT_PIECE_BYTES)
    if seed % 4 >= 2:
        monkeypatch.setattr(columns, "PLANE_CODES", 5 - seed % 4)
    if seed >= 6:
        monkeypatch.setattr(rollups, "SMALL_SITE_VIEWS", 20_000)
    if seed in (4, 5):
        monkeypatch.setattr(rollups, "MIN_BLOCK_VIEWS", 40)
    if seed in (1, 4):
        monkeypatch.setattr(stats, "MAX_LABELS_HELD", 3)  # filtered tallies spill to their database every day
    if seed % 4 in (1, 2):
        monkeypatch.setattr(rawruns, "RAW_DURATIONS_HELD", 40 * (seed % 2))
        monkeypatch.setattr(rawruns, "SPILL_CHUNK", 5)
    if seed in (3, 5):  # blocks' runs of more than 8 values are merged as a stream, 5 values at a time
        monkeypatch.setattr(rollups, "MERGE_IN_MEMORY", 8)
        monkeypatch.setattr(rollups, "MERGE_CHUNK", 5)
    if seed in (0, 2, 4, 5, 6):
        monkeypatch.setattr(columns, "DAY_CHUNK_VIEWS", 3 + seed)
        monkeypatch.setattr(columns, "DICTIONARY_WINDOW", 8)
    if seed in (1, 2, 3, 6):  # columns of more than 2 values of a day coded by SQLite (columns._store_tail)
        monkeypatch.setattr(columns, "PASS_VALUES", 2)
        monkeypatch.setattr(columns, "COPY_CHUNK_VIEWS", 2 + seed)
        monkeypatch.setattr(columns, "TAIL_CHUNK_VIEWS", 4 - seed % 2)
        monkeypatch.setattr(columns, "DICTIONARY_BATCH", 2)
    if seed in (0, 2, 5, 6):  # every day's selected views picked row by row, as a page filter's few are
        monkeypatch.setattr(scan, "PICK_RATIO", 0)
    if seed in (1, 2):  # durations parted per key view by view, however few the keys
        monkeypatch.setattr(scan, "FEW_KEYS", 0)
    if seed in (2, 7):  # a day's runs of a column of more than 2 values sorted by SQLite; rows written 3 at a time
        monkeypatch.setattr(columns, "RUNS_HELD_VALUES", 2)
        monkeypatch.setattr(rollups, "WRITE_CHUNK", 3)


def use_full_site(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every kind rolled up and every block built however small the data, in batches of ~64 views."""
    monkeypatch.setattr(rollups, "SMALL_SITE_VIEWS", 0)
    monkeypatch.setattr(rollups, "MIN_BLOCK_VIEWS", 0)
    monkeypatch.setattr(rollups, "REFRESH_BATCH_VIEWS", 64)


@pytest.mark.parametrize("seed", range(8))
def test_every_endpoint_equals_the_reference(seed: int, storage_knobs: None) -> None:
    rnd = random.Random(seed)
    conn = new_db()
    rows, events = random_rows(rnd)
    insert(conn, rows)
    insert_events(conn, events)
    ref = Reference(rows, events)
    states = ["dirty", "built", "touched", "late"]
    for state in states:
        if state == "built":
            rollups.refresh(conn, FAR_FUTURE)
        elif state == "touched":  # late unloads and a deletion after the rebuild: some hours dirty again
            for row in rnd.sample(rows[:-1], 5):
                row["duration_ms"] = rnd.randrange(0, 9000)
                conn.execute("UPDATE views SET duration_ms = ? WHERE bid = ?", (row["duration_ms"], row["bid"]))
            gone = rows.pop(rnd.randrange(len(rows) - 1))
            conn.execute("DELETE FROM views WHERE bid = ?", (gone["bid"],))
            ref = Reference(rows, events)
        elif state == "late":  # more views of the tail (rare values become common) in built days; rebuilt
            late = [random_view(rnd, START + rnd.randrange(SPAN_DAYS * DAY)) for _ in range(60)]
            late_events = [e for row in late for e in random_events(rnd, row)]
            insert(conn, late)
            insert_events(conn, late_events)
            rows, events = rows + late, events + late_events
            ref = Reference(rows, events)
            rollups.refresh(conn, FAR_FUTURE)
        for _ in range(2):
            compare_all(conn, ref, stats.Query(SITE, *random_period(rnd)))
        for _ in range(3):
            compare_all(conn, ref, stats.Query(SITE, *random_period(rnd), random_filters(rnd)))
        # A page filter by equality (and the one-pass summary).
        pages = ",".join(rnd.sample(PATHS, rnd.randrange(1, 4)))
        page_filter = Filter("path", "in", pages) if rnd.random() < 0.5 else Filter("path", "eq", pages.split(",")[0])
        compare_all(conn, ref, stats.Query(SITE, *random_period(rnd), (page_filter, *random_filters(rnd)[:1])))
    conn.close()


@pytest.mark.parametrize("plane_codes", [255, 3])
def test_filtered_answers_come_from_column_copies(plane_codes: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a refresh every closed day with rows has a column copy, filtered queries read them (not
    the raw rows), and a late change drops the day's copy until the refresher builds it again."""
    monkeypatch.setattr(columns, "PLANE_CODES", plane_codes)
    use_full_site(monkeypatch)
    conn = new_db()
    rows, events = random_rows(random.Random(5))
    insert(conn, rows)
    insert_events(conn, events)
    rollups.refresh(conn, FAR_FUTURE)
    days = {row["date_created"] // DAY for row in rows}
    copied = {day for (day,) in conn.execute("SELECT day FROM column_days WHERE name = ''")}
    assert copied == days
    planes = {len(data) // int(json_rows) for data, json_rows in _plane_sizes(conn)}
    assert planes == ({1} if plane_codes == 255 else {1, 2})
    scanned: list[int] = []
    real = scan.DayScan.filters_mask
    spy = lambda self, selection: scanned.append(self.day.day) or real(self, selection)  # noqa: E731
    monkeypatch.setattr(scan.DayScan, "filters_mask", spy)
    query = stats.Query(SITE, START * 1000, (START + SPAN_DAYS * DAY) * 1000 - 1, (Filter("country", "eq", "germany"),))
    ref = Reference(rows, events)
    assert stats.snapshot(conn, stats.list_stats, query, "pages", True, stats.Page()) == ref.listing(
        query, "pages", True, False
    )
    assert set(scanned) == days
    late = rows[0]
    conn.execute("UPDATE views SET duration_ms = 7 WHERE bid = ?", (late["bid"],))
    late["duration_ms"] = 7
    scanned.clear()
    ref = Reference(rows, events)
    assert stats.snapshot(conn, stats.time_stats, query, False, stats.Page()) == ref.time(query, False)
    late_hour = late["date_created"] // HOUR * HOUR
    plan = stats.snapshot(conn, columns.plan, SITE, START, START + SPAN_DAYS * DAY - 1)
    assert (late_hour, late_hour + HOUR - 1) in plan.raw  # the dirty hour is read raw, the rest of its day not
    rollups.refresh(conn, FAR_FUTURE)
    assert conn.execute("SELECT 1 FROM column_days WHERE day = ?", (late["date_created"] // DAY,)).fetchone()
    scanned.clear()
    assert stats.snapshot(conn, stats.time_stats, query, False, stats.Page()) == ref.time(query, False)
    assert late["date_created"] // DAY in scanned
    plan = stats.snapshot(conn, columns.plan, SITE, START, START + SPAN_DAYS * DAY - 1)
    assert not [(lo, hi) for lo, hi in plan.raw if lo <= late_hour <= hi]  # (raw: days without views only)


def test_filtered_medians_read_each_copied_day_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A filtered /time and a filtered detail table take the medians of the rows shown from the durations
    their counting pass kept: one pass over the column copies, not a second for the rows shown; a
    tally whose durations pass TALLY_RUNS_HELD lets them go and reads the rows shown again."""
    use_full_site(monkeypatch)
    conn = new_db()
    rows, events = random_rows(random.Random(11))
    insert(conn, rows)
    insert_events(conn, events)
    rollups.refresh(conn, FAR_FUTURE)
    days = {row["date_created"] // DAY for row in rows}
    loaded: list[int] = []
    real = columns.load

    def spy(*args: Any, **kwargs: Any) -> Iterator[columns.Day]:
        for copy in real(*args, **kwargs):  # a piece at a time: a day's dictionaries go once it is done
            loaded.append(copy.day)
            yield copy

    monkeypatch.setattr(columns, "load", spy)
    query = stats.Query(SITE, START * 1000, (START + SPAN_DAYS * DAY) * 1000 - 1, (Filter("country", "eq", "germany"),))
    ref = Reference(rows, events)
    for held in (stats.TALLY_RUNS_HELD, 0):
        monkeypatch.setattr(stats, "TALLY_RUNS_HELD", held)
        loaded.clear()
        assert stats.snapshot(conn, stats.time_stats, query, False, stats.Page()) == ref.time(query, False)
        times = len(loaded)
        loaded.clear()
        answer = stats.snapshot(conn, stats.list_stats, query, "referrers", False, stats.Page())
        assert answer == ref.listing(query, "referrers", False, False)
        if held:  # every copied day once
            assert sorted(loaded) == sorted(days) and times == len(days)
        else:  # the rows shown read again (50 groups at a time: at least one more pass)
            assert set(loaded) == days and len(loaded) >= 2 * len(days) and times >= 2 * len(days)


def _plane_sizes(conn: sqlite3.Connection) -> list[tuple[bytes, str]]:
    """(column data, that day's view count) for every dimension column of every copied day."""
    return conn.execute(
        """SELECT c.data, json_extract(m.dictionary, '$.rows') FROM column_days c
        JOIN column_days m ON m.hostname = c.hostname AND m.day = c.day AND m.name = ''
        WHERE c.name NOT IN ('', '~flags', '~hours', '~durations') AND c.name NOT LIKE 'e:%'"""
    ).fetchall()


def test_a_rare_value_with_raw_rows_counts_both(monkeypatch: pytest.MonkeyPatch) -> None:
    """A path seen twice (rare: hour rows only, left out of the first pass of a top list) that gets two
    more views in a dirty hour leads the list and counts on /time: its rare rows are added to its raw ones."""
    use_full_site(monkeypatch)
    conn = new_db()
    rows = [view(pathname="/a", date_created=START + HOUR + i, duration_ms=5000) for i in range(3)]
    rows += [view(pathname="/t", date_created=START + 2 * HOUR + i, duration_ms=7000) for i in range(2)]
    insert(conn, rows)
    rollups.refresh(conn, FAR_FUTURE)
    assert conn.execute("SELECT COUNT(*) FROM rollup_rare WHERE value = '/t'").fetchone()[0] == 1
    late = [view(pathname="/t", date_created=START + 5 * HOUR + i, duration_ms=9000) for i in range(2)]
    insert(conn, late)  # not rebuilt: read raw
    ref = Reference(rows + late, [])
    q = stats.Query(SITE, START * 1000, (START + DAY) * 1000)
    for summary in (True, False):
        got = stats.snapshot(conn, stats.list_stats, q, "pages", summary, stats.Page(1))
        assert got == ref.listing(q, "pages", summary, False)[:1]
        assert got[0]["path"] == "/t"
        assert stats.snapshot(conn, stats.time_stats, q, summary, stats.Page(1)) == ref.time(q, summary)[:1]
    compare_all(conn, ref, q)


def test_small_sites_and_small_blocks_keep_less(monkeypatch: pytest.MonkeyPatch) -> None:
    """A site below SMALL_SITE_VIEWS keeps the site rows only, and blocks below MIN_BLOCK_VIEWS are not
    built; answers are the same. When the site grows past the mark every hour is rebuilt with all kinds."""
    monkeypatch.setattr(rollups, "SMALL_SITE_VIEWS", 400)
    monkeypatch.setattr(rollups, "MIN_BLOCK_VIEWS", 60)
    monkeypatch.setattr(rollups, "REFRESH_BATCH_VIEWS", 64)
    rnd = random.Random(11)
    conn = new_db()
    rows = [random_view(rnd, START + rnd.randrange(20 * DAY)) for _ in range(300)]
    insert(conn, rows)
    rollups.refresh(conn, FAR_FUTURE)
    assert {kind for (kind,) in conn.execute("SELECT DISTINCT kind FROM rollup")} == {0}
    built = conn.execute("SELECT span, period FROM rollup_built").fetchall()
    for span, period in built:
        views = conn.execute(
            "SELECT COUNT(*) FROM views WHERE date_created BETWEEN ? AND ?",
            (period * span * HOUR, (period + 1) * span * HOUR - 1),
        ).fetchone()[0]
        assert views >= 60
    assert {span for span, _ in built} == {8 * 24, 64 * 24}  # 300 views in 20 days: ~15 a day, ~120 in 8 days
    ref = Reference(rows, [])
    for _ in range(3):
        compare_all(conn, ref, stats.Query(SITE, *random_period(rnd)))
    more = [random_view(rnd, START + rnd.randrange(20 * DAY)) for _ in range(150)]
    insert(conn, more)
    rollups.refresh(conn, FAR_FUTURE)
    assert conn.execute("SELECT full, views FROM rollup_sites").fetchone() == (1, 450)
    assert {kind for (kind,) in conn.execute("SELECT DISTINCT kind FROM rollup")} == set(rollups.KIND_SQL)
    ref = Reference(rows + more, [])
    for _ in range(3):
        compare_all(conn, ref, stats.Query(SITE, *random_period(rnd)))


def test_refresh_takes_many_sites_hours_per_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """One call rebuilds the dirty hours of many sites at once, about REFRESH_BATCH_VIEWS views of them:
    the work follows the rows, not sites x hours."""
    monkeypatch.setattr(rollups, "REFRESH_BATCH_VIEWS", 100)
    conn = new_db()
    rows = [view(hostname=f"s{i}.example", date_created=START + (i % 7) * HOUR) for i in range(300)]
    insert(conn, rows)
    calls = 0
    while rollups.refresh_hours(conn, FAR_FUTURE):
        calls += 1
    assert calls == 3  # 300 hours of 300 sites, 100 views a call
    assert conn.execute("SELECT COUNT(*) FROM rollup WHERE span = 1 AND kind = 0").fetchone()[0] == 300
    assert conn.execute("SELECT COUNT(*) FROM rollup_dirty").fetchone()[0] == 0


def test_block_rollups_are_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """The random data is wide enough to build blocks of every span, so the tests above exercise them."""
    use_full_site(monkeypatch)
    conn = new_db()
    rows, events = random_rows(random.Random(1))
    insert(conn, rows)
    insert_events(conn, events)
    rollups.refresh(conn, FAR_FUTURE)
    spans = {row[0] for row in conn.execute("SELECT DISTINCT span FROM rollup_built")}
    assert spans == set(rollups.SPANS[1:])
    plan = rollups.plan(conn, SITE, START, START + SPAN_DAYS * DAY - 1)
    assert {span for span, _, _ in plan.pieces} >= {rollups.SPANS[-1]}


# ---- DuckDB running upstream's SQL ------------------------------------------------------------------

BOUNCE = """CASE WHEN COUNT(*) FILTER (WHERE is_unique_user AND duration_ms IS NOT NULL) > 5 THEN
  ifnull(ROUND(COUNT(*) FILTER (WHERE is_unique_user AND duration_ms BETWEEN 100 AND 5000) * 1.0
  / NULLIF(COUNT(*) FILTER (WHERE is_unique_user AND duration_ms IS NOT NULL), 0), 4), 0) ELSE 0 END"""
UPSTREAM_SUMMARY = f"""SELECT COUNT(*) FILTER (WHERE is_unique_user), COUNT(*), {BOUNCE},
  CAST(ifnull(median(duration_ms), 0) AS INTEGER) FROM views WHERE {{w}}"""
UPSTREAM_INTERVAL = f"""WITH intervals AS (SELECT generate_series AS interval FROM
  generate_series(make_timestamptz({{s}}), make_timestamptz({{e}}), INTERVAL {{step}})),
stats AS (SELECT time_bucket(INTERVAL {{step}}, date_created, make_timestamptz({{s}})) AS interval,
  COUNT(*) FILTER (WHERE is_unique_user) AS visitors, COUNT(*) AS pageviews, {BOUNCE} AS bounce,
  CAST(ifnull(median(duration_ms), 0) AS INTEGER) AS duration FROM views WHERE {{w}} GROUP BY interval)
SELECT CAST(intervals.interval AS VARCHAR), COALESCE(visitors, 0), COALESCE(pageviews, 0), COALESCE(bounce, 0),
  COALESCE(duration, 0) FROM intervals LEFT JOIN stats USING (interval) ORDER BY 1"""
UPSTREAM_LIST = f"""WITH total AS (SELECT COUNT(*) FILTER (WHERE is_unique_user) AS total FROM views WHERE {{w}})
SELECT {{col}} AS label, COUNT(*) FILTER (WHERE is_unique_user) AS visitors,
  ifnull(ROUND(visitors / (SELECT total FROM total), 4), 0), {BOUNCE},
  CAST(ifnull(median(duration_ms), 0) AS INTEGER)
FROM views WHERE {{w}} GROUP BY label ORDER BY visitors DESC, label ASC"""
UPSTREAM_PAGES = f"""WITH total AS (SELECT COUNT(*) FILTER (WHERE is_unique_page) AS visitors, COUNT(*) AS pageviews
  FROM views WHERE {{w}})
SELECT pathname, COUNT(*) FILTER (WHERE is_unique_page) AS visitors,
  ifnull(ROUND(visitors / (SELECT visitors FROM total), 4), 0), COUNT(*) AS pageviews,
  ifnull(ROUND(pageviews / (SELECT pageviews FROM total), 4), 0), {BOUNCE},
  CAST(ifnull(median(duration_ms), 0) AS INTEGER)
FROM views WHERE {{w}} GROUP BY pathname HAVING visitors > 0 ORDER BY visitors DESC, pageviews DESC, pathname"""
UPSTREAM_TIME = """WITH d AS (SELECT pathname, CAST(ifnull(quantile_cont(duration_ms, 0.5), 0) AS INTEGER) AS duration,
  CAST(ifnull(quantile_cont(duration_ms, 0.75), 0) AS INTEGER) AS upper,
  CAST(ifnull(quantile_cont(duration_ms, 0.25), 0) AS INTEGER) AS lower,
  SUM(duration_ms) AS total_duration, COUNT(*) FILTER (WHERE is_unique_page) AS visitors FROM views WHERE {w}
  GROUP BY pathname HAVING duration > 0 AND visitors >= 3 AND lower > 0)
SELECT pathname, duration, upper, lower, ROUND(total_duration / SUM(total_duration) OVER (), 4), visitors FROM d
ORDER BY visitors DESC, duration DESC, pathname"""
UPSTREAM_PROPS = """WITH base AS (SELECT name FROM views LEFT JOIN events USING (bid) WHERE {w}),
total AS (SELECT COUNT(*) FILTER (WHERE name IS NOT NULL) AS total FROM base)
SELECT name, COUNT(*) AS events, ifnull(ROUND(events / (SELECT total FROM total), 4), 0)
FROM base WHERE name IS NOT NULL GROUP BY name ORDER BY events DESC, name"""
LIST_COLUMNS = {
    "referrers": "IF(referrer_group = '', referrer_host, referrer_group)",
    "sources": "utm_source",
    "mediums": "utm_medium",
    "campaigns": "utm_campaign",
    "browsers": "ua_browser",
    "os": "ua_os",
    "devices": "ua_device_type",
    "countries": "country",
    "languages": "language_base",
}


@pytest.fixture
def duck_rows(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, list[dict[str, Any]], sqlite3.Connection]]:
    duckdb = pytest.importorskip("duckdb", reason="duckdb is not installed (requirements-dev.txt)")
    use_full_site(monkeypatch)
    rnd = random.Random(99)
    rows, events = random_rows(rnd)
    conn = new_db()
    insert(conn, rows)
    insert_events(conn, events)
    rollups.refresh(conn, FAR_FUTURE)
    duck = duckdb.connect()
    duck.execute("SET TimeZone = 'UTC'")
    duck.execute(
        "CREATE TABLE views (bid TEXT, hostname TEXT, pathname TEXT, is_unique_user BOOLEAN, is_unique_page BOOLEAN,"
        " referrer_host TEXT, referrer_group TEXT, country TEXT, language_base TEXT, language_dialect TEXT,"
        " ua_browser TEXT, ua_os TEXT, ua_device_type TEXT, utm_source TEXT, utm_medium TEXT, utm_campaign TEXT,"
        " duration_ms UINTEGER, date_created TIMESTAMPTZ)"
    )
    duck.executemany(
        f"INSERT INTO views VALUES ({', '.join('?' * (len(COLUMNS) - 1))}, make_timestamptz(?))",
        [[*(row[c] for c in COLUMNS[:-1]), row["date_created"] * 1000] for row in rows],
    )
    duck.execute("CREATE TABLE events (bid TEXT, name TEXT, value TEXT, date_created TIMESTAMPTZ)")
    duck.executemany(
        "INSERT INTO events VALUES (?, ?, ?, make_timestamptz(?))", [(e[0], e[3], e[4], e[5] * 1000) for e in events]
    )
    yield duck, rows, conn
    duck.close()
    conn.close()


@pytest.mark.parametrize("period", range(6))
def test_unfiltered_endpoints_equal_duckdb_running_upstream_sql(
    duck_rows: tuple[Any, list[dict[str, Any]], sqlite3.Connection], period: int
) -> None:
    duck, _, conn = duck_rows
    start_us, end_us = random_period(random.Random(1000 + period))
    if start_us is None or end_us is None:
        start_us, end_us = START * 1000, (START + 30 * DAY) * 1000 - 1
    q = stats.Query(SITE, start_us, end_us)
    w = f"hostname = '{SITE}' AND date_created BETWEEN make_timestamptz({start_us}) AND make_timestamptz({end_us})"

    def rows_of(sql: str) -> list[list[Any]]:
        # 0 / 0 is NaN in DuckDB, which upstream could not encode as JSON; we answer 0.
        return [[0 if v != v else v for v in row] for row in duck.execute(sql).fetchall()]

    def ours(fn: Callable[..., Any], *args: Any) -> Any:
        return stats.snapshot(conn, fn, q, *args)

    site = ours(stats.site_metrics)
    assert [list(site.values())] == rows_of(UPSTREAM_SUMMARY.format(w=w))
    for interval, step in (("day", "1 DAY"), ("week", "7 DAYS")):
        buckets = ours(stats.interval_metrics, interval, start_us, end_us)
        expected = rows_of(UPSTREAM_INTERVAL.format(w=w, s=start_us, e=end_us, step=step))
        assert [list(b.values()) for b in buckets] == expected, interval
    for endpoint, column in LIST_COLUMNS.items():
        got = ours(stats.list_stats, endpoint, False, stats.Page())
        assert [list(r.values()) for r in got] == rows_of(UPSTREAM_LIST.format(w=w, col=column)), endpoint
    pages = ours(stats.list_stats, "pages", False, stats.Page())
    assert [list(r.values()) for r in pages] == rows_of(UPSTREAM_PAGES.format(w=w))
    time = ours(stats.time_stats, False, stats.Page())
    assert [list(r.values()) for r in time] == rows_of(UPSTREAM_TIME.format(w=w))
    props = ours(stats.properties, stats.Page())
    w_events = w.replace("date_created", "events.date_created")
    assert [list(r.values()) for r in props] == rows_of(UPSTREAM_PROPS.format(w=w_events))


# ---- order statistics over sampled runs -------------------------------------------------------------


@pytest.mark.parametrize("candidates", [aggregate.CANDIDATES_AT_MOST, 0])
@pytest.mark.parametrize("merge", [aggregate.MERGE_AT_MOST, 0])
def test_kth_over_sampled_runs_equals_sorting(candidates: int, merge: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both bracket searches (over samples, over values) and both window selections (sort, search)."""
    monkeypatch.setattr(aggregate, "CANDIDATES_AT_MOST", candidates)
    monkeypatch.setattr(aggregate, "MERGE_AT_MOST", merge)
    rnd = random.Random(candidates + merge)
    step = aggregate.SAMPLE_STEP
    for _ in range(150):
        runs, union = [], []
        for _ in range(rnd.randrange(1, 12)):
            n = rnd.choice([0, 1, 5, step - 1, step, step + 1, 4 * step, 1000, 3000])
            shape = rnd.random()
            values = sorted(
                rnd.randrange(3)
                if shape < 0.2
                else rnd.randrange(10**6)
                if shape < 0.6
                else int(rnd.lognormvariate(8, 2))
                for _ in range(n)
            )
            runs.append(aggregate.Run.of(values))
            union += values
        union.sort()
        if not union:
            continue
        for k in {0, len(union) - 1, len(union) // 2, rnd.randrange(len(union))}:
            k2 = min(len(union) - 1, k + rnd.randrange(2))
            assert aggregate.kth(runs, k, k2) == (union[k], union[k2])
