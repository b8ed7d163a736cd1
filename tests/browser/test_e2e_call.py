"""One whole call, end to end, through the real server and the real booth agent.

A kiosk page (1080x1920 portrait, and 1920x1080 landscape for the call screen) and a clerk console
(1366x768 laptop) in real Chromium with the fake camera and microphone; the booth device agent
runs as a real subprocess (`cloudseat booth --printer spool:DIR --doc-camera synthetic --kiosk`)
beside the kiosk page. The chain: catalogue -> call -> offer -> accept -> frames decoded on both
pages -> capture by the agent's document camera -> material stored with its SHA-256 and full size
-> checklist tick -> 受理 -> the receipt PDF lands in the agent's spool dir -> 好差评 stored ->
wrap-up -> the clerk is available again. Screenshots: var/screenshots/e2e-*.png.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from records.models import Case, CaseStatus, Event, Material, PrintJob, PrintStatus, Rating
from tests.browser.a11y import assert_accessible
from tests.browser.test_call_browser_media import FRAMES, wait_decoded
from tests.browser.test_console import go_available, open_console
from tests.browser.test_kiosk import LANDSCAPE, PORTRAIT, on_screen
from tests.pdf_text import pdf_text
from tests.signaling_fixtures import World, rows, world

pytestmark = pytest.mark.browser

ITEM = "SB-001"  # 城乡居民基本养老保险参保登记: id_card, hukou_book, enrol_form are mandatory
DOC_CAMERA = (2480, 1754)  # booth.devices.SyntheticCamera's default: an A4 page at 300 dpi
AGENT_START_S = 30.0
BRIDGE_LINE = re.compile(r"kiosk bridge on (http://127\.0\.0\.1:\d+)")


@pytest.fixture
def e2e_settings(app_settings):
    # A short heartbeat notices a cut network within seconds; a long offer timeout leaves time for
    # axe and screenshots on a shared machine.
    return app_settings.with_overrides(heartbeat_s=2.0, offer_timeout_s=60)  # 4 s: outlasts axe on a busy machine


@contextmanager
def booth_agent(w: World, booth: str, spool: Path, *, doc_camera: str | None = "synthetic") -> Iterator[str]:
    """`cloudseat booth ... --kiosk 127.0.0.1:0` as a subprocess; yields the bridge's URL."""
    spool.mkdir(parents=True, exist_ok=True)
    command = [str(Path(sys.executable).with_name("cloudseat")), "booth", "--token", w.tokens[booth],
               "--server", w.url, "--printer", f"spool:{spool}", "--kiosk", "127.0.0.1:0"]
    if doc_camera:
        command += ["--doc-camera", doc_camera]
    env = {**os.environ, "CLOUDSEAT_DATA_DIR": str(spool.parent / "agent-var"), "PYTHONUNBUFFERED": "1"}
    log = spool.parent / "agent.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # the agent prints its bridge URL first, then waits
        found = BRIDGE_LINE.search(line)
        if not found:
            process.kill()
            process.wait(timeout=AGENT_START_S)
            raise AssertionError(f"booth agent did not start: {line!r} {log.read_text()[-2000:]}")
        yield found.group(1)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()



def events_of(w: World, call_id: str) -> list[Event]:
    return rows(w, Event, Event.session_id == call_id)


async def open_kiosk_page(browser: Any, w: World, *, agent_url: str | None = None, booth: str = "b1",
                          viewport: dict[str, int] = PORTRAIT) -> Any:
    context = await browser.new_context(viewport=viewport, locale="zh-CN")
    page = await context.new_page()
    agent = f"agent={agent_url}&" if agent_url else ""
    await page.goto(f"{w.url}/kiosk?{agent}thanks_s=3#token={w.tokens[booth]}")
    await page.wait_for_selector("body[data-ready=true][data-screen=start]")
    return page


@asynccontextmanager
async def kiosk_with_agent_and_clerk(browser: Any, settings: Any, spool: Path) -> AsyncIterator[tuple[World, Any, Any]]:
    """A world with booth b1's agent printing into `spool`, its kiosk page and clerk c1's console, available.

    Yields (world, kiosk page, console page); both pages' contexts are closed on the way out.
    """
    with world(settings) as w, booth_agent(w, "b1", spool) as agent_url:
        console_context, console = await open_console(browser, w.url, "c1")
        kiosk = await open_kiosk_page(browser, w, agent_url=agent_url)
        try:
            await go_available(console)
            yield w, kiosk, console
        finally:
            await kiosk.context.close()
            await console_context.close()


