"""The tracker in Chromium: data-m:click custom events, and the build /script.js serves per script_type."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # conftest is pytest's to import; these names only annotate
    from tests.tracker.conftest import Tracker

pytestmark = pytest.mark.browser

ADD_LATE_BUTTON = """() => {
    const button = document.createElement("button");
    button.id = "late";
    button.textContent = "Added after load";
    button.setAttribute("data-m:click", "action=late");
    document.getElementById("late-slot").append(button);
}"""


def test_click_events(tracker: Tracker) -> None:
    medama = tracker.medama
    page, wire = tracker.open("/clicks/")
    load = wire.wait("load", 1)
    load.expect_load(u=tracker.site.url("/clicks/"), r="", p=True, q=True, d={})

    page.click("#tagged")  # left
    page.click("#tagged", button="middle")  # auxclick; counted once
    page.click("#tagged", button="right")  # ignored
    page.click("#untagged")  # no attribute
    page.click("#empty")  # an attribute without a usable pair
    page.click("#grandchild")  # inside a tagged element
    page.click("#child")
    page.evaluate(ADD_LATE_BUTTON)
    page.click("#late")  # added after the tracker started
    page.click("#odd")  # "a = b = c" counts as a=b; keys and values are trimmed
    wire.wait("custom", 6)
    tagged = {"action": "button", "kind": "plain"}
    card = {"action": "card", "where": "child"}
    expected = [tagged, tagged, card, card, {"action": "late"}, {"a": "b", "spaced key": "spaced value"}]
    assert [hit.body for hit in wire.customs] == [
        {"b": load.bid, "e": "custom", "g": "localhost", "d": props} for props in expected
    ]

    rows = medama.wait_events(sum(map(len, expected)))
    assert {(row["bid"], row["group_name"]) for row in rows} == {(load.bid, "localhost")}
    batches: dict[str, dict[str, str]] = {}
    for row in rows:
        batches.setdefault(row["batch_id"], {})[row["name"]] = row["value"]
    assert list(batches.values()) == expected  # one batch per click, in order
    assert all(batch.startswith("event_") for batch in batches)

    # A click on a tagged link that leaves the page: the event outlives the page (keepalive).
    page.click("#leave")
    page.wait_for_selector("#arrived")
    rows = medama.wait_events(len(rows) + 1)
    assert (rows[-1]["bid"], rows[-1]["name"], rows[-1]["value"]) == (load.bid, "action", "leave")
    views = medama.wait_views(lambda v: v and v[0]["duration_ms"], "the duration sent when the page was left")
    assert [row["bid"] for row in views] == [load.bid]
    # DevTools reports requests in flight when a page is left as aborted; the server has the event.
    assert set(wire.failures) <= {f"POST {medama.api}event/hit: net::ERR_ABORTED"}
    wire.failures.clear()
    wire.check()


@pytest.mark.parametrize(
    "script_type, has_load_props, has_clicks",
    [
        ([], False, False),
        (["page-events"], True, False),
        (["click-events"], False, True),
        (["click-events", "page-events"], True, True),
    ],
)
def test_script_js_serves_the_chosen_build(
    tracker: Tracker, script_type: list[str], has_load_props: bool, has_clicks: bool
) -> None:
    tracker.medama.set_tenant(script_type=script_type)
    page, wire = tracker.open("/clicks/")
    load = wire.wait("load", 1)
    assert ("d" in load.body) is has_load_props
    page.click("#tagged")
    wire.set_hidden(True)
    wire.wait("unload", 1)
    assert len(wire.customs) == has_clicks
    wire.check()
