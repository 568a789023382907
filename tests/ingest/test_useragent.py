"""User-Agent parsing: real browser and bot strings, with and without ua-parser."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medama_core.ingest import useragent
from medama_core.ingest.useragent import Agent, parse, unknown_count

CHROME_WIN = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)

# (id, user agent, expected agent). Strings are as the browsers send them.
CASES = [
    ("chrome-windows", CHROME_WIN, Agent("Chrome", "Windows", "Desktop", False)),
    (
        "firefox-ubuntu",
        "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
        Agent("Firefox", "Linux", "Desktop", False),
    ),
    (
        "firefox-android",
        "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0",
        Agent("Firefox", "Android", "Mobile", False),
    ),
    (
        "firefox-ios",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "FxiOS/125.0 Mobile/15E148 Safari/605.1.15",
        Agent("Firefox", "iOS", "Mobile", False),
    ),
    (
        "safari-mac",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.4 Safari/605.1.15",
        Agent("Safari", "MacOS", "Desktop", False),
    ),
    (
        "safari-iphone",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.4 Mobile/15E148 Safari/604.1",
        Agent("Safari", "iOS", "Mobile", False),
    ),
    (
        "chrome-ipad",
        "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1",
        Agent("Chrome", "iOS", "Tablet", False),
    ),
    (
        "edge-windows",
        CHROME_WIN + " Edg/124.0.2478.67",
        Agent("Edge", "Windows", "Desktop", False),
    ),
    (
        "samsung-internet",
        "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
        Agent("Samsung Browser", "Android", "Mobile", False),
    ),
    ("opera", CHROME_WIN + " OPR/109.0.0.0", Agent("Opera", "Windows", "Desktop", False)),
    (
        "android-webview",
        "Mozilla/5.0 (Linux; Android 13; Pixel 7 Build/TQ3A.230901.001; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.82 Mobile Safari/537.36",
        Agent("Chrome", "Android", "Mobile", False),
    ),
    (
        "chrome-android-tablet",
        "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
        Agent("Chrome", "Android", "Tablet", False),
    ),
    (
        "chromeos",
        "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
        Agent("Chrome", "ChromeOS", "Desktop", False),
    ),
    (
        "yandex",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 YaBrowser/24.4.0.0 Safari/537.36",
        Agent("Yandex Browser", "Windows", "Desktop", False),
    ),
    ("vivaldi", CHROME_WIN + " Vivaldi/6.7", Agent("Vivaldi", "Windows", "Desktop", False)),
    (
        "ie11",
        "Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; rv:11.0) like Gecko",
        Agent("IE", "Windows", "Desktop", False),
    ),
    (
        "falkon",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) Falkon/3.1.0 "
        "Chrome/83.0.4103.122 Safari/538.1",
        Agent("Falkon", "Linux", "Desktop", False),
    ),
    (
        "openbsd-firefox",
        "Mozilla/5.0 (X11; OpenBSD amd64; rv:109.0) Gecko/20100101 Firefox/115.0",
        Agent("Firefox", "OpenBSD", "Desktop", False),
    ),
    (
        "samsung-tv",
        "Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/4.0 Chrome/76.0.3809.146 TV Safari/537.36",
        Agent("Samsung Browser", "Linux", "TV", False),
    ),
    (
        "googlebot",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        Agent("Unknown", "Unknown", "Bot", True),
    ),
    (
        "bingbot",
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        Agent("Unknown", "Unknown", "Bot", True),
    ),
    (
        "headless-chrome",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36",
        Agent("Safari", "Linux", "Bot", True),
    ),
    ("curl", "curl/8.5.0", Agent("Unknown", "Unknown", "Bot", True)),
    ("python-requests", "python-requests/2.31.0", Agent("Unknown", "Unknown", "Bot", True)),
    (
        "facebook",
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        Agent("Unknown", "Unknown", "Bot", True),
    ),
    ("empty", "", Agent("Unknown", "Unknown", "Unknown", False)),
]


@pytest.fixture
def without_uap(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Parse as if ua-parser were not installed."""
    useragent._parse.cache_clear()
    monkeypatch.setattr(useragent, "_uap", lambda: None)
    yield
    useragent._parse.cache_clear()


@pytest.mark.parametrize(("ua", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_parse(ua: str, expected: Agent) -> None:
    assert parse(ua) == expected


@pytest.mark.parametrize(("ua", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
@pytest.mark.usefixtures("without_uap")
def test_parse_without_ua_parser(ua: str, expected: Agent) -> None:
    assert parse(ua) == expected


def test_uses_ua_parser_when_installed() -> None:
    pytest.importorskip("ua_parser")
    assert useragent._uap() is not None


@pytest.mark.parametrize(
    ("ua", "is_bot"),
    [
        ("Mozilla/5.0 (Linux; Android 11; Cubot X30) AppleWebKit/537.36 Chrome/124.0 Mobile", False),
        ("Mozilla/5.0 (Linux; GoogleTV 3.2) AppleWebKit/534.24 Chrome/11.0.696.77 Safari/534.24", False),
        ("Mozilla/5.0 (compatible; Google-InspectionTool/1.0)", True),
        ("Mediapartners-Google", True),
        ("Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)", True),
        ("Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)", True),
        ("Wget/1.21.4", True),
        ("Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)", True),
    ],
    ids=["cubot-phone", "google-tv", "google-inspection", "mediapartners", "yandexbot", "semrush", "wget", "baidu"],
)
def test_bot_tokens(ua: str, is_bot: bool) -> None:
    agent = parse(ua)
    assert agent.is_bot is is_bot
    assert (agent.device == "Bot") is is_bot


@pytest.mark.parametrize(
    ("agent", "count"),
    [
        (Agent("Chrome", "Windows", "Desktop", False), 0),
        (Agent("Chrome", "Unknown", "Desktop", False), 1),
        (Agent("Unknown", "Unknown", "Mobile", False), 2),
        (Agent("Unknown", "Unknown", "Unknown", False), 3),
    ],
    ids=["none", "one", "two", "three"],
)
def test_unknown_count(agent: Agent, count: int) -> None:
    assert unknown_count(agent) == count


def test_long_user_agent_is_cut() -> None:
    agent = parse(CHROME_WIN + " " + "x" * 100_000 + " Edg/124.0")
    assert agent == Agent("Chrome", "Windows", "Desktop", False)


def test_names_stay_in_upstream_lists() -> None:
    for _, ua, _ in CASES:
        agent = parse(ua)
        assert agent.browser in (*useragent.BROWSERS, "Unknown")
        assert agent.os in (*useragent.OSES, "Unknown")
        assert agent.device in (*useragent.DEVICES, "Unknown")


def test_cached_parse_is_fast() -> None:
    parse(CHROME_WIN)
    start = time.perf_counter()
    for _ in range(1000):
        parse(CHROME_WIN)
    # A cache hit is a dict lookup; 1,000 of them take well under 50 ms even on slow CI.
    assert time.perf_counter() - start < 0.05


@settings(deadline=None)  # the first call loads uap-core's regexes (~0.2 s)
@given(st.text(max_size=700))
def test_any_text_gives_an_agent(ua: str) -> None:
    agent = parse(ua)
    assert isinstance(agent, Agent)
    assert agent.is_bot is (agent.device == "Bot")
    assert agent.browser in (*useragent.BROWSERS, "Unknown")
    assert agent.os in (*useragent.OSES, "Unknown")
