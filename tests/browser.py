"""Shared settings for the tests that drive Debian's Chromium through Playwright."""

from __future__ import annotations

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")

# Headless, no sandbox (we run as root), and none of Chromium's own background traffic: this
# machine's network is closed, and those connections would be refused by the dozen at start.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Playwright's sync API runs an event loop in the main thread while it is started, and only one
# may run at a time: each test package starts its own Playwright with scope="package", so it is
# stopped before the next package (whose tests may call asyncio.run) begins.
PLAYWRIGHT_SCOPE = "package"
