"""Wire compatibility with upstream Medama, both ways, from a real browser.

Our server must take upstream's tracker beacons (text/plain JSON, no `h`), and
our tracker's beacons must pass upstream's payload rules (spec §3.1), so that
either side can be swapped for the other.
"""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # conftest is pytest's to import; these names only annotate
    from tests.tracker.conftest import Tracker

pytestmark = pytest.mark.browser

UPSTREAM_ID = "m3k2x9q1abcdefghij"

# What upstream's tracker does, written out: pings by XHR with a Content-Type header (a
# CORS-safelisted value, so still no preflight), then the load by fetch(no-cors) and the unload
# by sendBeacon, both JSON strings, so text/plain;charset=UTF-8, without the "h" field.
UPSTREAM_VISIT = """async ({api, id}) => {
    const ping = (query) => new Promise((resolve, reject) => {
        const xhr = new XMLHttpRequest();
        xhr.onload = () => resolve(xhr.responseText);
        xhr.onerror = reject;
        xhr.open("GET", api + "event/ping" + query);
        xhr.setRequestHeader("Content-Type", "text/plain");
        xhr.send();
    });
    const unique = await ping("");
    const first = await ping("?u=" + encodeURIComponent(location.host + location.pathname));
    const post = (body) => fetch(api + "event/hit", {
        method: "POST", body: JSON.stringify(body), mode: "no-cors", keepalive: true,
    });
    await post({
        b: id, e: "load", u: location.href + "?utm_source=newsletter#/dropped",
        r: "https://www.google.com/", p: unique == 0, q: first == 0,
        t: Intl.DateTimeFormat().resolvedOptions().timeZone,
        d: {plan: "pro", seats: 3, trial: true},
    });
    await post({b: id, e: "custom", g: location.hostname, d: {action: "signup"}});
    navigator.sendBeacon(api + "event/hit", JSON.stringify({b: id, e: "unload", m: 1234}));
    return [unique, first];
}"""


def test_server_takes_upstream_beacons(tracker: Tracker) -> None:
    medama = tracker.medama
    page, wire = tracker.open("/blank/")
    answers = page.evaluate(UPSTREAM_VISIT, {"api": medama.api, "id": UPSTREAM_ID})
    assert answers == ["0", "0"]
    wire.wait("unload", 1)
    assert [hit.kind for hit in wire.hits] == ["load", "custom", "unload"]
    assert [hit.status for hit in wire.hits] == [204, 204, 204]

    rows = medama.wait_views(lambda v: v and v[0]["duration_ms"], "the upstream view with its duration")
    assert len(rows) == 1
    row = rows[0]
    # Without "h" the fragment is dropped, as upstream's server does.
    assert {key: row[key] for key in ("bid", "pathname", "is_unique_user", "is_unique_page", "duration_ms")} == {
        "bid": UPSTREAM_ID,
        "pathname": "/blank",
        "is_unique_user": 1,
        "is_unique_page": 1,
        "duration_ms": 1234,
    }
    assert (row["referrer_host"], row["referrer_group"], row["utm_source"]) == (
        "www.google.com",
        "Google",
        "newsletter",
    )
    assert (row["country"], row["language_base"], row["ua_browser"]) == ("United Kingdom", "English", "Chrome")
    events = medama.events()
    assert [(e["bid"], e["group_name"], e["name"], e["value"]) for e in events] == [
        (UPSTREAM_ID, "localhost", "plan", "pro"),
        (UPSTREAM_ID, "localhost", "seats", "3"),
        (UPSTREAM_ID, "localhost", "trial", "true"),
        (UPSTREAM_ID, "localhost", "action", "signup"),
    ]
    assert len({e["batch_id"] for e in events}) == 2
    wire.check()


# --- Upstream's payload rules (spec §3.1) ---------------------------------------------------------

_REQUIRED: dict[str, dict[str, type]] = {
    "load": {"b": str, "u": str, "p": bool, "q": bool},
    "unload": {"b": str, "m": int},
    "custom": {"g": str, "d": dict},
}
_OPTIONAL: dict[str, dict[str, type]] = {
    "load": {"r": str, "t": str, "d": dict},
    "unload": {},
    "custom": {"b": str},
}


