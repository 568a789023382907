"""The ping date logic as a pure function with an injected clock, across UTC midnights."""

from __future__ import annotations

import calendar
import os
import time
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medama_core.ingest.ping import DAY_S, InvalidDate, answer, day_start, format_http_date, parse_http_date


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    return calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))


def test_first_ping_of_the_day_is_zero_with_last_modified_at_utc_midnight() -> None:
    ping = answer(None, utc(2024, 3, 5, 14, 30))
    assert (ping.body, ping.last_modified, ping.cache_control) == ("0", "Tue, 05 Mar 2024 00:00:00 GMT", "no-cache")


def test_revalidation_the_same_day_is_one_and_cached_until_next_midnight() -> None:
    now = utc(2024, 3, 5, 14, 30)
    first = answer(None, now)
    second = answer(first.last_modified, now + 60)
    assert second.body == "1"
    assert second.last_modified == first.last_modified, "the If-Modified-Since value is echoed"
    assert second.cache_control == f"max-age={utc(2024, 3, 6) - (now + 60)}"


def test_a_browser_session_across_midnight() -> None:
    """Replays what a browser cache does: first ping, revalidations, expiry at midnight, new day."""
    clock = utc(2024, 12, 31, 23, 50)
    cached: tuple[str, float] | None = None  # (Last-Modified, expiry)
    bodies = []
    for _ in range(8):
        if cached is not None and clock < cached[1]:
            bodies.append("1 (from cache)")
        else:
            ping = answer(cached[0] if cached else None, clock)
            bodies.append(ping.body)
            max_age = int(ping.cache_control.removeprefix("max-age=")) if ping.body == "1" else 0
            cached = (ping.last_modified, clock + max_age)
        clock += 240  # four minutes later
    assert bodies == ["0", "1", "1 (from cache)", "0", "1", "1 (from cache)", "1 (from cache)", "1 (from cache)"]


def test_a_date_from_yesterday_means_a_new_day() -> None:
    ping = answer("Mon, 04 Mar 2024 23:59:59 GMT", utc(2024, 3, 5, 0, 0, 1))
    assert ping.body == "0"
    assert ping.last_modified == "Tue, 05 Mar 2024 00:00:00 GMT"


def test_exactly_midnight_counts_as_today() -> None:
    now = utc(2024, 3, 5)
    ping = answer("Tue, 05 Mar 2024 00:00:00 GMT", now)
    assert (ping.body, ping.cache_control) == ("1", f"max-age={DAY_S}")


def test_a_future_date_is_echoed_with_its_own_24_hours() -> None:
    now = utc(2024, 3, 5, 12)
    ping = answer("Fri, 08 Mar 2024 00:00:00 GMT", now)
    assert (ping.body, ping.last_modified) == ("1", "Fri, 08 Mar 2024 00:00:00 GMT")
    assert ping.cache_control == f"max-age={utc(2024, 3, 9) - now}"


def test_an_empty_header_is_treated_as_absent() -> None:
    assert answer("", utc(2024, 3, 5)).body == "0"


@pytest.mark.parametrize(
    "value",
    [
        "yesterday",
        "2024-03-05T00:00:00Z",
        "Tue, 05 Mar 2024 00:00:00 UTC",
        "Tue, 5 Mar 2024 00:00:00 GMT",
        "Tuesday, 05-Mar-24 00:00:00 GMT",
        "Tue Mar  5 00:00:00 2024",
        "Tue, 30 Feb 2024 00:00:00 GMT",
        "Tue, 05 Mar 2024 24:00:00 GMT",
        "Tue, 05 Mar 2024 00:60:00 GMT",
        "Tue, 05 Mar 2024 00:00:60 GMT",
        "Tue, 05 Foo 2024 00:00:00 GMT",
        "Xyz, 05 Mar 2024 00:00:00 GMT",
        " Tue, 05 Mar 2024 00:00:00 GMT",
        "Tue, 05 Mar 2024 00:00:00 GMT" + "0" * 100,
    ],
)
def test_anything_but_an_imf_fixdate_is_invalid(value: str) -> None:
    with pytest.raises(InvalidDate):
        answer(value, utc(2024, 3, 5))


@pytest.mark.parametrize(
    "value",
    ["tue, 05 mar 2024 00:00:00 GMT", "Mon, 05 Mar 2024 00:00:00 GMT", "Tue, 05 Mar 2024 00:00:00.123 GMT"],
    ids=["lower-case names", "weekday not checked", "fraction"],
)
def test_go_time_parse_leniencies_are_kept(value: str) -> None:
    assert parse_http_date(value) == utc(2024, 3, 5)


def test_leap_day_and_year_zero_parse() -> None:
    assert parse_http_date("Thu, 29 Feb 2024 12:00:00 GMT") == utc(2024, 2, 29, 12)
    assert parse_http_date("Sat, 01 Jan 0000 00:00:00 GMT") < 0
    with pytest.raises(InvalidDate):
        parse_http_date("Fri, 29 Feb 2023 12:00:00 GMT")


@given(st.integers(min_value=-(10**10), max_value=2 * 10**11))
def test_format_and_parse_round_trip(seconds: int) -> None:
    assert parse_http_date(format_http_date(seconds)) == seconds


@given(st.floats(min_value=0, max_value=4 * 10**9, allow_nan=False))
def test_day_start_is_the_utc_midnight_at_or_before_now(now: float) -> None:
    start = day_start(now)
    assert start % DAY_S == 0 and start <= now < start + DAY_S
    assert format_http_date(start).endswith(" 00:00:00 GMT")


@given(st.text(max_size=40))
def test_any_header_value_gives_an_answer_or_invalid_date(value: str) -> None:
    try:
        ping = answer(value, utc(2024, 3, 5))
    except InvalidDate:
        return
    assert ping.body in ("0", "1")


@pytest.fixture
def far_from_utc() -> Iterator[None]:
    """Run with the process time zone set to UTC+14, where upstream's day boundary was off by 14 hours."""
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "Pacific/Kiritimati"
    time.tzset()
    try:
        yield
    finally:
        if saved is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved
        time.tzset()


@pytest.mark.usefixtures("far_from_utc")
def test_day_boundary_ignores_the_local_time_zone() -> None:
    assert time.localtime(utc(2024, 3, 5, 11)).tm_mday == 6, "the fixture really moved the zone"
    ping = answer(None, utc(2024, 3, 5, 11))
    assert ping.last_modified == "Tue, 05 Mar 2024 00:00:00 GMT"
    assert answer(ping.last_modified, utc(2024, 3, 5, 23, 59)).body == "1"
    assert answer(ping.last_modified, utc(2024, 3, 6, 0, 0)).body == "0"
