"""Time on page in Chromium: the sum of the visible periods, reported at every hide.

Playwright's fake clock makes the tracker's Date.now() exact, so every `m` is
known to the millisecond. Headless pages are always visible; `Wire.set_hidden`
makes the page report itself hidden (or visible) and fires visibilitychange,
which is what a tab switch does.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # conftest is pytest's to import; these names only annotate
    from tests.tracker.conftest import Tracker

pytestmark = pytest.mark.browser

HIT = "/api/event/hit"


def test_visible_time_over_hide_and_show(tracker: Tracker) -> None:
    medama, clock = tracker.medama, tracker.context.clock
    start = time.time()
    clock.install(time=start)
    clock.pause_at(start + 1)
    page, wire = tracker.open("/simple/")
    load = wire.wait("load", 1)

    # Hidden at once: no time on page yet, so nothing is sent.
    wire.set_hidden(True)
    clock.fast_forward(10_000)  # hidden time never counts
    wire.set_hidden(False)
    clock.fast_forward(4_000)
    wire.set_hidden(True)
    first = wire.wait("unload", 1)
    assert first.body == {"b": load.bid, "e": "unload", "m": 4_000}

    # Back to the tab: the clock resumes, and the next hide reports the running total.
    clock.fast_forward(60_000)
    wire.set_hidden(False)
    clock.fast_forward(2_500)
    wire.set_hidden(True)
    second = wire.wait("unload", 2)
    assert second.body == {"b": load.bid, "e": "unload", "m": 6_500}
    assert len(wire.unloads) == 2
    rows = medama.wait_views(lambda v: v and v[0]["duration_ms"] == 6_500, "the last total stored")

    # Leaving while hidden: pagehide comes after the hide that was already reported, so nothing new.
    page.click("#about")
    about = wire.wait("load", 2)
    # The load, two unloads and the next page's load: the server saw nothing else.
    medama.wait_logged("POST", HIT, [204] * 4)

    # Closing a visible tab reports its time at pagehide.
    clock.fast_forward(1_500)
    page.close()
    rows = medama.wait_views(lambda v: len(v) == 2 and v[1]["duration_ms"], "the closed page's time")
    assert [(row["bid"], row["duration_ms"]) for row in rows] == [(load.bid, 6_500), (about.bid, 1_500)]
    medama.wait_logged("POST", HIT, [204] * 5)
    wire.check()


def test_route_change_while_hidden(tracker: Tracker) -> None:
    medama, clock = tracker.medama, tracker.context.clock
    start = time.time()
    clock.install(time=start)
    clock.pause_at(start + 1)
    page, wire = tracker.open("/history/")
    home = wire.wait("load", 1)
    clock.fast_forward(2_000)
    wire.set_hidden(True)
    assert wire.wait("unload", 1).body == {"b": home.bid, "e": "unload", "m": 2_000}

    # A route change in a background tab: the old view was already reported; the new one
    # starts its clock only when the tab is shown.
    page.evaluate("document.querySelector('#about').click()")
    about = wire.wait("load", 2)
    about.expect_load(u=tracker.site.url("/history/about"), r=home.body["u"], p=False, q=True, d={"page": "about"})
    clock.fast_forward(5_000)
    wire.set_hidden(False)
    clock.fast_forward(1_200)
    page.click("#contact")  # a route change while visible ends the view with its total
    wire.wait("load", 3)
    assert [hit.body for hit in wire.unloads] == [
        {"b": home.bid, "e": "unload", "m": 2_000},
        {"b": about.bid, "e": "unload", "m": 1_200},
    ]
    # The About view's unload and the Contact load go out together, and the server may store the load first.
    rows = medama.wait_views(lambda v: len(v) == 3 and v[1]["duration_ms"] is not None, "three views, two ended")
    assert [row["duration_ms"] for row in rows] == [2_000, 1_200, None]
    wire.check()
