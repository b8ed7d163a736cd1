"""The booth kiosk in real Chromium against the real server, with a Python clerk on the other end.

Each test walks a resident's path through the touch screens; at every screen it runs axe-core and
saves a screenshot at both kiosk sizes (`var/screenshots/kiosk-<screen>-portrait.png` and
`-landscape.png`). Synchronisation is always on the page's state (`body[data-screen]`, elements
appearing) or on protocol pushes, never on sleeps.
"""

from __future__ import annotations

from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session

from records.db import make_engine
from records.models import Alert, AlertKind, Appointment, CallSession, CallStatus, Rating
from tests.browser.a11y import assert_accessible
from tests.signaling_fixtures import World, clients, rows, world

pytestmark = pytest.mark.browser

PORTRAIT = {"width": 1080, "height": 1920}
LANDSCAPE = {"width": 1920, "height": 1080}
ITEM = "SB-004"  # 社会保障卡补领换领, skill social_insurance: clerk c1 serves it


@pytest.fixture
def fast_settings(app_settings):
    # A short heartbeat lets a dead link be noticed within seconds (both ends).
    return app_settings.with_overrides(heartbeat_s=1.0, offer_timeout_s=20)


async def open_kiosk(browser: Any, w: World, booth: str = "b1", *, query: str = "thanks_s=2") -> Any:
    context = await browser.new_context(viewport=PORTRAIT, locale="zh-CN")
    page = await context.new_page()
    await page.goto(f"{w.url}/kiosk?{query}#token={w.tokens[booth]}")
    await page.wait_for_selector("body[data-ready=true][data-screen=start]")
    return page


async def on_screen(page: Any, screen: str, timeout_ms: int = 15000) -> None:
    await page.wait_for_selector(f"body[data-screen={screen}]", timeout=timeout_ms)


async def snap(page: Any, directory: Path, screen: str) -> None:
    """axe-core on the screen as it is, then a screenshot at each kiosk size."""
    await assert_accessible(page, screen)
    await page.screenshot(path=str(directory / f"kiosk-{screen}-portrait.png"))
    await page.set_viewport_size(LANDSCAPE)
    await assert_accessible(page, f"{screen} (landscape)")
    await page.screenshot(path=str(directory / f"kiosk-{screen}-landscape.png"))
    await page.set_viewport_size(PORTRAIT)



async def choose_item_by_initials(page: Any, initials: str = "sbkbl") -> None:
    await page.fill("#search-input", initials)
    first = page.locator("#search-results .item-row").first
    await first.wait_for()
    assert await first.get_attribute("data-item") == ITEM
    await first.click()
    await on_screen(page, "item")


