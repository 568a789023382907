"""The websites list at many sites over real HTTP: `summary=true` and GET /websites/sparklines (our addition).

Both must give the numbers of each site's own /summary: the tests ask both on
random data, before and after the hours are rolled up, and on hand-made rows.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medama_core.api.websites import SPARKLINES_MAX_SITES, parse_hostname, parse_hostname_list
from medama_core.http.errors import HTTPError
from medama_core.store.sqlite import rollups
from tests.api.test_auth import error
from tests.api.test_users import add_user
from tests.helpers import Client, LiveServer, live_server
from tests.stores import marked

HOUR = 3_600_000
DAY = 24 * HOUR
EDGE_MARGIN = 10 * 60_000  # no row this close to the window's start: the test's clock and the server's differ a little


@pytest.fixture
def admin(client: Client) -> Client:
    client.login()
    return client


_bids = iter(range(10**9))


def insert_views(server: LiveServer, rows: list[tuple[str, int, int]]) -> None:
    """(hostname, Unix ms, unique visitor 0/1) rows, straight into the analytics database."""
    with sqlite3.connect(server.config.analyticsdb) as conn, marked(conn):
        conn.executemany(
            "INSERT INTO views (bid, hostname, pathname, is_unique_user, is_unique_page, ua_browser, ua_os,"
            " ua_device_type, duration_ms, date_created) VALUES (?, ?, '/', ?, 1, 'Firefox', 'Linux', 'Desktop',"
            " ?, ?)",
            [(f"v{next(_bids)}", host, unique, 1000 * (i % 7), at) for i, (host, at, unique) in enumerate(rows)],
        )


def roll_up(server: LiveServer) -> None:
    """Rebuild every closed dirty hour, as the server's refresher does in the background."""
    with sqlite3.connect(server.config.analyticsdb, isolation_level=None) as conn:
        rollups.refresh(conn, int(time.time() * 1000))


def rfc3339(ms: int, offset_minutes: int = 0) -> str:
    moment = datetime.fromtimestamp(ms / 1000, timezone(timedelta(minutes=offset_minutes)))
    return moment.isoformat(timespec="milliseconds")


def add_sites(admin: Client, names: list[str]) -> None:
    for name in names:
        assert admin.post("/api/websites", json_body={"hostname": name}).status == 201


def random_rows(rnd: random.Random, sites: list[str], now: int) -> list[tuple[str, int, int]]:
    """Views over the three days before now and the hour after it, none near the 24-hour edge."""
    rows = []
    edge = now - DAY
    for site in sites[:-1]:  # the last site has no views
        for _ in range(rnd.choice([1, 4, 30, 120])):
            at = now - 3 * DAY + rnd.randrange(3 * DAY + HOUR)
            if abs(at - edge) > EDGE_MARGIN:
                rows.append((site, at, int(rnd.random() < 0.5)))
    return rows


def sparklines(client: Client, hostnames: list[str], start: str, end: str, interval: str) -> Any:
    query = urlencode({"hostnames": ",".join(hostnames), "start": start, "end": end, "interval": interval})
    result = client.get(f"/api/websites/sparklines?{query}")
    assert result.status == 200, result.body
    return result.json()


def site_summary(client: Client, hostname: str, **query: str) -> Any:
    result = client.get(f"/api/website/{hostname}/summary?{urlencode(query)}")
    assert result.status == 200, result.body
    return result.json()


# ---- summary=true -----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(2))
def test_list_summary_equals_each_sites_summary(admin: Client, server: LiveServer, seed: int) -> None:
    rnd = random.Random(seed)
    sites = [f"site{i}.example" for i in range(8)]
    add_sites(admin, sites)
    now = int(time.time() * 1000)
    rows = random_rows(rnd, sites, now)
    insert_views(server, rows)
    expected = {site: sum(u for s, at, u in rows if s == site and at > now - DAY) for site in sites}
    for state in ("all hours dirty", "rolled up"):
        if state == "rolled up":
            roll_up(server)
        listed = admin.get("/api/websites?summary=true").json()
        assert [item["hostname"] for item in listed] == sorted(sites)
        got = {item["hostname"]: item["summary"]["visitors"] for item in listed}
        assert got == expected, state
        start = rfc3339(now - DAY + 1)  # the list's window: after now - 24 h, no end
        assert {site: site_summary(admin, site, start=start)["current"]["visitors"] for site in sites} == got


