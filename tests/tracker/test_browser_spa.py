"""The tracker in Chromium on single-page apps: a pushState router and a hash router (data-hash)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # conftest is pytest's to import; these names only annotate
    from tests.tracker.conftest import Hit, Tracker, Wire

pytestmark = pytest.mark.browser

GOOGLE = "https://www.google.com/search?q=medama"


def sequence(wire: Wire) -> list[tuple[str, str]]:
    """The hits sent so far as (kind, beacon id)."""
    return [(hit.kind, hit.bid) for hit in wire.hits]


def view_ended(wire: Wire, loads: int, unloads: int) -> tuple[Hit, Hit]:
    """Wait for the `loads`-th load and `unloads`-th unload; return them."""
    return wire.wait("load", loads), wire.wait("unload", unloads)


def test_history_router(tracker: Tracker) -> None:
    medama, site = tracker.medama, tracker.site
    key = f"localhost:{site.port}"

    # Arriving from a search engine.
    page, wire = tracker.open("/history/", referer=GOOGLE)
    home = wire.wait("load", 1)
    referrer = home.body["r"]
    assert referrer.startswith("https://www.google.com/")  # trimmed to the origin by the referrer policy
    home.expect_load(u=site.url("/history/"), r=referrer, p=True, q=True, d={"page": "home"})

    # A pushState route change ends the view and starts another, with the new route's properties
    # (rendered after pushState) and the previous route as its referrer: the visitor came from this
    # app, not from Google (an internal arrival, not an entry: docs/insights.md).
    page.click("#about")
    about, ended = view_ended(wire, 2, 1)
    assert ended.body == {"b": home.bid, "e": "unload", "m": ended.body["m"]} and ended.body["m"] > 0
    about.expect_load(u=site.url("/history/about"), r=home.body["u"], p=False, q=True, d={"page": "about"})
    assert about.bid != home.bid

    # Neither a query-only replaceState nor a hash-only change (outside hash mode) is a new view.
    page.evaluate("history.replaceState({}, '', '/history/about?tab=2')")
    page.evaluate("location.hash = '#team'")
    page.click("#contact")
    contact, _ = view_ended(wire, 3, 2)
    # The referrer is the previous view's URL as its load beacon sent it.
    contact.expect_load(u=site.url("/history/contact"), r=about.body["u"], p=False, q=True, d={"page": "contact"})

    # Back to /history/about#team (popstate): a view again; about's ping was seen today.
    page.go_back()
    about_again, _ = view_ended(wire, 4, 3)
    about_again.expect_load(
        u=site.url("/history/about?tab=2#team"), r=contact.body["u"], p=False, q=False, d={"page": "about"}
    )
    # Back to /history/about?tab=2: the same route, nothing. Back to /history/: a view.
    page.go_back()
    page.go_back()
    home_again, _ = view_ended(wire, 5, 4)
    home_again.expect_load(u=site.url("/history/"), r=about_again.body["u"], p=False, q=False, d={"page": "home"})

    views = [home, about, contact, about_again, home_again]
    assert sequence(wire) == [("load", home.bid)] + [
        pair
        for before, after in zip(views, views[1:], strict=False)
        for pair in (("unload", before.bid), ("load", after.bid))
    ]
    # One "unique today" ping for the whole visit, then one per route.
    # A ping's answer may reach this side after the beacon it led to: wait for all six.
    assert [(p.key, p.body) for p in wire.wait_pings(6)] == [
        (None, "0"),
        (f"{key}/history/", "0"),
        (f"{key}/history/about", "0"),
        (f"{key}/history/contact", "0"),
        (f"{key}/history/about", "1"),
        (f"{key}/history/", "1"),
    ]

    # An unload and the next load go out together, and the server may store the load first: wait for
    # every ended view's duration, not only for the five rows.
    rows = medama.wait_views(
        lambda v: len(v) == 5 and all(row["duration_ms"] is not None for row in v[:4]), "five views, four ended"
    )
    assert [row["bid"] for row in rows] == [view.bid for view in views]
    assert [(row["pathname"], row["is_unique_user"], row["is_unique_page"]) for row in rows] == [
        ("/history", 1, 1),
        ("/history/about", 0, 1),
        ("/history/contact", 0, 1),
        ("/history/about", 0, 0),
        ("/history", 0, 0),
    ]
    assert [(row["referrer_host"], row["referrer_group"]) for row in rows] == [("www.google.com", "Google")] + [
        ("", "")
    ] * 4
    # The server keeps each view's unload; the last view is still open.
    assert [row["duration_ms"] for row in rows] == [hit.body["m"] for hit in wire.unloads] + [None]
    assert medama.properties() == {view.bid: view.body["d"] for view in views}
    wire.check()


def test_hash_router(tracker: Tracker) -> None:
    medama, site = tracker.medama, tracker.site
    key = f"localhost:{site.port}/hash/"

    page, wire = tracker.open("/hash/")
    root = wire.wait("load", 1)
    root.expect_load(u=site.url("/hash/"), r="", p=True, q=True, h=True, d={"route": "/"})

    # Each #route is a view of its own, with a new beacon id.
    page.click("#about")
    about, ended = view_ended(wire, 2, 1)
    assert ended.bid == root.bid and ended.body["m"] > 0
    about.expect_load(u=site.url("/hash/#/about"), r=root.body["u"], p=False, q=True, h=True, d={"route": "/about"})
    page.click("#settings")
    settings, _ = view_ended(wire, 3, 2)
    settings.expect_load(
        u=site.url("/hash/#/settings"), r=about.body["u"], p=False, q=True, h=True, d={"route": "/settings"}
    )

    # The back button (hashchange and popstate both fire: one view).
    page.go_back()
    about_again, _ = view_ended(wire, 4, 3)
    about_again.expect_load(
        u=site.url("/hash/#/about"), r=settings.body["u"], p=False, q=False, h=True, d={"route": "/about"}
    )

    # A query change keeps the route; back from there to the page without a hash is a view again.
    page.evaluate("history.replaceState(null, '', '?tab=2#/about')")
    page.go_back()
    root_again, _ = view_ended(wire, 5, 4)
    root_again.expect_load(u=site.url("/hash/"), r=about_again.body["u"], p=False, q=False, h=True, d={"route": "/"})

    views = [root, about, settings, about_again, root_again]
    assert len({view.bid for view in views}) == 5
    assert sequence(wire) == [("load", root.bid)] + [
        pair
        for before, after in zip(views, views[1:], strict=False)
        for pair in (("unload", before.bid), ("load", after.bid))
    ]
    # A ping's answer may reach this side after the beacon it led to: wait for all six.
    assert [(p.key, p.body) for p in wire.wait_pings(6)] == [
        (None, "0"),
        (key, "0"),
        (f"{key}#/about", "0"),
        (f"{key}#/settings", "0"),
        (f"{key}#/about", "1"),
        (key, "1"),
    ]

    # h: true makes the server keep the fragment: every route is its own page.
    # An unload and the next load go out together, and the server may store the load first: wait for
    # every ended view's duration, not only for the five rows.
    rows = medama.wait_views(
        lambda v: len(v) == 5 and all(row["duration_ms"] is not None for row in v[:4]), "five views, four ended"
    )
    assert [row["bid"] for row in rows] == [view.bid for view in views]
    assert [(row["pathname"], row["is_unique_user"], row["is_unique_page"]) for row in rows] == [
        ("/hash", 1, 1),
        ("/hash#/about", 0, 1),
        ("/hash#/settings", 0, 1),
        ("/hash#/about", 0, 0),
        ("/hash", 0, 0),
    ]
    assert [row["duration_ms"] for row in rows] == [hit.body["m"] for hit in wire.unloads] + [None]
    assert medama.properties() == {view.bid: view.body["d"] for view in views}
    wire.check()
