"""The clerk console in real Chromium against the real server; a Python booth plays the resident.

Each test logs in through the form, drives the page by clicks and keys, and checks what the
booth (or a second clerk on the Python client) hears.  Every screen is checked with axe and
photographed into var/screenshots as console-<screen>.png.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.a11y import assert_accessible
from tests.browser.login import log_in_new_context
from tests.signaling_fixtures import clients, world

pytestmark = pytest.mark.browser

LAPTOP = {"width": 1366, "height": 768}
DESKTOP = {"width": 1920, "height": 1080}
SB_001 = "城乡居民基本养老保险参保登记"


@pytest.fixture
def fast_settings(app_settings):
    # A long offer timeout: axe and screenshots take a while on a shared machine.
    return app_settings.with_overrides(offer_timeout_s=60)


async def open_console(browser: Any, base_url: str, username: str, *, viewport: dict[str, int] = LAPTOP,
                       lang: str | None = None) -> tuple[Any, Any]:
    """A fresh browser context, logged in as `username` through the form, console connected."""
    context, page = await log_in_new_context(browser, base_url, username, viewport=viewport, landing="/seat", lang=lang)
    await page.wait_for_selector("body[data-connected=true]")
    return context, page


async def go_available(page: Any) -> None:
    await page.click("#go-available")
    await page.wait_for_selector("#state-pill[data-status=available]")


async def text(page: Any, selector: str) -> str:
    return (await page.text_content(selector) or "").strip()


async def shot(page: Any, screenshot_dir: Any, screen: str) -> None:
    await page.screenshot(path=str(screenshot_dir / f"console-{screen}.png"))


async def test_clerk_answers_chats_ends_wraps_up_and_sees_the_call_in_history(browser, fast_settings, screenshot_dir):
    with world(fast_settings) as w:
        context, page = await open_console(browser, w.url, "c1")
        try:
            assert await page.get_attribute("#state-pill", "data-status") == "not_ready"
            assert "刚登录" in await text(page, "#state-label")
            await go_available(page)
            assert await page.get_attribute("#go-available", "aria-pressed") == "true"
            await assert_accessible(page, "idle")
            await shot(page, screenshot_dir, "idle")

            booth = await w.booth("b1")
            async with clients(booth):
                item = w.item_by_skill["social_insurance"]
                call_id = (await booth.request("call.request", item_code=item))["call_id"]

                await page.wait_for_selector("#view-ringing:not([hidden])")
                assert await text(page, "[data-testid=offer-item]") == SB_001
                assert await text(page, "[data-testid=offer-booth]") == "b1"
                assert "秒" in await text(page, "[data-testid=offer-waited]")
                assert await page.get_attribute("#state-pill", "data-status") == "ringing"
                assert await page.is_hidden("[data-testid=offer-note]")
                assert await page.evaluate("document.activeElement.id") == "offer-accept"
                await assert_accessible(page, "ringing")
                await shot(page, screenshot_dir, "ringing")

                await page.keyboard.press("Enter")  # the accept button has the focus
                connected = await booth.wait_for("call.connected", lambda m: m["call_id"] == call_id)
                assert connected["clerk"]["name"] == "C1"
                await page.wait_for_selector("#view-call:not([hidden])")
                assert await text(page, "[data-testid=call-item]") == SB_001
                assert await text(page, "[data-testid=call-booth]") == "b1"
                for video in ("face-video", "doc-video", "self-video"):
                    assert await page.locator(f"video#{video}").count() == 1
                await page.wait_for_selector("#checklist .material")
                assert await page.locator("#checklist .material").count() >= 2
                assert "身份证" in await text(page, "#checklist")

                await booth.request("chat.send", call_id=call_id, text="您好，我想办理养老保险参保")
                await page.wait_for_selector("#chat-log .theirs >> text=我想办理养老保险参保")
                await page.fill("#chat-input", "请把身份证放在高拍仪下")
                await page.press("#chat-input", "Enter")
                heard = await booth.wait_for("chat.message", lambda m: m["call_id"] == call_id)
                assert heard == {"type": "chat.message", "call_id": call_id, "sender": "clerk",
                                 "text": "请把身份证放在高拍仪下"}
                await page.wait_for_selector("#chat-log .mine >> text=请把身份证放在高拍仪下")
                assert await page.input_value("#chat-input") == ""
                await assert_accessible(page, "in-call")
                await shot(page, screenshot_dir, "in-call")

                await page.click("#end-call")
                ended = await booth.wait_for("call.ended", lambda m: m["call_id"] == call_id)
                assert ended["reason"] == "hangup_clerk"
                await page.wait_for_selector("#view-wrapup:not([hidden])")
                await page.wait_for_selector("#wrapup-reason >> text=工作人员结束")
                assert await text(page, "[data-testid=wrapup-item]") == SB_001
                assert await page.get_attribute("#state-pill", "data-status") == "wrap_up"
                assert await page.is_disabled("#go-available")  # wrap-up ends with 完成, not the switch
                await page.fill("#wrapup-note", "已告知需补充户口簿")
                await assert_accessible(page, "wrap-up")
                await shot(page, screenshot_dir, "wrap-up")

                await page.click("#wrapup-done")
                await page.wait_for_selector("#state-pill[data-status=available]")
                await page.wait_for_selector("#view-idle:not([hidden])")

                await page.click("#show-history")
                row = page.locator(f"tr[data-call-id='{call_id}']")
                await row.wait_for()
                cells = await row.locator("td").all_text_contents()
                assert cells[1] == SB_001 and cells[2].startswith("b1") and cells[5] == "工作人员结束"
                await assert_accessible(page, "history")
                await shot(page, screenshot_dir, "history")
        finally:
            await context.close()


async def test_a_declined_call_cannot_be_declined_again_on_its_reoffer(browser, fast_settings, screenshot_dir):
    with world(fast_settings) as w:
        context, page = await open_console(browser, w.url, "c1")
        try:
            await go_available(page)
            booth = await w.booth("b1")
            async with clients(booth):
                call_id = (await booth.request("call.request", item_code=w.item_by_skill["social_insurance"],
                                               priority=True))["call_id"]
                await page.wait_for_selector("#view-ringing:not([hidden])")
                assert await text(page, "#offer-badges") == "绿色通道"
                await page.click("#offer-decline")
                assert await page.evaluate("document.activeElement.id") == "decline-reason"
                await page.click("#decline-form [type=submit]")  # empty: the browser's required check stops it
                assert await page.is_visible("#decline-form")
                await page.fill("#decline-reason", "正在处理上一位居民的材料")
                await page.press("#decline-reason", "Enter")

                # The only eligible clerk is c1, who is available again: the same call rings once more.
                await page.wait_for_selector("#offer-decline[disabled]")
                await page.wait_for_selector("[data-testid=decline-help]:not([hidden])")
                assert await page.evaluate("window.seatConsole.state.offer.call_id") == call_id
                assert "不能再次拒接" in await text(page, "[data-testid=decline-help]")
                assert await page.get_attribute("#offer-decline", "aria-describedby") == "decline-help"
                await assert_accessible(page, "ringing-declined")
                await shot(page, screenshot_dir, "ringing-declined")

                await page.click("#offer-accept")
                await booth.wait_for("call.connected", lambda m: m["call_id"] == call_id)
        finally:
            await context.close()


async def test_transfer_to_another_skill_and_back_to_a_named_clerk_carries_the_notes(
        browser, fast_settings, screenshot_dir):
    with world(fast_settings) as w:
        context, page = await open_console(browser, w.url, "c1")
        c2 = await w.clerk("c2")  # medical, west; social-insurance items are cross-region
        booth = await w.booth("b1")
        sup = await w.supervisor()
        try:
            async with clients(c2, booth, sup):
                await go_available(page)
                call_id = (await booth.request("call.request", item_code=w.item_by_skill["social_insurance"]))["call_id"]
                await page.wait_for_selector("#view-ringing:not([hidden])")
                await page.click("#offer-accept")
                await page.wait_for_selector("#view-call:not([hidden])")

                # Invite a supervisor with a note, by keyboard: the dialog takes the focus, Escape closes it.
                await page.click("#open-invite")
                await page.wait_for_selector("#invite-dialog[open]")
                await page.keyboard.press("Escape")
                await page.wait_for_selector("#invite-dialog:not([open])", state="attached")
                await page.click("#open-invite")
                await page.fill("#invite-note", "居民情绪激动，请协助")
                await page.click("#invite-form [type=submit]")
                invite = await sup.wait_for("call.invite", lambda m: m["call_id"] == call_id)
                assert invite["note"] == "居民情绪激动，请协助" and invite["clerk_name"] == "C1"
                await page.wait_for_selector("[data-testid=notice] >> text=已邀请监督人员")

                await page.click("#open-transfer")
                await page.wait_for_selector("#transfer-dialog[open]")
                medical = page.locator("#transfer-skill option[value=medical]")
                await medical.wait_for(state="attached")
                assert "在线 1 人" in (await medical.text_content() or "")
                assert await page.locator("#transfer-skill option[value=social_insurance]").count() == 0
                await page.select_option("#transfer-skill", "medical")
                await page.fill("#transfer-note", "居民还需办理异地就医备案")
                await assert_accessible(page, "transfer-dialog")
                await shot(page, screenshot_dir, "transfer-dialog")
                await page.click("#transfer-submit")

                offer = await c2.wait_for("offer", lambda m: m["call_id"] == call_id)
                assert offer["transfer_note"] == "居民还需办理异地就医备案"
                assert (await booth.wait_for("call.transferring"))["to_skill"] == "medical"
                await page.wait_for_selector("#view-wrapup:not([hidden])")
                assert not await page.locator("#transfer-dialog").evaluate("d => d.open")
                assert await text(page, "#wrapup-reason") == "已转接"
                await page.click("#wrapup-done")
                await page.wait_for_selector("#state-pill[data-status=available]")

                # c2 hands it back to c1 by name; the console's card shows c2's note.
                await c2.request("offer.accept", call_id=call_id)
                await c2.request("call.transfer", call_id=call_id, to_clerk_id=w.clerk_ids["c1"],
                                 note="医保已办完，请继续养老保险")
                await page.wait_for_selector("[data-testid=offer-note]:not([hidden])")
                assert await text(page, "#offer-note-text") == "医保已办完，请继续养老保险"
                assert "转接" in await text(page, "#offer-badges")
                await assert_accessible(page, "ringing-transfer")
                await shot(page, screenshot_dir, "ringing-transfer")
        finally:
            await context.close()


async def test_not_ready_with_a_reason_shows_in_both_languages(browser, fast_settings, screenshot_dir):
    with world(fast_settings) as w:
        context, page = await open_console(browser, w.url, "c1")
        try:
            await go_available(page)
            await page.select_option("#pause-reason", "training")
            await page.click("#go-not-ready")
            await page.wait_for_selector("#state-pill[data-status=not_ready]")
            assert await text(page, "#state-label") == "暂停（培训）"
            assert await text(page, "#idle-title") == "暂停接听"
            await page.click(".lang-switch")
            await page.wait_for_function("document.documentElement.lang === 'en'")
            await page.wait_for_selector("body[data-connected=true]")
            await page.wait_for_selector("#state-label >> text=Not ready (Training)")
            assert await page.input_value("#pause-reason") == "training"
            await assert_accessible(page, "not-ready-en")
            await shot(page, screenshot_dir, "not-ready-en")
        finally:
            await context.close()


async def test_a_dropped_socket_or_a_reload_in_a_call_keeps_the_call(browser, fast_settings, screenshot_dir):
    with world(fast_settings) as w:
        context, page = await open_console(browser, w.url, "c1", viewport=DESKTOP)
        booth = await w.booth("b1")
        try:
            async with clients(booth):
                await go_available(page)
                call_id = (await booth.request("call.request", item_code=w.item_by_skill["social_insurance"]))["call_id"]
                await page.wait_for_selector("#view-ringing:not([hidden])")
                await page.click("#offer-accept")
                await page.wait_for_selector("#view-call:not([hidden])")
                await booth.request("chat.send", call_id=call_id, text="能听到吗")
                await page.wait_for_selector("#chat-log >> text=能听到吗")

                await page.evaluate("window.seatConsole.client.ws.close(4000, 'test drop')")
                assert (await booth.wait_for("peer.left"))["who"] == "clerk"
                await page.wait_for_selector("body[data-reconnects='1'][data-connected=true]")
                assert (await booth.wait_for("peer.rejoined"))["who"] == "clerk"
                await page.wait_for_selector("[data-testid=conn-banner]:not([hidden]) >> text=已重新连接")
                assert await page.is_visible("#view-call")
                assert await page.evaluate("window.seatConsole.state.call.call_id") == call_id
                await assert_accessible(page, "reconnected")
                await shot(page, screenshot_dir, "reconnected")

                # A reload in a call: the welcome names the call, the API fills in booth and item.
                await page.reload()
                await page.wait_for_selector("body[data-connected=true]")
                await page.wait_for_selector("[data-testid=call-booth] >> text=b1")
                assert await text(page, "[data-testid=call-item]") == SB_001
                await page.wait_for_selector("#chat-log >> text=能听到吗")  # kept for the tab
                await page.fill("#chat-input", "可以")
                await page.press("#chat-input", "Enter")
                assert (await booth.wait_for("chat.message", lambda m: m["text"] == "可以"))["sender"] == "clerk"
                await booth.request("call.cancel", call_id=call_id)
                await page.wait_for_selector("#wrapup-reason >> text=居民挂断")
        finally:
            await context.close()


async def test_a_reload_or_a_reopened_tab_restores_the_state_or_says_why_not(browser, fast_settings, screenshot_dir):
    with world(fast_settings) as w:
        context, page = await open_console(browser, w.url, "c1")
        try:
            # Freshly signed in: not ready, and the page says so in words, with what to do.
            assert await page.get_attribute("#state-pill", "data-status") == "not_ready"
            await page.wait_for_selector("#notice >> text=准备好后请点击“空闲”")
            await go_available(page)
            assert await text(page, "#notice") == ""

            await page.reload()  # F5: the server signs the clerk in afresh; the page puts "available" back
            await page.wait_for_selector("body[data-connected=true]")
            await page.wait_for_selector("#state-pill[data-status=available]")

            # The tab closed and opened again (a crash, a mis-click): the same, from localStorage.
            again = await context.new_page()
            await page.close()
            await again.goto(f"{w.url}/seat")
            await again.wait_for_selector("#state-pill[data-status=available]")
            page = again

            # Away longer than a minute: not ready, and the notice says why.
            await page.goto(f"{w.url}/api/me")  # a page without the console: nothing takes the kept state
            kept = await page.evaluate("JSON.parse(localStorage.getItem('cloudseat.leftState'))")
            assert kept["status"] == "available" and kept["clerk"] == w.clerk_ids["c1"]
            await page.evaluate("""() => {
                const kept = JSON.parse(localStorage.getItem('cloudseat.leftState'));
                kept.at -= 5 * 60 * 1000;
                localStorage.setItem('cloudseat.leftState', JSON.stringify(kept));
            }""")
            await page.goto(f"{w.url}/seat")
            await page.wait_for_selector("body[data-connected=true]")
            await page.wait_for_selector("#notice >> text=为避免错过来电已暂停接听")
            assert await page.get_attribute("#state-pill", "data-status") == "not_ready"
            await assert_accessible(page, "not-ready-after-away")
            await shot(page, screenshot_dir, "not-ready-after-away")
        finally:
            await context.close()