async def test_resident_is_served_chats_rates_and_leaves_nothing_behind(browser, app_settings, screenshot_dir):
    with world(app_settings) as w:
        clerk = await w.clerk("c1", available=False)  # signed in, not ready: the kiosk waits, with an estimate
        async with clients(clerk):
            page = await open_kiosk(browser, w)
            assert "b1" in await page.text_content("[data-testid=booth-name]")
            assert "正在服务" in await page.text_content("[data-testid=service-status]")
            await snap(page, screenshot_dir, "start")

            # The catalogue: a category, back, then the search by pinyin initials.
            await page.click("button.tile[data-category=social_insurance]")
            await on_screen(page, "category")
            assert await page.locator("#category-items .item-row").count() == 9
            await snap(page, screenshot_dir, "category")
            await page.click("#back-button")
            await on_screen(page, "start")
            await page.fill("#search-input", "sbkbl")
            await page.wait_for_selector("#search-results .item-row")
            await snap(page, screenshot_dir, "search")
            await choose_item_by_initials(page)

            # 一次性告知: mandatory materials say so in words, not only in colour.
            assert await page.text_content("#item-title") == "社会保障卡补领换领"
            assert await page.locator("#item-materials .tag-required", has_text="必须").count() >= 1
            assert await page.text_content("#item-limit")
            await page.click("#priority-toggle")
            assert await page.get_attribute("#priority-toggle", "aria-checked") == "true"
            await snap(page, screenshot_dir, "item")

            await page.click("#call-button")
            await on_screen(page, "waiting")
            await page.wait_for_function("document.querySelector('#queue-wait').textContent.includes('分钟')")
            assert "下一位" in await page.text_content("#queue-position")
            await snap(page, screenshot_dir, "waiting")

            await clerk.request("presence.set", status="available")
            offer = await clerk.wait_for("offer", timeout_s=15)
            assert offer["item"]["code"] == ITEM and offer["priority"] == 1  # 绿色通道
            call_id = offer["call_id"]
            # While the clerk's console rings, the kiosk says it is connecting, not "about 5 minutes".
            await page.wait_for_function("document.body.dataset.ringing === 'true'")
            assert "正在为您接通" in await page.text_content("#queue-position")
            assert await page.is_hidden("#queue-wait")
            await clerk.request("offer.accept", call_id=call_id)
            await on_screen(page, "call")
            assert await page.get_attribute("body", "data-call-id") == call_id
            assert "C1" in await page.text_content("#call-title")
            for video in ("remote-video", "self-video", "doc-video"):
                assert await page.locator(f"video#{video}").count() == 1

            # Chat both ways.
            await clerk.request("chat.send", call_id=call_id, text="请出示身份证")
            await page.wait_for_selector("#chat-log .from-clerk >> text=请出示身份证")
            await page.fill("#chat-input", "好的，马上")
            await page.click("#chat-form button[type=submit]")
            heard = await clerk.wait_for("chat.message", lambda m: m["call_id"] == call_id, timeout_s=10)
            assert heard["text"] == "好的，马上" and heard["sender"] == "booth"
            await page.wait_for_selector("#chat-log .from-booth >> text=好的，马上")
            await snap(page, screenshot_dir, "call")

            # The clerk ends; the resident rates.
            await clerk.request("call.end", call_id=call_id)
            await on_screen(page, "rating")
            assert await page.locator("#rating-levels [role=radio]").count() == 5
            await page.click(".level[data-level='4']")
            assert await page.get_attribute(".level[data-level='4']", "aria-checked") == "true"
            await page.fill("#rating-comment", "讲解很耐心")
            await snap(page, screenshot_dir, "rating")
            await page.click("#rating-submit")
            await on_screen(page, "thanks")
            await snap(page, screenshot_dir, "thanks")

            [rating] = rows(w, Rating, Rating.session_id == call_id)
            assert rating.level == 4 and rating.comment == "讲解很耐心"
            assert rows(w, Alert) == []  # a good rating raises nothing

            # After the short timeout: back to the start, nothing of the resident left.
            await on_screen(page, "start", timeout_ms=10000)
            left = await page.evaluate("""() => ({
                resident: window.kiosk.resident,
                chat: document.querySelector('#chat-log').children.length,
                search: document.querySelector('#search-input').value,
                comment: document.querySelector('#rating-comment').value,
                callAttr: document.body.dataset.callId ?? null,
                storage: Object.keys(localStorage),
                large: document.documentElement.classList.contains('large'),
            })""")
            resident = left["resident"]
            assert resident["callId"] is None and resident["lastCallId"] is None and resident["rateCallId"] is None
            assert resident["item"] is None and resident["priority"] is False
            assert left["chat"] == 0 and left["search"] == "" and left["comment"] == "" and left["callAttr"] is None
            assert left["storage"] == ["cloudseat.boothToken"] and left["large"] is False
            [call] = rows(w, CallSession)
            assert call.id == call_id and call.status is CallStatus.ENDED


