"""The 电子监察 page in real Chromium against the real server, with a fixed alert clock.

A supervisor sees yellow, red and blue alerts (each with its own icon and text, not colour
alone), acknowledges one and resolves it with a note; a complaint filed at a booth appears
live without a reload.  An admin changes the rules in the editor.  Every screen passes axe and
is photographed into var/screenshots/supervise-alerts-<screen>.png.
"""

from __future__ import annotations

from contextlib import closing
from datetime import date
from typing import Any

import pytest
from sqlmodel import Session

from records.alerts import effective_rules
from signaling.supervision_sweep import run_sweep
from tests.browser.a11y import assert_accessible
from tests.browser.login import log_in_new_context
from tests.integration.test_supervision_alerts import at, case_for, site
from tests.web_clients import booth_client

pytestmark = pytest.mark.browser

LAPTOP = {"width": 1366, "height": 900}
BOOTHS = {"东城街道政务晓屋01": "dongcheng", "东城街道政务晓屋02": "dongcheng", "西区政务晓屋01": "west"}
WAIT_MS = 30_000


async def open_page(browser: Any, base_url: str, username: str, *, lang: str | None = None) -> tuple[Any, Any]:
    context, page = await log_in_new_context(browser, base_url, username, viewport=LAPTOP, landing="/supervise",
                                             lang=lang)
    await page.goto(f"{base_url}/supervise/alerts")
    await page.wait_for_selector("body[data-alerts-loaded=true][data-live=live]", timeout=WAIT_MS)
    return context, page


async def shot(page: Any, screenshot_dir: Any, screen: str) -> None:
    await page.screenshot(path=str(screenshot_dir / f"supervise-alerts-{screen}.png"), full_page=True)


def seed_alerts(s: Any) -> dict[str, int]:
    """A yellow, a red and two blues, as on 30 Sep 2026 at 10:00."""
    near = case_for(s, "东城街道政务晓屋01", date(2026, 10, 9))
    overdue = case_for(s, "东城街道政务晓屋02", date(2026, 9, 24))
    views = run_sweep(s.engine, at("2026-09-30", "10:00"))
    with closing(booth_client(s.url, s.tokens["东城街道政务晓屋02"])) as booth:
        blue = booth.post("/api/booth/complaints",
                          json={"category": "waited_too_long", "text": "排队四十分钟无人接听"}).json()["alert_id"]
    by_case = {v["case_id"]: v["id"] for v in views}
    return {"yellow": by_case[near], "red": by_case[overdue], "blue": blue}


async def test_supervisor_acknowledges_resolves_and_sees_new_alerts_live(browser, app_settings, screenshot_dir):
    with site(app_settings, at("2026-09-30", "10:00"), booths=BOOTHS) as s:
        ids = seed_alerts(s)
        context, page = await open_page(browser, s.url, "sup")
        try:
            for kind, alert_id in ids.items():
                card = page.locator(f'[data-alert-id="{alert_id}"]')
                await card.wait_for()
                assert await card.get_attribute("data-kind") == kind
            assert "黄色预警" in await page.locator(f'[data-alert-id="{ids["yellow"]}"] .kind-text').inner_text()
            assert "红色预警" in await page.locator(f'[data-alert-id="{ids["red"]}"] .kind-text').inner_text()
            assert "差评/投诉" in await page.locator(f'[data-alert-id="{ids["blue"]}"] .kind-text').inner_text()
            assert await page.locator('[data-count="red"]').inner_text() == "1"
            yellow = page.locator(f'[data-alert-id="{ids["yellow"]}"]')
            assert "2026-10-09" in await yellow.locator(".alert-facts").inner_text()
            assert await yellow.locator("a.session-link").get_attribute("href") == (
                f"/supervise/sessions/{(await _alert(s, ids['yellow']))['session_id']}")
            await assert_accessible(page, "list")
            await shot(page, screenshot_dir, "list")

            # Acknowledge the yellow.
            await yellow.locator(".ack-button").click()
            await page.wait_for_selector(f'[data-alert-id="{ids["yellow"]}"][data-status=acknowledged]')
            assert "SUP" in await yellow.locator(".alert-trail").inner_text()
            assert await yellow.locator(".ack-button").is_hidden()

            # Resolve it: the note is required.
            await yellow.locator(".resolve-button").click()
            form = yellow.locator(".resolve-form")
            await form.wait_for(state="visible")
            await assert_accessible(page, "resolve-form")
            await shot(page, screenshot_dir, "resolve")
            await form.locator(".resolve-submit").click()
            await page.wait_for_function(
                f"""document.querySelector('[data-alert-id="{ids["yellow"]}"] .resolve-error')?.textContent.length > 0""")
            assert (await _alert(s, ids["yellow"]))["status"] == "acknowledged"
            await form.locator("textarea").fill("已电话督办窗口，承诺 10 月 8 日前办结")
            await form.locator(".resolve-submit").click()
            # Resolved alerts leave the default (unresolved) view ...
            await page.wait_for_selector(f'[data-alert-id="{ids["yellow"]}"]', state="detached")
            stored = await _alert(s, ids["yellow"])
            assert stored["status"] == "resolved" and stored["resolution_note"] == "已电话督办窗口，承诺 10 月 8 日前办结"
            # ... and show under the resolved filter with their note.
            await page.select_option("#filter-status", "resolved")
            resolved = page.locator(f'[data-alert-id="{ids["yellow"]}"][data-status=resolved]')
            await resolved.wait_for(timeout=WAIT_MS)
            assert "承诺 10 月 8 日前办结" in await resolved.locator(".alert-trail").inner_text()
            await page.select_option("#filter-status", "active")
            await page.wait_for_selector(f'[data-alert-id="{ids["red"]}"]')

            # A booth files a complaint: it appears live, no reload.
            await page.evaluate("window.__noReload = true")
            with closing(booth_client(s.url, s.tokens["西区政务晓屋01"])) as booth:
                live_id = booth.post("/api/booth/complaints", json={"category": "clerk_attitude"}).json()["alert_id"]
            await page.wait_for_selector(f'[data-alert-id="{live_id}"].fresh', timeout=WAIT_MS)
            assert await page.evaluate("window.__noReload") is True
            assert await page.locator('[data-count="blue"]').inner_text() == "2"
            assert "新预警" in await page.locator("#alert-announce").inner_text()
            # The kind filter (also on the summary cards) narrows the list.
            await page.click('[data-testid="summary-blue"]')
            await page.wait_for_function("document.querySelectorAll('#alert-list .alert-item').length === 2")
            assert set(await page.locator("#alert-list .alert-item").evaluate_all(
                "items => items.map(i => i.dataset.kind)")) == {"blue"}
            await assert_accessible(page, "live")
            await shot(page, screenshot_dir, "live")
        finally:
            await context.close()