def test_list_summary_counts_only_the_callers_sites(admin: Client, server: LiveServer) -> None:
    add_sites(admin, ["mine.example", "theirs.example"])
    add_user(server, "other", "other-pass", role="viewer", websites=("theirs.example",))
    other = server.client()
    other.login("other", "other-pass")
    now = int(time.time() * 1000)
    insert_views(
        server, [("mine.example", now - HOUR, 1), ("theirs.example", now - HOUR, 1), ("theirs.example", now, 1)]
    )
    assert other.get("/api/websites?summary=true").json() == [
        {"hostname": "theirs.example", "summary": {"visitors": 2}}
    ]
    assert len(admin.get("/api/websites?summary=true").json()) == 2  # an admin reads every site
    other.close()


# ---- sparklines: the numbers ------------------------------------------------------------------------


def test_sparklines_on_hand_made_rows(admin: Client, server: LiveServer) -> None:
    add_sites(admin, ["hand.example", "empty.example"])
    t10 = int(datetime(2024, 6, 1, 10, tzinfo=UTC).timestamp() * 1000)
    insert_views(
        server,
        [
            ("hand.example", t10 + 15 * 60_000, 1),  # 10:15, a visitor
            ("hand.example", t10 + 45 * 60_000, 0),  # 10:45, a page view only
            ("hand.example", t10 + HOUR + 5 * 60_000, 1),  # 11:05
            ("hand.example", t10 + 2 * HOUR - 1, 1),  # 11:59:59.999
            ("hand.example", t10 + 3 * HOUR, 1),  # 13:00
            ("hand.example", t10 + 4 * HOUR, 1),  # 14:00, after the end
            ("hand.example", t10 - 1, 1),  # 09:59:59.999, before the start
        ],
    )
    # 10:00 to 13:59:59 UTC, asked in India's time (+05:30): the same four hours.
    for start, end in [
        ("2024-06-01T10:00:00Z", "2024-06-01T13:59:59Z"),
        ("2024-06-01T15:30:00+05:30", "2024-06-01T19:29:59+05:30"),
    ]:
        for state in ("dirty", "rolled up"):
            if state == "rolled up":
                roll_up(server)
            body = sparklines(admin, ["hand.example", "empty.example"], start, end, "hour")
            assert [site["hostname"] for site in body] == ["hand.example", "empty.example"]
            hand, empty = (site["interval"] for site in body)
            assert [(b["date"], b["visitors"], b["pageviews"]) for b in hand] == [
                ("2024-06-01 10:00:00+00", 1, 2),
                ("2024-06-01 11:00:00+00", 2, 2),
                ("2024-06-01 12:00:00+00", 0, 0),
                ("2024-06-01 13:00:00+00", 1, 1),
            ]
            assert [(b["visitors"], b["pageviews"]) for b in empty] == [(0, 0)] * 4
            assert set(hand[0]) == {"date", "visitors", "pageviews", "bounce_percentage", "duration"}