def _is(value: Any, kind: type) -> bool:
    # JSON true/false are bool, which Python also counts as int.
    return isinstance(value, kind) and (kind is bool or not isinstance(value, bool))


def upstream_problems(body: Any) -> list[str]:
    """Why upstream's decoder would refuse `body`; [] when it takes it.

    Per variant: the required fields with their JSON types, optional fields
    typed when present (null is not a string), `u` a URL with scheme and
    host, `m` > 0, `d` an object of string, integer or boolean values and,
    for custom events, not empty. Unknown keys (our `h`) are ignored.
    """
    if not isinstance(body, dict):
        return ["not an object"]
    kind = body.get("e")
    if kind not in _REQUIRED:
        return [f"unknown e {kind!r}"]
    problems = [f"{key} missing" for key in _REQUIRED[kind] if key not in body]
    for key, expected in (_REQUIRED[kind] | _OPTIONAL[kind]).items():
        if key in body and not _is(body[key], expected):
            problems.append(f"{key} is not {expected.__name__}: {body[key]!r}")
    if kind == "load" and isinstance(body.get("u"), str):
        url = urllib.parse.urlsplit(body["u"])
        if not (url.scheme and url.netloc):
            problems.append(f"u is not an absolute URL: {body['u']!r}")
    if kind == "unload" and _is(body.get("m"), int) and body["m"] <= 0:
        problems.append(f"m is not positive: {body['m']}")
    props = body.get("d")
    if isinstance(props, dict):
        problems += [f"d.{k} is {v!r}" for k, v in props.items() if not any(_is(v, t) for t in (str, int, bool))]
        if kind == "custom" and not props:
            problems.append("custom d is empty")
    return problems


@pytest.mark.parametrize(
    "body, problem",
    [
        ({"b": "x", "e": "load", "u": "https://a.example/", "p": True, "q": False, "h": True}, None),
        ({"b": "x", "e": "load", "u": "/relative", "p": True, "q": False}, "u is not an absolute URL"),
        ({"b": "x", "e": "load", "u": "https://a.example/", "p": 1, "q": False}, "p is not bool"),
        ({"b": "x", "e": "load", "u": "https://a.example/", "p": True}, "q missing"),
        ({"b": "x", "e": "load", "u": "https://a.example/", "p": True, "q": True, "r": None}, "r is not str"),
        ({"b": "x", "e": "unload", "m": 0}, "m is not positive"),
        ({"b": "x", "e": "unload", "m": 1.5}, "m is not int"),
        ({"b": "x", "e": "unload", "m": True}, "m is not int"),
        ({"e": "custom", "g": "a.example", "d": {}}, "custom d is empty"),
        ({"e": "custom", "g": "a.example", "d": {"k": [1]}}, "d.k is [1]"),
        ({"e": "pageview"}, "unknown e"),
    ],
)
def test_upstream_rules_checker(body: dict[str, Any], problem: str | None) -> None:
    problems = upstream_problems(body)
    if problem is None:
        assert problems == []
    else:
        assert any(found.startswith(problem) for found in problems), problems


def test_tracker_beacons_pass_upstream_rules(tracker: Tracker) -> None:
    # Every kind of beacon, from the full build in hash mode ("h", "d") and the default build.
    page, wire = tracker.open("/hash/")
    wire.wait("load", 1)
    page.evaluate("document.body.insertAdjacentHTML('beforeend', '<p id=\"p\" data-m:click=\"k=v\">x</p>')")
    page.click("#p")
    page.click("#about")
    wire.wait("load", 2)
    wire.set_hidden(True)
    wire.wait("unload", 2)
    page2, wire2 = tracker.open("/module/")
    wire2.wait("load", 1)
    wire2.set_hidden(True)
    wire2.wait("unload", 1)

    hits = wire.hits + wire2.hits
    assert sorted({(hit.kind, "h" in hit.body, "d" in hit.body) for hit in hits}) == [
        ("custom", False, True),
        ("load", False, False),
        ("load", True, True),
        ("unload", False, False),
    ]
    assert {hit.content_type for hit in hits} == {"text/plain;charset=UTF-8"}
    for hit in hits:
        assert upstream_problems(hit.body) == [], hit.body
    wire.check()
    wire2.check()