async def test_cancel_while_nobody_can_serve_and_complain(browser, app_settings, screenshot_dir):
    with world(app_settings) as w:  # no clerk signed in: nobody can serve, no estimate
        page = await open_kiosk(browser, w)
        await choose_item_by_initials(page)
        await page.click("#call-button")
        await on_screen(page, "waiting")
        await page.wait_for_selector("#nobody-card:not([hidden])")
        assert "暂无可服务的工作人员" in await page.text_content("#nobody-card")
        call_id = await page.get_attribute("body", "data-call-id")
        await snap(page, screenshot_dir, "waiting-nobody")

        # 办不成事 while waiting: a blue alert carrying the booth and the call.
        await page.click("#complain-button")
        await page.wait_for_selector("#complaint-dialog[open]")
        await page.click("label.reason:has(input[value=waited_too_long])")
        await page.fill("#complaint-text", "等了很久没人接")
        await snap(page, screenshot_dir, "complaint")
        await page.click("#complaint-submit")
        await page.wait_for_selector("#complaint-done:not([hidden])")
        await snap(page, screenshot_dir, "complaint-sent")
        [alert] = rows(w, Alert)
        assert alert.kind is AlertKind.BLUE and alert.booth_id == w.booth_ids["b1"] and alert.session_id == call_id
        assert "等了很久没人接" in alert.message
        await page.click("#complaint-close")
        await page.wait_for_selector("#complaint-dialog", state="hidden")

        await page.click("#cancel-call")
        await on_screen(page, "start")
        [call] = rows(w, CallSession)
        assert call.id == call_id and call.status is CallStatus.ABANDONED and call.end_reason == "cancelled"
        assert await page.evaluate("window.kiosk.resident.callId") is None


def closed_today_hours() -> dict[str, Any]:
    """Hours that are closed all of today and tomorrow (both holidays), whatever the time."""
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    return {"timezone": "Asia/Shanghai", "weekdays": [{"start": "09:00", "end": "12:00"},
                                                     {"start": "13:30", "end": "17:30"}],
            "saturday": [], "lunch_service": False,
            "holidays": [today.isoformat(), (today + timedelta(days=1)).isoformat()], "working_weekends": []}


async def test_closed_region_shows_next_opening_and_books_an_appointment(browser, app_settings, screenshot_dir):
    with world(app_settings, regions={"east": closed_today_hours(), "west": {}}) as w:
        page = await open_kiosk(browser, w)
        status = await page.text_content("[data-testid=service-status]")
        assert "不在服务时间" in status and "下次开放" in status
        await choose_item_by_initials(page)
        assert await page.text_content("#call-button-text") == "预约办理"  # one main action: book
        await page.click("#call-button")
        await on_screen(page, "closed")
        assert "09:00" in await page.text_content("[data-testid=next-opening]")
        await page.wait_for_selector("#slot-grid .slot")
        assert await page.locator("#slot-days .day-tab").count() == 3
        await page.click("#slot-days .day-tab >> nth=1")
        chosen = page.locator("#slot-grid .slot").nth(2)
        slot_start = await chosen.get_attribute("data-slot")
        await chosen.click()
        assert await chosen.get_attribute("aria-pressed") == "true"
        await snap(page, screenshot_dir, "closed")
        await page.click("#book-button")
        await page.wait_for_selector("#booked:not([hidden])")
        await snap(page, screenshot_dir, "booked")

        [appointment] = rows(w, Appointment)
        assert appointment.booth_id == w.booth_ids["b1"] and appointment.item_code == ITEM
        booked = appointment.slot_start if appointment.slot_start.tzinfo else appointment.slot_start.replace(
            tzinfo=ZoneInfo("UTC"))
        assert booked == datetime.fromisoformat(slot_start)
        assert str(appointment.id) in await page.text_content("#booked-number")
        await page.click("#booked-done")
        await on_screen(page, "start")


async def test_network_drop_reconnects_and_resumes_the_same_call(browser, fast_settings, screenshot_dir):
    with world(fast_settings) as w:
        clerk = await w.clerk("c1")
        async with clients(clerk):
            page = await open_kiosk(browser, w)
            await choose_item_by_initials(page)
            await page.click("#call-button")
            offer = await clerk.wait_for("offer", timeout_s=15)
            call_id = offer["call_id"]
            await clerk.request("offer.accept", call_id=call_id)
            await on_screen(page, "call")

            await page.context.set_offline(True)
            await page.wait_for_selector("#net-banner:not([hidden])", timeout=15000)
            await clerk.wait_for("peer.left", lambda m: m["call_id"] == call_id, timeout_s=15)
            await snap(page, screenshot_dir, "reconnecting")
            await page.context.set_offline(False)

            await page.wait_for_selector("#net-banner", state="hidden", timeout=30000)
            await clerk.wait_for("peer.rejoined", lambda m: m["call_id"] == call_id, timeout_s=30)
            await on_screen(page, "call")
            assert await page.get_attribute("body", "data-call-id") == call_id
            # Still the same live call: chat reaches the clerk, and no second call exists.
            await page.fill("#chat-input", "我回来了")
            await page.click("#chat-form button[type=submit]")
            heard = await clerk.wait_for("chat.message", lambda m: m["call_id"] == call_id, timeout_s=10)
            assert heard["text"] == "我回来了"
            calls = rows(w, CallSession)
            assert [c.id for c in calls] == [call_id] and calls[0].status is CallStatus.ACTIVE

            # A bad rating after the call raises a blue alert for the supervisors.
            await clerk.request("call.end", call_id=call_id)
            await on_screen(page, "rating")
            await page.click(".level[data-level='1']")
            await page.click("#rating-submit")
            await on_screen(page, "thanks")
            [alert] = rows(w, Alert)
            assert alert.kind is AlertKind.BLUE and alert.session_id == call_id and "非常不满意" in alert.message


