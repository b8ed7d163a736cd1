"""Capture to print, in two real browsers: the clerk's console and the booth's kiosk.

The clerk asks for a capture; the booth agent's document camera takes a full-resolution still and
uploads it (Chromium's one fake camera films the resident, never documents); the console's
gallery shows it; the clerk ticks it and accepts; the kiosk hands the print job to the booth agent
(a Python KioskBridge with a spool printer), which prints and reports it.  Screenshots: console-gallery, console-decision, kiosk-capture-portrait, progress-page.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from sqlmodel import Session, select

from booth.agent import BoothAgent, KioskBridge
from booth.devices import SpoolPrinter, SyntheticCamera
from records.db import make_engine
from records.models import Case, Event, Material, PrintJob, PrintStatus
from tests.browser.a11y import assert_accessible
from tests.browser.test_console import go_available, open_console
from tests.browser.test_kiosk import choose_item_by_initials, on_screen
from tests.signaling_fixtures import World, world

pytestmark = pytest.mark.browser

PORTRAIT = {"width": 1080, "height": 1920}
DESKTOP = {"width": 1920, "height": 1080}


@pytest.fixture
def fast_settings(app_settings):
    return app_settings.with_overrides(offer_timeout_s=60)


def one(w: World, model: Any, *where: Any) -> Any:
    engine = make_engine(w.settings.database_url)
    try:
        with Session(engine) as session:
            return session.exec(select(model).where(*where)).one()
    finally:
        engine.dispose()


async def test_capture_tick_accept_and_print_through_the_agent(browser, fast_settings, screenshot_dir, tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    with world(fast_settings) as w:
        agent = BoothAgent(w.url, w.tokens["b1"], printer=SpoolPrinter(spool), doc_camera=SyntheticCamera())
        bridge = KioskBridge(agent, port=0)
        bridge.start()
        console_context, console = await open_console(browser, w.url, "c1", viewport=DESKTOP)
        kiosk_context = await browser.new_context(viewport=PORTRAIT, locale="zh-CN")
        try:
            kiosk = await kiosk_context.new_page()
            await kiosk.goto(f"{w.url}/kiosk?agent={bridge.url}#token={w.tokens['b1']}")
            await kiosk.wait_for_selector("body[data-ready=true][data-screen=start]")
            await go_available(console)
            await choose_item_by_initials(kiosk)
            await kiosk.click("#call-button")
            await console.wait_for_selector("#view-ringing:not([hidden])")
            await console.click("#offer-accept")
            await on_screen(kiosk, "call")
            await console.wait_for_selector("#capture-button")
            await console.wait_for_selector("#tick-code option[value=id_card]", state="attached")

            # 拍摄材料: the agent takes the still at its document camera's full size and uploads it.
            await console.select_option("#capture-code", "id_card")
            await console.click("#capture-button")
            await kiosk.wait_for_selector("body[data-capture=uploaded]", timeout=20000)
            await kiosk.wait_for_selector("#device-preview:not([hidden])")
            await kiosk.wait_for_function("document.querySelector('#device-preview').naturalWidth > 0")
            await kiosk.screenshot(path=str(screenshot_dir / "kiosk-capture-portrait.png"))
            last = await kiosk.evaluate("window.kioskCapture.last")
            assert last["source"] == "agent"  # the agent's document camera, never the resident's face camera
            material = one(w, Material, Material.id == last["material_id"])
            assert (material.width, material.height) == (last["width"], last["height"]) == (2480, 1754)
            stored = (w.settings.data_dir / "files" / material.path).read_bytes()
            assert hashlib.sha256(stored).hexdigest() == material.sha256 == last["sha256"] == last["uploaded_sha256"]
            await kiosk.click("#device-close")

            # The gallery shows it; zoom, rotate, tick against the checklist.
            thumb = console.locator(f".thumb[data-material-id='{material.id}']")
            await thumb.wait_for()
            await console.wait_for_selector("#viewer:not([hidden])")
            await console.wait_for_function("document.querySelector('#viewer-img').naturalWidth > 0")
            assert await console.evaluate("document.querySelector('#viewer-img').naturalWidth") == material.width
            await console.click("#zoom-in")
            await console.click("#rotate")
            assert "rotate(90deg)" in await console.get_attribute("#viewer-img", "style")
            await console.click("#rotate")
            await console.click("#rotate")
            await console.click("#rotate")
            await console.select_option("#tick-code", "id_card")
            await console.click("#tick-button")
            await console.wait_for_selector(f".thumb[data-material-id='{material.id}'] >> text=✓ 居民身份证原件")
            await assert_accessible(console, "gallery")
            await console.screenshot(path=str(screenshot_dir / "console-gallery.png"), full_page=True)
            assert one(w, Material, Material.id == material.id).checklist_code == "id_card"

            # 受理 with the photo (mandatory) unticked asks for a confirmation first; "back" decides nothing.
            await console.check("#decision-form input[value=accept]")
            await console.click("#decision-submit")
            await console.wait_for_selector("#accept-confirm[open]")
            assert await console.locator("#accept-confirm-list li").count() == 1  # the photo; id_card is ticked
            await assert_accessible(console, "accept confirmation")
            await console.click("#accept-confirm-back")
            await console.wait_for_selector("#accept-confirm:not([open])", state="attached")
            assert await console.locator("[data-testid=case-number]").count() == 0
            # Confirmed: the receipt prints through the agent's spool printer, and the waiver is logged.
            await console.click("#decision-submit")
            await console.wait_for_selector("#accept-confirm[open]")
            await console.click("#accept-confirm-yes")
            await console.wait_for_selector("[data-testid=case-number], #docs-status[data-tone=error]")
            assert await console.locator("[data-testid=case-number]").count() == 1, \
                await console.text_content("#docs-status")
            await console.wait_for_selector("[data-testid=print-status][data-status=printed]", timeout=20000)
            number = (await console.text_content("[data-testid=case-number]") or "").strip()
            case = one(w, Case, Case.number == number)
            waived = one(w, Event, Event.kind == "case.accepted_without_materials")
            assert waived.data["case_number"] == number and [m["code"] for m in waived.data["materials"]] == ["photo"]
            job = one(w, PrintJob, PrintJob.case_id == case.id)
            assert job.status is PrintStatus.PRINTED
            assert (spool / f"print-job-{job.id}.pdf").read_bytes().startswith(b"%PDF-")
            await kiosk.wait_for_selector("body[data-print=printed]")
            await assert_accessible(console, "decision")
            await console.screenshot(path=str(screenshot_dir / "console-decision.png"), full_page=True)

            # The resident's QR code leads to the public progress page.
            public = await browser.new_context(viewport={"width": 414, "height": 896}, locale="zh-CN")
            try:
                page = await public.new_page()
                await page.goto(f"{w.url}/progress?case={number}&code={case.progress_code}")
                assert (await page.text_content("[data-testid=progress-status]") or "").strip() == "已受理，正在办理"
                await assert_accessible(page, "progress")
                await page.screenshot(path=str(screenshot_dir / "progress-page.png"), full_page=True)
            finally:
                await public.close()
        finally:
            await kiosk_context.close()
            await console_context.close()
            bridge.stop()
