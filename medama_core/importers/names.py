"""Other tools' names for browsers, systems, devices, countries and languages, turned into the ones we store."""

from __future__ import annotations

import functools
import json
import re
from importlib import resources
from typing import Final

from medama_core.ingest.language import UNKNOWN_LANGUAGE, Language, parse_accept_language
from medama_core.ingest.useragent import DESKTOP_OSES, UAP_BROWSERS, UAP_OSES, UNKNOWN

__all__ = ["browser", "country", "device", "language", "os_name"]

# Names other tools use that the ua-parser tables above lack (GoatCounter, Umami, Plausible spellings).
_EXTRA_BROWSERS: Final = {
    "chrome": "Chrome",
    "crios": "Chrome",
    "chromium-webview": "Chrome",
    "edge-chromium": "Edge",
    "edge-ios": "Edge",
    "fxios": "Firefox",
    "ios": "Safari",
    "ios-webview": "Safari",
    "safari": "Safari",
    "samsung": "Samsung Browser",
    "opera": "Opera",
    "firefox": "Firefox",
    "yandexbrowser": "Yandex Browser",
    "ie": "IE",
    "microsoft edge": "Edge",
    "samsung internet": "Samsung Browser",
}
_EXTRA_OSES: Final = {
    "macos": "MacOS",
    "mac os": "MacOS",
    "os x": "MacOS",
    "windows": "Windows",
    "linux": "Linux",
    "android": "Android",
    "android os": "Android",
    "ios": "iOS",
    "chrome os": "ChromeOS",
    "chromeos": "ChromeOS",
    "gnu/linux": "Linux",
    "ubuntu": "Linux",
    "openbsd": "OpenBSD",
    "mac": "MacOS",
}
_DEVICES: Final = {"desktop": "Desktop", "laptop": "Desktop", "mobile": "Mobile", "tablet": "Tablet", "tv": "TV"}
_VERSION_RE: Final = re.compile(r"\s+v?[\d._]+[\w.]*$|\s+\d+\s*$")
# Screen widths (CSS pixels) of the device classes, as Plausible and Umami draw the lines.
MOBILE_MAX_WIDTH: Final = 576
TABLET_MAX_WIDTH: Final = 992


def _without_version(name: str) -> str:
    return _VERSION_RE.sub("", name.strip())


def browser(name: str) -> str:
    """`Chrome 120`, `Mobile Safari`, `edge-chromium`: our browser name, or Unknown."""
    bare = _without_version(name)
    return UAP_BROWSERS.get(bare) or _EXTRA_BROWSERS.get(bare.lower()) or UNKNOWN


def os_name(name: str) -> str:
    """`Windows 10`, `macOS 14.1`, `Mac OS X`, `iOS 17.1`: our system name, or Unknown."""
    bare = _without_version(name)
    return UAP_OSES.get(bare) or _EXTRA_OSES.get(bare.lower()) or UNKNOWN


def device(name: str = "", width: int | None = None, os: str = UNKNOWN) -> str:
    """A device class by its name, else by screen width, else by system; Unknown when none tells."""
    named = _DEVICES.get(name.strip().lower())
    if named:
        return named
    if width:
        return "Mobile" if width < MOBILE_MAX_WIDTH else "Tablet" if width < TABLET_MAX_WIDTH else "Desktop"
    if os in ("iOS", "Android"):
        return "Mobile"
    return "Desktop" if os in DESKTOP_OSES else UNKNOWN


@functools.cache
def _regions() -> dict[str, str]:
    text = resources.files("medama_core.data").joinpath("language_names.json").read_text(encoding="utf-8")
    regions: dict[str, str] = json.loads(text)["regions"]
    return {code.upper(): name for code, name in regions.items()}


def country(code: str) -> str:
    """`US`, `us`, `US-TX` (ISO 3166-1 or -2): the English country name we store, or Unknown."""
    return _regions().get(code.strip()[:2].upper(), UNKNOWN) if len(code.strip()) >= 2 else UNKNOWN


def language(tag: str) -> Language:
    """`en-US`, `de`: the language and dialect we store (Unknown for an empty or unusable tag)."""
    return parse_accept_language(tag[:64]) or UNKNOWN_LANGUAGE if tag else UNKNOWN_LANGUAGE
