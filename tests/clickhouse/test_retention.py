"""Retention on ClickHouse (server 18.16 and chDB): old raw rows deleted by mutation, pre-aggregates kept."""

from __future__ import annotations

from medama_core.store.clickhouse import hits, retention, stats
from medama_core.store.clickhouse.client import Client
from medama_core.store.stats import Page, Query
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
    assert retention.raw_floor(ch, SITE) is None

    assert retention.purge_step(ch, SITE, T0 + DAY) == retention.Step(2)

    assert ch.rows(f"SELECT bid FROM views WHERE hostname = '{SITE}' ORDER BY bid") == [["n1"]]
    assert ch.rows("SELECT name, value FROM events") == [["plan", "free"]]
    assert ch.rows(f"SELECT bid FROM view_keys WHERE hostname = '{SITE}'") == [["n1"]]
    assert retention.raw_floor(ch, SITE) == T0 + DAY
    assert (stats.summary(ch, old, False, "day"), stats.list_stats(ch, old, "pages", True, Page())) == before
    assert stats.properties(ch, old, Page()) == props
    assert retention.purge_step(ch, SITE, T0 + DAY) == retention.Step(0)
