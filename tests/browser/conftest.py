"""Headless Debian Chromium driven by Playwright's async API (aiortc shares the loop).

Skips with a clear reason where /usr/bin/chromium is missing; CI sets
CLOUDSEAT_REQUIRE_BROWSER=1 and installs Chromium, turning that skip into a failure.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

# Helper modules whose plain `assert`s should explain themselves like the tests' own.
pytest.register_assert_rewrite("tests.browser.idcard_call")

CHROMIUM = os.environ.get("CLOUDSEAT_CHROMIUM", "/usr/bin/chromium")
REQUIRE_BROWSER = os.environ.get("CLOUDSEAT_REQUIRE_BROWSER") == "1"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
]


@pytest.fixture
async def browser() -> AsyncIterator[object]:
    if not Path(CHROMIUM).exists():
        if REQUIRE_BROWSER:
            pytest.fail(f"Chromium is required but {CHROMIUM} does not exist (apt-get install chromium)")
        pytest.skip(f"no Chromium at {CHROMIUM}; install Debian's chromium package to run browser tests")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
def screenshot_dir() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture
def fast_settings(app_settings):
    """A long offer timeout: axe and screenshots take a while on a shared machine (modules may override it)."""
    return app_settings.with_overrides(offer_timeout_s=60)