async def call_through_catalogue(kiosk: Any, console: Any, item: str = ITEM) -> str:
    """The resident picks the item from its category and calls; the clerk accepts. Returns the call id."""
    await kiosk.click("button.tile[data-category=social_insurance]")
    await on_screen(kiosk, "category")
    await kiosk.click(f"#category-items .item-row[data-item='{item}']")
    await on_screen(kiosk, "item")
    await kiosk.click("#call-button")
    await console.wait_for_selector("#view-ringing:not([hidden])", timeout=20000)
    await console.click("#offer-accept")
    await console.wait_for_selector("#view-call:not([hidden])")
    await on_screen(kiosk, "call")
    return str(await kiosk.get_attribute("body", "data-call-id"))


async def kiosk_shot(kiosk: Any, directory: Path, name: str, *, both: bool = False) -> None:
    """A screenshot at the kiosk's current size, and at the other orientation when `both`."""
    await kiosk.screenshot(path=str(directory / f"e2e-{name}-portrait.png"))
    if both:
        await kiosk.set_viewport_size(LANDSCAPE)
        await kiosk.screenshot(path=str(directory / f"e2e-{name}-landscape.png"))
        await kiosk.set_viewport_size(PORTRAIT)


async def assert_fits_above_footer(kiosk: Any, selector: str) -> None:
    """`selector` is wholly visible: below the header, above the footer, main not scrolled to reach it."""
    boxes = await kiosk.evaluate("""(selector) => {
        const box = (el) => el.getBoundingClientRect();
        const main = document.querySelector('main');
        return {target: box(document.querySelector(selector)), footer: box(document.querySelector('.kiosk-bottom')),
                overflow: main.scrollHeight - main.clientHeight};
    }""", selector)
    assert boxes["target"]["bottom"] <= boxes["footer"]["top"], boxes
    assert boxes["overflow"] <= 1, boxes


