"""The day's hits per site read back from ClickHouse's rows at start-up, as the daily quota counts them."""

from __future__ import annotations

from medama_core.store.clickhouse import hits, site_data
from medama_core.store.clickhouse.client import Client
from tests.clickhouse.test_writes import SITE, row

DAY = 86_400_000
T = 1_717_200_000_000  # 2024-06-01T00:00:00Z


def test_a_view_counts_once_with_its_properties_and_a_custom_event_once(ch: Client) -> None:
    at = T + 1000
    other = (*row(bid="o1", date_created=at)[:1], "other.example", *row(date_created=at)[2:])
    ops: list[hits.Op] = [
        hits.NewView(
            row(bid="v1", date_created=at), [("v1", "p1", SITE, "plan", "pro", at), ("v1", "p1", SITE, "x", "y", at)]
        ),
        hits.NewView(row(bid="v2", date_created=at + 1)),
        hits.NewView(row(bid="v2", date_created=at + 1)),  # the same view again: stored once
        hits.NewView(row(bid="late", date_created=T - 1)),  # the day before
        hits.NewView(other),
    ]
    assert hits.apply_batch(ch, ops) == [None] * len(ops)
    custom = [("v1", "c1", SITE, "signup", "yes", at + 50), ("v1", "c1", SITE, "step", "2", at + 50)]
    assert (
        hits.apply_batch(ch, [hits.NewEvents(custom), hits.NewEvents([("nobody", "c2", SITE, "a", "b", at)])])
        == [None] * 2
    )
    assert hits.apply_batch(ch, [hits.Duration("v1", 300)]) == [None]  # an unload adds no hit
    assert site_data.hits_on(ch, T) == {SITE: 4, "other.example": 1}
    assert site_data.hits_on(ch, T - DAY) == {SITE: 1}
    assert site_data.hits_on(ch, T + DAY) == {}
