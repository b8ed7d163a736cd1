"""The other ways a call goes, end to end in real Chromium through the real server.

- Out of hours: the region is closed now; the kiosk says when it opens, books a slot; the
  appointment row exists.
- 补正: the clerk decides "needs more documents"; the one-time notice prints on the booth agent's
  spool printer and lists every missing material by name.
- Transfer: clerk A hands the call to clerk B (another skill) with a note; B's console rings with
  the note, B accepts and the call carries on with pictures both ways; the call stays in A's
  history as transferred.
- Kiosk reconnect: the kiosk's network is cut and comes back; the kiosk rejoins the same call on a
  new peer connection, no second call or case appears, and the gap is in the call's events.
Screenshots: var/screenshots/e2e-<scenario>-*.png.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from records.models import Appointment, CallSession, CallStatus, Case, CaseStatus, PrintJob, PrintStatus
from tests.browser.a11y import assert_accessible
from tests.browser.test_call_browser_media import FRAMES, wait_decoded
from tests.browser.test_console import go_available, open_console
from tests.browser.test_e2e_call import (
    ITEM,
    call_through_catalogue,
    events_of,
    kiosk_with_agent_and_clerk,
    open_kiosk_page,
    rows,
)
from tests.browser.test_kiosk import LANDSCAPE, PORTRAIT, closed_today_hours, on_screen
from tests.pdf_text import pdf_text
from tests.signaling_fixtures import world

pytestmark = pytest.mark.browser



@pytest.fixture
def e2e_settings(app_settings):
    # A short heartbeat notices the cut network within seconds; a long offer timeout leaves time for axe.
    return app_settings.with_overrides(heartbeat_s=2.0, offer_timeout_s=60)  # 4 s: outlasts axe on a busy machine


MATERIAL_NAMES = {"id_card": "居民身份证原件", "hukou_book": "居民户口簿",
                  "enrol_form": "城乡居民基本养老保险参保登记表"}  # SB-001's mandatory materials


async def test_out_of_hours_the_kiosk_shows_the_next_opening_and_books_a_slot(browser, e2e_settings, screenshot_dir):
    with world(e2e_settings, regions={"east": closed_today_hours(), "west": {}}) as w:
        kiosk = await open_kiosk_page(browser, w, viewport=LANDSCAPE)
        try:
            status = await kiosk.text_content("[data-testid=service-status]")
            assert "不在服务时间" in status and "下次开放" in status
            await kiosk.click("button.tile[data-category=social_insurance]")
            await kiosk.click(f"#category-items .item-row[data-item='{ITEM}']")
            await on_screen(kiosk, "item")
            assert await kiosk.text_content("#call-button-text") == "预约办理"
            await kiosk.click("#call-button")
            await on_screen(kiosk, "closed")
            assert "09:00" in await kiosk.text_content("[data-testid=next-opening]")
            slot = kiosk.locator("#slot-grid .slot").first
            await slot.wait_for()
            slot_start = str(await slot.get_attribute("data-slot"))
            await slot.click()
            await assert_accessible(kiosk, "e2e out of hours")
            await kiosk.screenshot(path=str(screenshot_dir / "e2e-closed-landscape.png"))
            await kiosk.click("#book-button")
            await kiosk.wait_for_selector("#booked:not([hidden])")
            await kiosk.set_viewport_size(PORTRAIT)
            await kiosk.screenshot(path=str(screenshot_dir / "e2e-booked-portrait.png"))

            [appointment] = rows(w, Appointment)
            assert appointment.booth_id == w.booth_ids["b1"] and appointment.item_code == ITEM
            assert appointment.status == "booked"
            booked = appointment.slot_start.replace(tzinfo=appointment.slot_start.tzinfo or ZoneInfo("UTC"))
            assert booked == datetime.fromisoformat(slot_start)
            assert str(appointment.id) in await kiosk.text_content("#booked-number")
            assert rows(w, CallSession) == []  # out of hours nobody was called
        finally:
            await kiosk.context.close()


async def test_needs_supplement_prints_a_notice_listing_every_missing_material(
        browser, e2e_settings, screenshot_dir: Path, tmp_path: Path):
    spool = tmp_path / "spool"
    async with kiosk_with_agent_and_clerk(browser, e2e_settings, spool) as (w, kiosk, console):
        call_id = await call_through_catalogue(kiosk, console)

        # One document is there (the ID card, captured and ticked); the other two are missing.
        await console.wait_for_selector("#capture-code option[value=id_card]", state="attached")
        await console.select_option("#capture-code", "id_card")
        await console.click("#capture-button")
        await kiosk.wait_for_selector("body[data-capture=uploaded]", timeout=30000)
        await kiosk.click("#device-close")
        await console.wait_for_selector(".thumb")
        await console.select_option("#tick-code", "id_card")
        await console.click("#tick-button")
        await console.wait_for_selector(".thumb >> text=✓ 居民身份证原件")

        await console.check("#decision-form input[value=supplement]")
        await console.wait_for_selector("#missing-row:not([hidden])")
        checked = await console.eval_on_selector_all("#missing-list input:checked", "boxes => boxes.map(b => b.value)")
        assert sorted(checked) == ["enrol_form", "hukou_book"]  # the untickled mandatory ones, preselected
        await console.fill("#decision-reason", "请补齐户口簿和参保登记表后再次办理")
        await console.screenshot(path=str(screenshot_dir / "e2e-supplement-console.png"), full_page=True)
        await console.click("#decision-submit")
        await console.wait_for_selector("[data-testid=print-status][data-status=printed]", timeout=30000)

        number = (await console.text_content("[data-testid=case-number]") or "").strip()
        [case] = rows(w, Case, Case.number == number)
        assert case.session_id == call_id and case.status is CaseStatus.NEEDS_SUPPLEMENT
        assert sorted(case.missing_materials) == ["enrol_form", "hukou_book"]
        [job] = rows(w, PrintJob, PrintJob.case_id == case.id)
        assert job.status is PrintStatus.PRINTED
        pdf = (spool / f"print-job-{job.id}.pdf").read_bytes()
        text = pdf_text(pdf)
        assert pdf.startswith(b"%PDF-") and number in text
        for code in ("hukou_book", "enrol_form"):
            assert MATERIAL_NAMES[code] in text, (code, text)
        await kiosk.wait_for_selector("body[data-print=printed]")
        await kiosk.screenshot(path=str(screenshot_dir / "e2e-supplement-kiosk-printed.png"))


async def test_transfer_rings_the_other_clerk_with_the_note_and_the_call_goes_on(
        browser, e2e_settings, screenshot_dir: Path):
    with world(e2e_settings) as w:
        a_context, clerk_a = await open_console(browser, w.url, "c1")
        b_context, clerk_b = await open_console(browser, w.url, "c2")  # medical, west: SB-001 is cross-region
        kiosk = await open_kiosk_page(browser, w)
        try:
            await go_available(clerk_a)
            await go_available(clerk_b)
            call_id = await call_through_catalogue(kiosk, clerk_a)
            await wait_decoded(clerk_a, "consoleMedia", {"booth-face": FRAMES})

            await clerk_a.click("#open-transfer")
            await clerk_a.wait_for_selector("#transfer-dialog[open]")
            await clerk_a.locator("#transfer-skill option[value=medical]").wait_for(state="attached")
            await clerk_a.select_option("#transfer-skill", "medical")
            await clerk_a.fill("#transfer-note", "居民还需办理异地就医备案")
            await clerk_a.click("#transfer-submit")
            await on_screen(kiosk, "waiting")
            assert "转接" in await kiosk.text_content("#waiting-title")

            # B rings with A's note, accepts; the call carries on with pictures both ways.
            await clerk_b.wait_for_selector("#view-ringing:not([hidden])", timeout=20000)
            assert (await clerk_b.text_content("#offer-note-text") or "").strip() == "居民还需办理异地就医备案"
            await assert_accessible(clerk_b, "e2e transfer ringing")
            await clerk_b.screenshot(path=str(screenshot_dir / "e2e-transfer-ringing.png"))
            await clerk_b.click("#offer-accept")
            await clerk_b.wait_for_selector("#view-call:not([hidden])")
            await on_screen(kiosk, "call")
            assert await kiosk.get_attribute("body", "data-call-id") == call_id
            assert "C2" in await kiosk.text_content("#call-title")
            seen = await wait_decoded(clerk_b, "consoleMedia", {"booth-face": FRAMES, "booth-document": FRAMES})
            heard = await wait_decoded(kiosk, "kioskMedia", {"clerk-camera": FRAMES})
            assert seen["booth-face"] > FRAMES and heard["clerk-camera"] > FRAMES
            await clerk_b.screenshot(path=str(screenshot_dir / "e2e-transfer-b-in-call.png"))

            # A finishes wrap-up; the call stays in A's history, as transferred (it used to vanish).
            await clerk_a.wait_for_selector("#view-wrapup:not([hidden])")
            await clerk_a.click("#wrapup-done")
            await clerk_a.wait_for_selector("#state-pill[data-status=available]")
            await clerk_a.click("#show-history")
            row = clerk_a.locator(f"tr[data-call-id='{call_id}']")
            await row.wait_for()
            assert (await row.locator("td").all_text_contents())[5] == "已转接"
            await clerk_a.screenshot(path=str(screenshot_dir / "e2e-transfer-a-history.png"))

            await clerk_b.click("#end-call")
            await on_screen(kiosk, "rating")
            [call] = rows(w, CallSession)
            assert call.id == call_id and call.status is CallStatus.ENDED and call.clerk_id == w.clerk_ids["c2"]
            kinds = [e.kind for e in sorted(events_of(w, call_id), key=lambda e: e.seq)]
            assert kinds.count("call.answered") == 2 and "call.transferred" in kinds
        finally:
            await kiosk.context.close()
            await a_context.close()
            await b_context.close()


async def test_kiosk_reconnect_rejoins_the_same_call_with_a_new_peer_connection(
        browser, e2e_settings, screenshot_dir: Path):
    with world(e2e_settings) as w:
        console_context, console = await open_console(browser, w.url, "c1")
        kiosk = await open_kiosk_page(browser, w)
        try:
            await go_available(console)
            call_id = await call_through_catalogue(kiosk, console)
            await wait_decoded(kiosk, "kioskMedia", {"clerk-camera": FRAMES})
            before = await wait_decoded(console, "consoleMedia", {"booth-face": FRAMES})

            await kiosk.context.set_offline(True)
            await kiosk.wait_for_selector("#net-banner:not([hidden])", timeout=15000)
            await console.wait_for_selector("[data-testid=peer-status] >> text=居民端连接中断")
            await kiosk.screenshot(path=str(screenshot_dir / "e2e-reconnect-offline.png"))
            await kiosk.context.set_offline(False)
            await kiosk.wait_for_selector("#net-banner", state="hidden", timeout=30000)
            await console.wait_for_selector("[data-testid=peer-status] >> text=居民端已重新连接")

            assert await kiosk.get_attribute("body", "data-call-id") == call_id
            again = await wait_decoded(kiosk, "kioskMedia", {"clerk-camera": FRAMES}, generation=2)
            assert again["clerk-camera"] > FRAMES
            assert await kiosk.evaluate("window.kioskMedia.media.generation") == 2  # a new peer connection
            await wait_decoded(console, "consoleMedia", {"booth-face": before["booth-face"] + FRAMES})
            await kiosk.screenshot(path=str(screenshot_dir / "e2e-reconnect-back.png"))

            # The same session: no second call, no case; the gap is in the call's events.
            [call] = rows(w, CallSession)
            assert call.id == call_id and call.status is CallStatus.ACTIVE
            assert rows(w, Case) == []
            kinds = [e.kind for e in sorted(events_of(w, call_id), key=lambda e: e.seq)]
            assert "booth.disconnected" in kinds and "booth.rejoined" in kinds, kinds
            assert kinds.index("booth.disconnected") < kinds.index("booth.rejoined")
            assert kinds.count("call.answered") == 1 and "call.ended" not in kinds

            await console.click("#end-call")
            await on_screen(kiosk, "rating")
            assert len(rows(w, CallSession)) == 1
        finally:
            await kiosk.context.close()
            await console_context.close()
