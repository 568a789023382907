"""Live visitors on ClickHouse (server and chDB): the same views and unloads as on SQLite, the same answer."""

from __future__ import annotations

from medama_core.store.clickhouse import hits, live
from medama_core.store.clickhouse.client import Client
from tests.store.test_live import EXPECTED, NOW, SITE, scenario


def test_open_views_of_the_last_half_hour_by_hand(ch: Client) -> None:
    rows, unloads = scenario()
    assert hits.apply_batch(ch, [hits.NewView(row) for row in rows]) == [None] * len(rows)
    assert hits.apply_batch(ch, [hits.Duration(bid, ms) for bid, ms in unloads]) == [None] * len(unloads)
    assert live.live(ch, SITE, NOW) == EXPECTED
    assert live.live(ch, "other.example", NOW)["visitors"] == 1
    assert live.live(ch, "nobody.example", NOW) == {"visitors": 0, "pages": [], "referrers": [], "countries": []}
    # A second unload of the same view (a tab shown and hidden again) keeps it left.
    assert hits.apply_batch(ch, [hits.Duration("left", 9_000)]) == [None]
    assert live.live(ch, SITE, NOW)["visitors"] == EXPECTED["visitors"]