async def test_large_mode_and_english(browser, app_settings, screenshot_dir):
    with world(app_settings) as w:
        page = await open_kiosk(browser, w)
        await page.click("#large-toggle")
        assert await page.get_attribute("#large-toggle", "aria-pressed") == "true"
        size = await page.evaluate("parseFloat(getComputedStyle(document.querySelector('.tile-name')).fontSize)")
        assert size >= 32
        await snap(page, screenshot_dir, "start-large")
        await page.click(".lang-switch")
        await page.wait_for_selector("html[lang=en] body[data-ready=true][data-screen=start]")
        assert "Open" in await page.text_content("[data-testid=service-status]")
        await page.fill("#search-input", "pension")
        await page.wait_for_selector("#search-results .item-row")
        await snap(page, screenshot_dir, "start-english")


async def test_no_kiosk_text_is_smaller_than_24px_and_targets_are_60px(browser, app_settings):
    with world(app_settings) as w:
        page = await open_kiosk(browser, w)
        await choose_item_by_initials(page)
        for size in (PORTRAIT, LANDSCAPE):
            await page.set_viewport_size(size)
            report = await page.evaluate("""() => {
                const small = [], tiny = [];
                for (const el of document.querySelectorAll('body *')) {
                    const style = getComputedStyle(el);
                    if (el.offsetParent === null && style.position !== 'fixed') continue;
                    const hasText = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
                    if (hasText && parseFloat(style.fontSize) < 24) small.push(el.outerHTML.slice(0, 80));
                    if (hasText && parseFloat(style.lineHeight) / parseFloat(style.fontSize) < 1.295) small.push('lh ' + el.outerHTML.slice(0, 80));
                    if (el.matches('button, input[type=checkbox], input[type=search], a')) {
                        const box = el.getBoundingClientRect();
                        const target = el.matches('input[type=checkbox]') ? el.closest('label').getBoundingClientRect() : box;
                        if (target.width < 60 || target.height < 60) tiny.push(el.outerHTML.slice(0, 80));
                    }
                }
                return { small, tiny };
            }""")
            assert report == {"small": [], "tiny": []}, size


def add_appointment(w: World, booth: str, *, starts_in_min: float, item: str = ITEM) -> int:
    """A booked appointment of `booth` whose half-hour slot starts `starts_in_min` from now."""
    from datetime import timezone

    engine = make_engine(w.settings.database_url)
    try:
        with Session(engine) as session:
            start = datetime.now(timezone.utc) + timedelta(minutes=starts_in_min)
            row = Appointment(booth_id=w.booth_ids[booth], item_code=item, slot_start=start,
                              slot_end=start + timedelta(minutes=30))
            session.add(row)
            session.commit()
            assert row.id is not None
            return row.id
    finally:
        engine.dispose()


async def type_on_keypad(page: Any, digits: str) -> None:
    await page.click(".keypad .key[data-key=clear]")
    for digit in digits:
        await page.click(f".keypad .key[data-key='{digit}']")


