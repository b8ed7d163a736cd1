"""The login page in real Chromium: renders, switches language, logs the demo clerk in."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


async def test_demo_clerk_logs_in_through_the_page(browser, demo_server, screenshot_dir):
    server, logins = demo_server
    clerk = next(u for u in logins["users"] if u["role"] == "clerk")
    page = await browser.new_page(viewport={"width": 1366, "height": 768})
    await page.goto(f"{server.url}/login")
    await page.wait_for_selector("#login-title")
    assert await page.text_content("#login-title") == "工作人员登录"
    await page.screenshot(path=str(screenshot_dir / "console-login.png"))

    await page.fill("#username", clerk["username"])
    await page.fill("#password", "wrong-password")
    await page.click("button[type=submit]")
    await page.wait_for_selector("#login-error")

    await page.fill("#password", clerk["password"])
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{server.url}/seat")
    who = await page.text_content("[data-testid=who]")
    assert "王晓敏" in who and "窗口人员" in who
    await page.screenshot(path=str(screenshot_dir / "console-clerk-home.png"))

    await page.click("text=退出")
    await page.wait_for_url(f"{server.url}/login")
    await page.goto(f"{server.url}/seat")
    await page.wait_for_url(f"{server.url}/login?next=/seat")


async def test_language_switch_to_english_and_back(browser, demo_server):
    server, _ = demo_server
    page = await browser.new_page()
    await page.goto(f"{server.url}/login")
    await page.click(".lang-switch")
    await page.wait_for_function("document.querySelector('#login-title').textContent === 'Staff log in'")
    assert await page.get_attribute("html", "lang") == "en"
    await page.click(".lang-switch")
    await page.wait_for_function("document.querySelector('#login-title').textContent === '工作人员登录'")


async def test_kiosk_takes_its_token_from_the_fragment_and_forgets_the_url(browser, demo_server):
    server, logins = demo_server
    booth = logins["booths"][0]
    page = await browser.new_page(viewport={"width": 1080, "height": 1920})
    await page.goto(f"{server.url}/kiosk#token={booth['token']}")
    await page.wait_for_selector("body[data-ready=true]")
    assert booth["name"] in await page.text_content("[data-testid=booth-name]")
    assert "token" not in page.url
    await page.reload()
    await page.wait_for_selector("body[data-ready=true]")  # kept in localStorage


async def test_unprovisioned_kiosk_says_so(browser, demo_server):
    server, _ = demo_server
    page = await browser.new_page()
    await page.goto(f"{server.url}/kiosk#token=cst_not-a-real-token")
    await page.wait_for_selector("#unprovisioned:not([hidden])")


async def test_login_page_has_no_serious_accessibility_violations(browser, demo_server):
    from tests.browser.a11y import assert_accessible

    server, _ = demo_server
    page = await browser.new_page()
    await page.goto(f"{server.url}/login")
    await page.wait_for_selector("#login-title")
    await assert_accessible(page, "login")
