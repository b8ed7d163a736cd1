"""Logging in through the real login form, in a fresh browser context: shared by the browser tests."""

from __future__ import annotations

from typing import Any

from tests.signaling_fixtures import PASSWORD


async def log_in_new_context(browser: Any, base_url: str, username: str, *, viewport: dict[str, int],
                             landing: str, lang: str | None = None) -> tuple[Any, Any]:
    """A fresh context (Shanghai time, `lang` cookie if given) logged in as `username`, once on `landing`."""
    context = await browser.new_context(viewport=viewport, timezone_id="Asia/Shanghai")
    if lang:
        await context.add_cookies([{"name": "lang", "value": lang, "url": base_url}])
    page = await context.new_page()
    await page.goto(f"{base_url}/login")
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base_url}{landing}")
    return context, page