async def test_appointment_check_in_starts_the_booked_call_first_in_line(browser, fast_settings, screenshot_dir):
    with world(fast_settings) as w:
        due = add_appointment(w, "b1", starts_in_min=-5)
        later = add_appointment(w, "b1", starts_in_min=24 * 60)
        elsewhere = add_appointment(w, "b3", starts_in_min=-5)
        clerk = await w.clerk("c1")
        async with clients(clerk):
            page = await open_kiosk(browser, w)
            await page.click("#checkin-button")
            await on_screen(page, "checkin")

            # Another booth's appointment is "not found", like a number that does not exist.
            await type_on_keypad(page, str(elsewhere))
            await page.click("#checkin-find")
            await page.wait_for_selector("#checkin-error:not([hidden]) >> text=没有找到这个预约号")
            assert await page.is_hidden("#checkin-start")

            # Tomorrow's: found, but not yet, and the page says when to come.
            await type_on_keypad(page, str(later))
            await page.click("#checkin-find")
            await page.wait_for_selector("[data-testid=checkin-state] >> text=还没到预约时间")
            assert await page.is_hidden("#checkin-start")
            assert await page.text_content("#checkin-item") == "社会保障卡补领换领"

            # Now's: found and due; the call starts as an appointment (priority 2, answered first).
            await type_on_keypad(page, str(due))
            assert await page.input_value("#checkin-number") == str(due)
            await page.click("#checkin-find")
            await page.wait_for_selector("#checkin-start:not([hidden])")
            assert "已到预约时间" in await page.text_content("[data-testid=checkin-state]")
            await snap(page, screenshot_dir, "checkin")
            await page.click("#checkin-start")
            offer = await clerk.wait_for("offer", timeout_s=15)
            assert offer["item"]["code"] == ITEM and offer["priority"] == 2
            await clerk.request("offer.accept", call_id=offer["call_id"])
            await on_screen(page, "call")
            assert await page.get_attribute("body", "data-call-id") == offer["call_id"]
            [used] = rows(w, Appointment, Appointment.id == due)
            assert used.status == "used"
            await clerk.request("call.end", call_id=offer["call_id"])
            await on_screen(page, "rating")
            await page.click("#home-button")  # 跳过: the next resident finds nothing of this one
            await on_screen(page, "start")
            assert await page.input_value("#checkin-number") == ""


async def live_call_with_python_clerk(page: Any, clerk: Any) -> str:
    await choose_item_by_initials(page)
    await page.click("#call-button")
    offer = await clerk.wait_for("offer", timeout_s=15)
    await clerk.request("offer.accept", call_id=offer["call_id"])
    await on_screen(page, "call")
    await page.wait_for_function("window.kioskMedia.cameras !== null", timeout=20000)
    return str(offer["call_id"])


async def test_a_booth_with_one_camera_says_it_has_no_document_camera(browser, fast_settings, screenshot_dir):
    from records.models import Booth, Material
    from tests.signaling_fixtures import PASSWORD
    from tests.web_clients import login

    with world(fast_settings) as w:  # Chromium's one fake camera films the resident; no agent
        clerk = await w.clerk("c1")
        async with clients(clerk):
            page = await open_kiosk(browser, w)
            call_id = await live_call_with_python_clerk(page, clerk)
            with closing(login(w.url, "c1", PASSWORD)) as c1:
                assert c1.post(f"/api/seat/calls/{call_id}/capture", json={"material_code": "id_card"}).status_code == 202
            await page.wait_for_selector("body[data-capture=no_camera]", timeout=20000)
            assert "没有高拍仪" in await page.text_content("#device-title")
            assert await page.is_hidden("#device-preview")
            told = await clerk.wait_for("chat.message", lambda m: m["call_id"] == call_id, timeout_s=10)
            assert "未接入高拍仪" in told["text"] and told["sender"] == "booth"
            assert rows(w, Material) == []  # no picture of the resident's face became a "document"
            await assert_accessible(page, "no document camera")
            await page.screenshot(path=str(screenshot_dir / "kiosk-no-doc-camera-portrait.png"))
            engine = make_engine(w.settings.database_url)
            try:
                for _ in range(100):
                    with Session(engine) as session:
                        booth = session.get(Booth, w.booth_ids["b1"])
                        if booth is not None and booth.device_status.get("doc_camera") == "missing":
                            break
                    await page.wait_for_timeout(100)  # polling the records the server writes after the ack
                assert booth is not None and booth.device_status.get("doc_camera") == "missing"
            finally:
                engine.dispose()