@pytest.mark.parametrize("seed", range(2))
def test_sparklines_equal_each_sites_summary_buckets(admin: Client, server: LiveServer, seed: int) -> None:
    rnd = random.Random(seed)
    sites = [f"spark{i}.example" for i in range(6)]
    add_sites(admin, sites)
    now = int(time.time() * 1000)
    insert_views(server, random_rows(rnd, sites, now))
    windows = [
        (now - DAY, now, "hour", 0),
        (now - DAY, now, "hour", 330),  # a half-hour offset: every hour straddles a bucket edge
        (now - 7 * DAY, now, "day", 120),
        (now - 3 * DAY, now + 2 * HOUR, "week", -420),
        (now - 40 * DAY, now, "month", 60),
    ]
    for state in ("dirty", "rolled up"):
        if state == "rolled up":
            roll_up(server)
        for lo, hi, interval, offset in windows:
            start, end = rfc3339(lo, offset), rfc3339(hi, offset)
            asked = rnd.sample(sites, rnd.randrange(1, len(sites) + 1))
            body = sparklines(admin, asked, start, end, interval)
            assert [site["hostname"] for site in body] == asked
            for site in body:
                own = site_summary(admin, site["hostname"], start=start, end=end, interval=interval)
                assert site["interval"] == own["interval"], (state, interval, site["hostname"])