async def test_a_whole_call_from_catalogue_to_rating_with_the_agent_printing(
        browser, e2e_settings, screenshot_dir: Path, tmp_path: Path):
    spool = tmp_path / "spool"
    async with kiosk_with_agent_and_clerk(browser, e2e_settings, spool) as (w, kiosk, console):
        await kiosk_shot(kiosk, screenshot_dir, "01-start")

        # Catalogue -> call -> offer -> accept.
        await kiosk.click("button.tile[data-category=social_insurance]")
        await on_screen(kiosk, "category")
        await kiosk.click(f"#category-items .item-row[data-item='{ITEM}']")
        await on_screen(kiosk, "item")
        await kiosk_shot(kiosk, screenshot_dir, "02-item")
        await kiosk.click("#call-button")
        await console.wait_for_selector("#view-ringing:not([hidden])", timeout=20000)
        await console.screenshot(path=str(screenshot_dir / "e2e-03-console-ringing.png"))
        await console.click("#offer-accept")
        await console.wait_for_selector("#view-call:not([hidden])")
        await on_screen(kiosk, "call")
        call_id = str(await kiosk.get_attribute("body", "data-call-id"))

        # Frames decoded on both pages: the face and document camera at the clerk, the clerk at the booth.
        seen = await wait_decoded(console, "consoleMedia", {"booth-face": FRAMES, "booth-document": FRAMES})
        heard = await wait_decoded(kiosk, "kioskMedia", {"clerk-camera": FRAMES})
        assert seen["booth-face"] > FRAMES and seen["booth-document"] > FRAMES and heard["clerk-camera"] > FRAMES
        await assert_accessible(kiosk, "e2e kiosk in call")
        await assert_fits_above_footer(kiosk, "#hangup")
        await kiosk.set_viewport_size(LANDSCAPE)
        # The end-call button used to sit half under the footer at 1920x1080.
        await assert_fits_above_footer(kiosk, "#hangup")
        await kiosk.set_viewport_size(PORTRAIT)
        await kiosk_shot(kiosk, screenshot_dir, "04-call", both=True)
        await console.screenshot(path=str(screenshot_dir / "e2e-05-console-call.png"))

        # Capture: the agent's document camera takes the still and uploads it itself.
        await console.wait_for_selector("#capture-code option[value=id_card]", state="attached")
        await console.select_option("#capture-code", "id_card")
        await console.click("#capture-button")
        await kiosk.wait_for_selector("body[data-capture=uploaded]", timeout=30000)
        await kiosk.wait_for_function("document.querySelector('#device-preview').naturalWidth > 0")
        last = await kiosk.evaluate("window.kioskCapture.last")
        assert last["source"] == "agent", last
        [material] = rows(w, Material, Material.session_id == call_id)
        stored = (w.settings.data_dir / "files" / material.path).read_bytes()
        assert hashlib.sha256(stored).hexdigest() == material.sha256 == last["uploaded_sha256"] == last["sha256"]
        assert (material.width, material.height) == DOC_CAMERA  # full resolution, not the stream's size
        await kiosk_shot(kiosk, screenshot_dir, "06-captured")
        await kiosk.click("#device-close")

        # The clerk sees it at full size and ticks it against the checklist.
        await console.wait_for_selector(f".thumb[data-material-id='{material.id}']")
        await console.wait_for_function("document.querySelector('#viewer-img').naturalWidth > 0")
        assert await console.evaluate("document.querySelector('#viewer-img').naturalWidth") == DOC_CAMERA[0]
        await console.select_option("#tick-code", "id_card")
        await console.click("#tick-button")
        await console.wait_for_selector(f".thumb[data-material-id='{material.id}'] >> text=✓ 居民身份证原件")
        [ticked] = rows(w, Material, Material.id == material.id)
        assert ticked.checklist_code == "id_card"
        await console.screenshot(path=str(screenshot_dir / "e2e-07-console-gallery.png"), full_page=True)

        # 受理: hukou_book and enrol_form are not ticked, so the clerk confirms; then the receipt
        # prints on the agent's spool printer.
        await console.check("#decision-form input[value=accept]")
        await console.click("#decision-submit")
        await console.wait_for_selector("#accept-confirm[open]")
        await console.click("#accept-confirm-yes")
        await console.wait_for_selector("[data-testid=case-number]")
        await console.wait_for_selector("[data-testid=print-status][data-status=printed]", timeout=30000)
        number = (await console.text_content("[data-testid=case-number]") or "").strip()
        [case] = rows(w, Case, Case.number == number)
        assert case.session_id == call_id and case.status is CaseStatus.ACCEPTED
        [job] = rows(w, PrintJob, PrintJob.case_id == case.id)
        assert job.status is PrintStatus.PRINTED
        pdf = (spool / f"print-job-{job.id}.pdf").read_bytes()
        assert pdf.startswith(b"%PDF-") and number in pdf_text(pdf)
        await kiosk.wait_for_selector("body[data-print=printed]")
        await console.screenshot(path=str(screenshot_dir / "e2e-08-console-decision.png"), full_page=True)
        await kiosk_shot(kiosk, screenshot_dir, "09-printed")
        await kiosk.click("#device-close")

        # The clerk ends; the resident rates (好差评).
        await console.click("#end-call")
        await on_screen(kiosk, "rating")
        await kiosk.click(".level[data-level='5']")
        await kiosk.fill("#rating-comment", "一次办好，很方便")
        await kiosk_shot(kiosk, screenshot_dir, "10-rating")
        await kiosk.click("#rating-submit")
        await on_screen(kiosk, "thanks")
        [rating] = rows(w, Rating, Rating.session_id == call_id)
        assert rating.level == 5 and rating.comment == "一次办好，很方便"

        # Wrap-up, then available again; the call is in the clerk's history with its case.
        await console.wait_for_selector("#view-wrapup:not([hidden])")
        assert await console.get_attribute("#state-pill", "data-status") == "wrap_up"
        await console.fill("#wrapup-note", "已受理，回执已打印")
        await console.screenshot(path=str(screenshot_dir / "e2e-11-console-wrapup.png"))
        await console.click("#wrapup-done")
        await console.wait_for_selector("#state-pill[data-status=available]")
        done = rows(w, Event, Event.kind == "clerk.wrapup_done")
        assert [e.session_id for e in done] == [call_id] and done[0].data["note"] == "已受理，回执已打印"
        await console.click("#show-history")
        row = console.locator(f"tr[data-call-id='{call_id}']")
        await row.wait_for()
        assert number in " ".join(await row.locator("td").all_text_contents())
        await assert_accessible(console, "e2e history")
        await console.screenshot(path=str(screenshot_dir / "e2e-12-console-history.png"))

        kinds = [e.kind for e in sorted(events_of(w, call_id), key=lambda e: e.seq)]
        for kind in ("call.queued", "call.offered", "call.answered", "material.added", "material.ticked",
                     "case.opened", "case.accepted_without_materials", "call.ended", "rating.given"):
            assert kind in kinds, (kind, kinds)
        await on_screen(kiosk, "start", timeout_ms=15000)  # the next resident finds the start screen
