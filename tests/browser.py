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

# How long Playwright's `expect` waits for a state a user would see (its default is 5 s). The CI machine has
# 2 cores and runs every test on them: a render after an API answer has taken longer than 5 s there. The
# waits end as soon as the state shows, so this costs nothing when the page is quick, and the browser
# conftests set it before any test runs (expect.set_options is process-wide).
EXPECT_TIMEOUT_MS = 15_000