def test_sparklines_start_rebuilding_closed_dirty_hours(admin: Client, server: LiveServer) -> None:
    """Like /summary, a sparklines read has the refresher rebuild the closed dirty hours it met."""
    add_sites(admin, ["busy.example"])
    now = int(time.time() * 1000)
    insert_views(server, [("busy.example", now - 3 * HOUR, 1)])
    sparklines(admin, ["busy.example"], rfc3339(now - DAY), rfc3339(now), "hour")
    deadline = time.monotonic() + 10
    with sqlite3.connect(server.config.analyticsdb) as conn:
        while conn.execute("SELECT count(*) FROM rollup_dirty WHERE hour < ?", (now // HOUR,)).fetchone()[0]:
            assert time.monotonic() < deadline, "closed hours still dirty"
            time.sleep(0.05)


# ---- sparklines: bounds, bad input, ownership -------------------------------------------------------


@pytest.fixture(scope="module")
def one_site(tmp_path_factory: pytest.TempPathFactory, engine: str) -> Iterator[Client]:
    """A server of the module's own with the admin logged in and a.example added, for the read-only checks."""
    with live_server(tmp_path_factory.mktemp("one_site")) as server:
        client = server.client()
        client.login()
        add_sites(client, ["a.example"])
        yield client
        client.close()


GOOD = {"start": "2024-06-01T00:00:00Z", "end": "2024-06-01T23:59:59Z", "interval": "hour"}


@pytest.mark.parametrize(
    "query, message",
    [
        ({**GOOD}, "hostnames: give 1 to"),
        ({**GOOD, "hostnames": ""}, "hostnames: give 1 to"),
        ({**GOOD, "hostnames": "a.example,,b.example"}, "hostnames: must be 1 to 253"),
        ({**GOOD, "hostnames": "a.example,"}, "hostnames: must be 1 to 253"),
        ({**GOOD, "hostnames": "bad_host"}, "hostnames: 'bad_host' is not a valid hostname"),
        ({**GOOD, "hostnames": "https://a.example"}, "hostnames:"),
        ({**GOOD, "hostnames": ",".join(f"s{i}.example" for i in range(51))}, "hostnames: at most 50"),
        ({"hostnames": "a.example", "end": GOOD["end"], "interval": "hour"}, "start: is required"),
        ({"hostnames": "a.example", "start": GOOD["start"], "interval": "hour"}, "end: is required"),
        ({"hostnames": "a.example", "start": GOOD["start"], "end": GOOD["end"]}, "interval: is required"),
        ({**GOOD, "hostnames": "a.example", "interval": "year"}, "interval: must be one of"),
        ({**GOOD, "hostnames": "a.example", "start": "yesterday"}, "start: 'yesterday' is not an RFC 3339"),
        ({**GOOD, "hostnames": "a.example", "end": "2024-02-30T00:00:00Z"}, "end: '2024-02-30T00:00:00Z' is not a"),
        ({**GOOD, "hostnames": "a.example", "interval": "minute"}, "interval: minute buckets from start to end"),
    ],
)
def test_sparklines_bad_input_is_400(one_site: Client, query: dict[str, str], message: str) -> None:
    status, text = error(one_site.get(f"/api/websites/sparklines?{urlencode(query)}"))
    assert status == 400
    assert text.startswith(message), text


def test_sparklines_bounds(admin: Client) -> None:
    sites = [f"s{i}.example" for i in range(SPARKLINES_MAX_SITES)]
    add_sites(admin, sites)
    body = sparklines(admin, sites, GOOD["start"], GOOD["end"], "hour")
    assert len(body) == SPARKLINES_MAX_SITES and all(len(site["interval"]) == 24 for site in body)
    # Repeats, in any case, count once: 51 names for 50 sites are fine.
    repeated = ",".join([*sites, sites[0].upper()])
    query = urlencode({**GOOD, "hostnames": repeated})
    result = admin.get(f"/api/websites/sparklines?{query}")
    assert error(result) == (400, f"hostnames: at most {SPARKLINES_MAX_SITES} hostnames per request")
    query = urlencode({**GOOD, "hostnames": "S1.example,s0.example,s1.example"})
    assert [site["hostname"] for site in admin.get(f"/api/websites/sparklines?{query}").json()] == [
        "s1.example",
        "s0.example",
    ]
    year = urlencode({"hostnames": "s0.example", "start": "2024-01-01T00:00:00Z", "end": "2024-12-31T23:59:59Z"})
    assert len(admin.get(f"/api/websites/sparklines?{year}&interval=day").json()[0]["interval"]) == 366


def test_sparklines_need_a_session_and_only_show_the_callers_sites(admin: Client, server: LiveServer) -> None:
    add_sites(admin, ["mine.example", "theirs.example"])
    add_user(server, "other", "other-pass", role="viewer", websites=("theirs.example",))
    other = server.client()
    other.login("other", "other-pass")
    now = int(time.time() * 1000)
    insert_views(server, [("theirs.example", now - HOUR, 1)])

    def ask(client: Client, hostnames: str) -> Any:
        return client.get(f"/api/websites/sparklines?{urlencode({**GOOD, 'hostnames': hostnames})}")

    assert error(ask(other, "mine.example")) == (404, "website not found")
    assert error(ask(other, "theirs.example,mine.example")) == (404, "website not found")
    assert error(ask(other, "nowhere.example")) == (404, "website not found")
    assert ask(other, "theirs.example").status == 200
    assert ask(admin, "mine.example,theirs.example").status == 200  # an admin reads every site
    anonymous = server.client()
    assert error(ask(anonymous, "mine.example"))[0] == 401
    anonymous.close()
    other.close()


def test_other_methods_on_the_sparklines_path_are_405(admin: Client) -> None:
    assert error(admin.delete("/api/websites/sparklines"))[0] == 405
    assert error(admin.patch("/api/websites/sparklines", json_body={"hostname": "x.example"}))[0] == 405


# ---- the hostnames parser ---------------------------------------------------------------------------

_LABEL = st.from_regex(r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?", fullmatch=True)
_HOSTNAME = st.one_of(st.just("localhost"), st.lists(_LABEL, min_size=2, max_size=4).map(".".join))


@given(st.one_of(st.none(), st.text(), st.text(alphabet="ab.-,_ Z1é", max_size=60)))
def test_hostname_list_parser_answers_a_list_or_400(text: str | None) -> None:
    """Any text: a list of 1 to SPARKLINES_MAX_SITES distinct valid hostnames taken from it, or a 400."""
    try:
        hostnames = parse_hostname_list(text)
    except HTTPError as exc:
        assert exc.status == 400
        return
    assert text is not None
    assert 1 <= len(hostnames) <= SPARKLINES_MAX_SITES
    assert len(set(hostnames)) == len(hostnames)
    assert all(parse_hostname(hostname) == hostname for hostname in hostnames)
    assert set(hostnames) == {part.lower() for part in text.split(",")}


@given(st.lists(_HOSTNAME, min_size=1, max_size=SPARKLINES_MAX_SITES))
def test_hostname_list_parser_keeps_valid_names_in_order(names: list[str]) -> None:
    expected = list(dict.fromkeys(name.lower() for name in names))
    assert parse_hostname_list(",".join(names)) == expected