async def test_admin_edits_the_rules_and_english_page(browser, app_settings, screenshot_dir):
    with site(app_settings, at("2026-09-30", "10:00"), booths=BOOTHS) as s:
        seed_alerts(s)
        context, page = await open_page(browser, s.url, "admin")
        try:
            await page.wait_for_selector('#rules-items tr[data-item="SB-003"]', timeout=WAIT_MS)
            assert await page.input_value("#rule-yellow") == "2"
            await page.fill("#rule-yellow", "3")
            await page.select_option("#rule-blue", "1")
            await page.click("#rules-global button[type=submit]")
            await page.wait_for_function("document.getElementById('rules-global-status').dataset.tone === 'ok'")
            row = page.locator('#rules-items tr[data-item="SB-003"]')
            await row.locator("input[type=number]").fill("5")
            await row.locator("select").first.select_option("false")
            await row.locator("button").click()
            await row.locator(".rules-status[data-tone=ok]").wait_for(timeout=WAIT_MS)
            with Session(s.engine) as session:
                rules = effective_rules(session, "SB-003")
                assert (rules.yellow_days, rules.red_enabled, rules.blue_max_level) == (5, False, 1)
                assert effective_rules(session, "SB-001").yellow_days == 3
            # Overridden items come first; the search narrows the table.
            assert await page.locator("#rules-items tr").first.get_attribute("data-item") == "SB-003"
            await page.fill("#rules-search", "sb-004")
            await page.wait_for_function("[...document.querySelectorAll('#rules-items tr')]"
                                         ".filter(r => !r.hidden).map(r => r.dataset.item).join() === 'SB-004'")
            await page.fill("#rules-search", "")
            await assert_accessible(page, "rules")
            await page.locator("#rules").scroll_into_view_if_needed()
            await shot(page, screenshot_dir, "rules")
        finally:
            await context.close()
        context, page = await open_page(browser, s.url, "sup", lang="en")
        try:
            assert await page.locator("#alerts-title").inner_text() == "Supervision alerts"
            assert await page.locator("#rules-admin-only, #rules-global").count() == 0  # no editor for supervisors
            await page.wait_for_selector("#rules-summary dt")
            assert "within 3 working days" in await page.locator("#rules-summary").inner_text()
            await assert_accessible(page, "english")
            await shot(page, screenshot_dir, "english")
        finally:
            await context.close()


async def _alert(s: Any, alert_id: int) -> dict[str, Any]:
    from records.alerts import alert_view

    with Session(s.engine) as session:
        return alert_view(session, alert_id)
