"""Turn a User-Agent header into Agent(browser, os, device, is_bot) with upstream's names."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

__all__ = ["Agent", "UNKNOWN", "parse", "unknown_count"]

UNKNOWN: Final = "Unknown"

# Real browser User-Agents are 100-300 characters; the tail of anything longer
# carries no browser token worth the regex time, so only the head is read.
MAX_UA_CHARS: Final = 512

# Real traffic repeats a few thousand distinct User-Agents a day, and an Agent
# costs ~250 bytes, so 4,096 entries keep the hot set in about 1 MB.
CACHE_SIZE: Final = 4096

BROWSERS: Final = (
    "Android Browser", "Chrome", "Edge", "Firefox", "IE", "Opera", "Opera Mini", "Safari",
    "Vivaldi", "Samsung Browser", "Falkon", "Nintendo Browser", "Yandex Browser",
)  # fmt: skip
OSES: Final = ("Android", "ChromeOS", "iOS", "Linux", "OpenBSD", "MacOS", "Windows")
DEVICES: Final = ("Desktop", "Mobile", "Tablet", "TV", "Bot")


@dataclass(frozen=True, slots=True)
class Agent:
    browser: str
    os: str
    device: str
    is_bot: bool


# uap-core family -> upstream browser name. Families not listed here fall back
# to BROWSER_TOKENS, which reads the same tokens upstream's trie does (so, for
# instance, Brave and other Chromium shells count as Chrome, as upstream has it).
UAP_BROWSERS: Final = {
    "Android": "Android Browser",
    "Chrome": "Chrome",
    "Chrome Mobile": "Chrome",
    "Chrome Mobile iOS": "Chrome",
    "Chrome Mobile WebView": "Chrome",
    "Chromium": "Chrome",
    "Edge": "Edge",
    "Edge Mobile": "Edge",
    "Falkon": "Falkon",
    "Firefox": "Firefox",
    "Firefox Alpha": "Firefox",
    "Firefox Beta": "Firefox",
    "Firefox iOS": "Firefox",
    "Firefox Mobile": "Firefox",
    "Firefox Nightly": "Firefox",
    "IE": "IE",
    "IE Mobile": "IE",
    "Mobile Safari": "Safari",
    "Mobile Safari UI/WKWebView": "Safari",
    "NintendoBrowser": "Nintendo Browser",
    "Opera": "Opera",
    "Opera GX": "Opera",
    "Opera Mini": "Opera Mini",
    "Opera Mobile": "Opera",
    "Opera Touch": "Opera",
    "Safari": "Safari",
    "Samsung Internet": "Samsung Browser",
    "Vivaldi": "Vivaldi",
    "Yandex Browser": "Yandex Browser",
}

# uap-core OS family -> upstream OS name; distributions count as Linux.
UAP_OSES: Final = {
    "Android": "Android",
    "Arch Linux": "Linux",
    "CentOS": "Linux",
    "Chrome OS": "ChromeOS",
    "Debian": "Linux",
    "Fedora": "Linux",
    "Gentoo": "Linux",
    "iOS": "iOS",
    "Kubuntu": "Linux",
    "Linux": "Linux",
    "Linux Mint": "Linux",
    "Mac OS X": "MacOS",
    "Mandriva": "Linux",
    "OpenBSD": "OpenBSD",
    "Red Hat": "Linux",
    "Slackware": "Linux",
    "SUSE": "Linux",
    "openSUSE": "Linux",
    "Ubuntu": "Linux",
    "Windows": "Windows",
}

# Ordered token tables, first match wins. They are the whole parser when
# ua-parser is not installed, and the second opinion for families it reports
# that are not in UAP_BROWSERS / UAP_OSES. Tokens are the ones upstream's
# medama-io/go-useragent matches (internal/match.go, matchMap); a browser that
# embeds another's token (Edge says "Chrome", Chrome says "Safari") comes first.
# Upstream names that uap-core misses (it reports Falkon as Chrome and the
# Nintendo browser as Other), so these tokens are read before its answer.
UAP_BLIND_SPOTS: Final = (
    (re.compile(r"NintendoBrowser/"), "Nintendo Browser"),
    (re.compile(r"Falkon/"), "Falkon"),
)
BROWSER_TOKENS: Final = UAP_BLIND_SPOTS + tuple(
    (re.compile(pattern), name)
    for pattern, name in (
        (r"YaBrowser/", "Yandex Browser"),
        (r"SamsungBrowser/", "Samsung Browser"),
        (r"Vivaldi/", "Vivaldi"),
        (r"Opera Mini/", "Opera Mini"),
        (r"\b(?:OPR|OPiOS)/|\bOpera[/ ]", "Opera"),
        (r"\b(?:Edge?|EdgA|EdgiOS)/", "Edge"),
        (r"\bMSIE |\bTrident/", "IE"),
        (r"\b(?:Firefox|FxiOS)/", "Firefox"),
        (r"\b(?:Chrome|CriOS|Chromium)/", "Chrome"),
        # The stock Android browser: WebKit with "Version/" and no Chrome token.
        (r"\bAndroid\b.*\bVersion/[\d.]+", "Android Browser"),
        # iOS in-app web views drop "Safari/" but keep "Mobile/<build>".
        (r"\bSafari/|\bAppleWebKit/.*\bMobile/", "Safari"),
    )
)

OS_TOKENS: Final = tuple(
    (re.compile(pattern), name)
    for pattern, name in (
        (r"\bCrOS\b", "ChromeOS"),
        (r"\b(?:iPhone|iPad|iPod)\b", "iOS"),
        (r"\bAndroid\b", "Android"),
        (r"\bWindows\b", "Windows"),
        (r"\bMacintosh\b|\bMac OS X\b", "MacOS"),
        (r"\bOpenBSD\b", "OpenBSD"),
        # Tizen and webOS TVs say "Linux" too; upstream counts them as Linux.
        (r"\bLinux\b|\bUbuntu\b|\bFedora\b|\bX11\b", "Linux"),
    )
)

# Bot markers: upstream's DeviceBot tokens (go-useragent internal/match.go),
# plus crawler/spider words and the usual command-line and library clients.
# "Google" alone would also catch GoogleTV, so only Google's fetcher spellings
# (Googlebot, Google-InspectionTool, GoogleOther, FeedFetcher-Google, ...) count.
# "(?<!cu)bot" spares Cubot phones, whose model names contain "bot".
BOT_PATTERNS: Final = (
    r"(?i:(?<!cu)bot(?![a-z]))",
    r"(?i:crawl|spider|scraper)",
    r"Headless",
    r"Slurp",
    r"\bGoogle(?:bot|Other|-[A-Za-z])|-Google\b|\bGoogle (?:Favicon|Web Preview|Page Speed)",
    r"Mediapartners",
    r"facebookexternalhit|facebookcatalog",
    r"Baidu",
    r"Instagram",
    r"Pinterest",
    r"PageSpeedInsights|Chrome-Lighthouse",
    r"WhatsApp",
    r"LinkCheck",
    r"QuickLook",
    r"Haosou",
    r"Yahoo ?Ad",
    r"(?i:^(?:curl|wget|python-requests|python-urllib|python-httpx|aiohttp|go-http-client|okhttp"
    r"|axios|node-fetch|undici|libwww-perl|lwp-|java/|apache-httpclient|httpie|postmanruntime"
    r"|scrapy|ruby|php/|guzzlehttp)\b)",
)
BOT_RE: Final = re.compile("|".join(BOT_PATTERNS))

# Device markers, checked in this order; tokens from upstream's DeviceTV,
# DeviceTablet and DeviceMobile lists.
TV_RE: Final = re.compile(
    r"\bTV\b|SmartTV|SMART-TV|Smart-TV|\bLarge ?Screen\b|\bSmart ?Display\b|PlayStation|PLAYSTATION"
    r"|\bADT-[12]\b|\bCrKey\b|\bRoku\b|\bAFT[A-Z]|\bWeb0S\b|\bNexus Player\b|\bXbox\b|XBOX|Nintendo ?WiiU"
    r"|\bHbbTV\b|\bBRAVIA\b|\bAppleTV\b|\bGoogleTV\b"
)
TABLET_RE: Final = re.compile(r"\biPad\b|\bTablet\b|\bKindle\b|\bSilk/|Nintendo ?Switch")
MOBILE_RE: Final = re.compile(
    r"\bMobile\b|\bMobi\b|\biPhone\b|\biPod\b|\bOpera Mini\b|Windows ?Phone|\bBlackBerry\b|\bJ2ME\b"
)
ANDROID_RE: Final = re.compile(r"\bAndroid\b")
DESKTOP_OSES: Final = frozenset({"Windows", "MacOS", "Linux", "ChromeOS", "OpenBSD"})

# uap-core's device family for crawlers.
UAP_SPIDER: Final = "Spider"

# (ua) -> (browser family, os family, device family), or None without ua-parser.
_Families = Callable[[str], tuple[str, str, str]]


def _load_uap() -> _Families | None:
    """ua-parser is optional: use it when importable, else the token tables alone."""
    try:
        import ua_parser
    except ImportError:
        return None
    # A private, uncached resolver: our lru_cache sits in front of it, so the
    # package's own cache would only hold a second copy of every string.
    parser = ua_parser.Parser(ua_parser.BasicResolver(ua_parser.load_builtins()))

    def families(ua: str) -> tuple[str, str, str]:
        result = parser.parse(ua).with_defaults()
        return result.user_agent.family, result.os.family, result.device.family

    return families


@functools.cache
def _uap() -> _Families | None:
    # Loading uap-core's ~1,000 regexes takes ~0.2 s, so it waits for first use.
    return _load_uap()


def _first(table: tuple[tuple[re.Pattern[str], str], ...], ua: str) -> str:
    return next((name for pattern, name in table if pattern.search(ua)), UNKNOWN)


def _device(ua: str, os: str) -> str:
    if TV_RE.search(ua):
        return "TV"
    if TABLET_RE.search(ua):
        return "Tablet"
    if MOBILE_RE.search(ua):
        return "Mobile"
    if ANDROID_RE.search(ua):
        # Android tablets leave "Mobile" out of the User-Agent; phones keep it.
        return "Tablet"
    return "Desktop" if os in DESKTOP_OSES else UNKNOWN


def _browser(ua: str, family: str) -> str:
    blind_spot = _first(UAP_BLIND_SPOTS, ua)
    if blind_spot != UNKNOWN:
        return blind_spot
    return UAP_BROWSERS.get(family) or _first(BROWSER_TOKENS, ua)


@functools.lru_cache(maxsize=CACHE_SIZE)
def _parse(ua: str) -> Agent:
    families = _uap()
    browser_family, os_family, device_family = families(ua) if families else ("", "", "")
    browser = _browser(ua, browser_family)
    os = UAP_OSES.get(os_family) or _first(OS_TOKENS, ua)
    if device_family == UAP_SPIDER or BOT_RE.search(ua):
        return Agent(browser=browser, os=os, device="Bot", is_bot=True)
    return Agent(browser=browser, os=os, device=_device(ua, os), is_bot=False)


def parse(ua: str) -> Agent:
    """Parse a User-Agent header; names outside upstream's lists become "Unknown"."""
    return _parse(ua[:MAX_UA_CHARS].strip())


def unknown_count(agent: Agent) -> int:
    """How many of browser, os and device are "Unknown" (spec §3.2 step 4)."""
    return (agent.browser, agent.os, agent.device).count(UNKNOWN)
