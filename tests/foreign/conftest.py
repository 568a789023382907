"""Chromium for the foreign trackers' tests: one per package; site.test, medama.test, elsewhere.test on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.browser import CHROMIUM, CHROMIUM_ARGS, PLAYWRIGHT_SCOPE

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # requirements-dev.txt has it; without it only the browser tests skip
    sync_playwright = None

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Playwright

HOSTS = ("site.test", "medama.test", "elsewhere.test")


@pytest.fixture(scope=PLAYWRIGHT_SCOPE)
def playwright() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (install Debian's chromium package to run the browser tests)")
    if sync_playwright is None:
        pytest.skip("the playwright package is not installed (pip install -r requirements-dev.txt)")
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope=PLAYWRIGHT_SCOPE)
def browser(playwright: Playwright) -> Iterator[Browser]:
    rules = "--host-resolver-rules=" + ", ".join(f"MAP {host} 127.0.0.1" for host in HOSTS)
    chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, rules])
    yield chromium
    chromium.close()