async def test_with_two_cameras_the_still_comes_from_the_one_that_is_not_the_face(fast_settings):
    from playwright.async_api import async_playwright

    from records.models import Material
    from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
    from tests.signaling_fixtures import PASSWORD
    from tests.web_clients import login

    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    args = [a if a != "--use-fake-device-for-media-stream" else "--use-fake-device-for-media-stream=device-count=2"
            for a in CHROMIUM_ARGS]
    with world(fast_settings) as w:
        clerk = await w.clerk("c1")
        async with clients(clerk), async_playwright() as pw:
            two_cameras = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
            try:
                page = await open_kiosk(two_cameras, w)
                call_id = await live_call_with_python_clerk(page, clerk)
                face = await page.evaluate("window.kioskMedia.cameras.face.getSettings().deviceId")
                with closing(login(w.url, "c1", PASSWORD)) as c1:
                    assert c1.post(f"/api/seat/calls/{call_id}/capture", json={}).status_code == 202
                await page.wait_for_selector("body[data-capture=uploaded]", timeout=20000)
                used = await page.evaluate("window.kioskCapture.deviceId")
                assert await page.evaluate("window.kioskCapture.source") == "browser"
                assert used and used != face
                last = await page.evaluate("window.kioskCapture.last")
                [material] = rows(w, Material, Material.id == last["material_id"])
                assert (material.width, material.height) == (last["width"], last["height"])
            finally:
                await two_cameras.close()


async def test_the_start_screen_says_clerks_are_online_only_when_one_is(browser, app_settings):
    with world(app_settings) as w:
        page = await open_kiosk(browser, w)
        status = await page.text_content("[data-testid=service-status]")
        assert "没有工作人员在线" in status and "工作人员在线，可视频办理" not in status
        assert await page.get_attribute("[data-testid=service-status]", "data-clerks-online") == "0"
        clerk = await w.clerk("c1", available=False)  # signed in (not ready yet) counts as online
        async with clients(clerk):
            # Back on the start screen (after browsing), the kiosk asks again and tells the truth.
            await page.click("button.tile[data-category=social_insurance]")
            await on_screen(page, "category")
            await page.click("#back-button")
            await on_screen(page, "start")
            await page.wait_for_selector("[data-testid=service-status][data-clerks-online='1']")
            assert "工作人员在线，可视频办理" in await page.text_content("[data-testid=service-status]")


async def test_without_an_agent_the_kiosk_says_sent_to_the_printer_and_the_dialog_leaves_with_the_call(
        browser, app_settings):
    import asyncio

    from records.models import Event, PrintJob, PrintStatus
    from tests.signaling_fixtures import PASSWORD
    from tests.web_clients import login

    with world(app_settings) as w:
        clerk = await w.clerk("c1")
        async with clients(clerk):
            page = await open_kiosk(browser, w)
            await choose_item_by_initials(page)
            await page.click("#call-button")
            offer = await clerk.wait_for("offer", timeout_s=15)
            call_id = offer["call_id"]
            await clerk.request("offer.accept", call_id=call_id)
            await on_screen(page, "call")
            with closing(login(w.url, "c1", PASSWORD)) as c1:
                decided = await asyncio.to_thread(c1.post, f"/api/seat/calls/{call_id}/decision",
                                                  json={"outcome": "refuse", "reason": "不属于本事项"})
                assert decided.status_code == 201, decided.text
            # No booth agent: the PDF goes to the browser's print dialog, and nothing claims it printed.
            await page.wait_for_selector("body[data-print=browser]")
            assert "已发送到本机打印机" in await page.text_content("#device-dialog")
            result = await clerk.wait_for("print.result", lambda m: m["call_id"] == call_id)
            assert result["status"] == "browser"
            job_id = decided.json()["print_job"]["id"]
            assert rows(w, PrintJob, PrintJob.id == job_id)[0].status is PrintStatus.SENT
            assert [e.kind for e in rows(w, Event, Event.kind == "print.browser")] == ["print.browser"]
            # The call ends with the dialog still open: the rating screen is not covered by it.
            await clerk.request("call.end", call_id=call_id)
            await on_screen(page, "rating")
            assert await page.evaluate("document.getElementById('device-dialog').open") is False
            assert await page.is_visible("[data-testid=rating-print-reminder]")
            await page.click(".level[data-level='5']")
            assert await page.is_enabled("#rating-submit")  # reachable: nothing modal above it
