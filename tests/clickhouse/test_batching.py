"""A node's batches of hits on ClickHouse: the app's Batcher on the real store, its batch size and linger."""

from __future__ import annotations

import asyncio
import io

from medama_core import app
from medama_core.backends.clickhouse import WRITE_BATCH_ROWS, ClickHouseAnalytics
from medama_core.config import Config, parse_args
from medama_core.log import Logger
from medama_core.store.clickhouse import hits
from medama_core.store.clickhouse.client import Client
from tests.clickhouse.test_writes import event, row

NO_HANG_S = 60.0  # a batch the batcher should send at once; only a hang (the bug) takes this long
PROPERTIES = 9  # of the one view with properties: it weighs 1 + 9 rows


def test_the_default_linger_is_a_second_and_a_flag_sets_it() -> None:
    assert Config().clickhouselinger == 1000
    assert parse_args(["-clickhouselinger", "50"], {}).clickhouselinger == 50
    assert parse_args(["-env"], {"CLICKHOUSE_LINGER": "0"}).clickhouselinger == 0


def test_a_node_writes_batches_of_write_batch_rows_rows_and_short_ones_a_linger_apart(ch: Client) -> None:
    store = ClickHouseAnalytics("test", client=ch)
    # A linger no test waits out: a short batch goes at once after a quiet spell, else when the batcher closes.
    config = Config(clickhouselinger=3_600_000)
    batcher = app.hits_batcher(store, config, Logger("json", "error", stream=io.StringIO()))
    lone = hits.NewView(row(bid="lone"))
    props = [event("props", f"p{i}", "v") for i in range(PROPERTIES)]
    full = [hits.NewView(row(bid="props"), props)]
    full += [hits.NewView(row(bid=f"v{i:05d}")) for i in range(WRITE_BATCH_ROWS - 1 - PROPERTIES)]
    extra = hits.NewView(row(bid="extra"))

    async def main() -> None:
        await asyncio.wait_for(batcher.write(lone), NO_HANG_S)
        # Full by weight (1 + 9 rows for the view with properties, and one per other view): one batch at once.
        await asyncio.wait_for(asyncio.gather(*[batcher.write(op) for op in full]), NO_HANG_S)
        assert (batcher.batches, batcher.ops) == (2, 1 + len(full))
        last = batcher.write(extra)
        await asyncio.sleep(0.05)
        assert not last.done(), "a short batch waits the linger after the previous one"
        await batcher.close()
        await last

    try:
        asyncio.run(main())
        assert (batcher.batches, batcher.ops) == (3, 2 + len(full))
        assert ch.rows("SELECT count(), sum(sign) FROM views") == [[2 + len(full), 2 + len(full)]]
        assert ch.rows("SELECT count() FROM events") == [[PROPERTIES]]
    finally:
        store.close()
