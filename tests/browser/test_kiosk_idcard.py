"""The booth's ID card reader in a real call: the kiosk (with the booth agent) and the clerk's console.

The kiosk runs with `?agent=<bridge>`: a Python KioskBridge whose agent holds a simulated ID
card reader.  While the call is live the kiosk asks the agent for a new card; a card placed on
the reader is uploaded by the agent (booth token), appears on the console beside the resident's
face with the masked number, and the resident sees a large confirmation with the name and the
masked number.  The card is sent once; the confirmation and the kiosk's memory of it go with
the call.  Screenshots: kiosk-idcard-portrait.png, kiosk-idcard-landscape.png.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import Session, select

from booth.agent import BoothAgent, KioskBridge
from booth.devices import SimulatedIdReader
from records.db import make_engine
from records.models import Event
from tests.browser.a11y import assert_accessible
from tests.browser.idcard_call import FULL, MASKED, WAIT, accept_a_kiosk_call, assert_console_shows_the_card
from tests.browser.test_console import DESKTOP, open_console
from tests.browser.test_kiosk import LANDSCAPE, PORTRAIT, on_screen
from tests.signaling_fixtures import World, world

pytestmark = pytest.mark.browser


def card_reads(w: World) -> list[Event]:
    engine = make_engine(w.settings.database_url)
    try:
        with Session(engine) as session:
            return list(session.exec(select(Event).where(Event.kind == "idcard.read")))
    finally:
        engine.dispose()


async def polls_after(page: Any, more: int) -> None:
    """Wait until the kiosk has asked the agent `more` more times."""
    start = await page.evaluate("window.kioskIdCard.polls")
    await page.wait_for_function("(n) => window.kioskIdCard.polls >= n", arg=start + more, timeout=WAIT)


async def test_a_card_on_the_booth_reader_reaches_the_console_and_the_kiosk_confirms(browser, fast_settings,
                                                                                     screenshot_dir):
    with world(fast_settings) as w:
        reader = SimulatedIdReader()
        bridge = KioskBridge(BoothAgent(w.url, w.tokens["b1"], id_reader=reader), port=0)
        bridge.start()
        console_context, console = await open_console(browser, w.url, "c1", viewport=DESKTOP)
        kiosk_context = await browser.new_context(viewport=PORTRAIT, locale="zh-CN")
        try:
            kiosk = await kiosk_context.new_page()
            await kiosk.goto(f"{w.url}/kiosk?agent={bridge.url}#token={w.tokens['b1']}")
            await kiosk.wait_for_selector("body[data-ready=true][data-screen=start]", timeout=WAIT)
            # No call, no asking: the kiosk polls only while a call is live.
            assert await kiosk.evaluate("window.kioskIdCard.state") == "idle"
            assert await kiosk.evaluate("window.kioskIdCard.polls") == 0
            call_id = await accept_a_kiosk_call(kiosk, console)

            # Live: the kiosk asks; an empty reader gives nothing to show.
            await polls_after(kiosk, 2)
            assert await kiosk.evaluate("window.kioskIdCard.callId") == call_id
            assert await kiosk.evaluate("window.kioskIdCard.last") is None
            assert await kiosk.locator("#idcard-note").is_hidden()
            assert card_reads(w) == []

            # The resident lays the card on the reader.
            reader.place()
            note = kiosk.locator("#idcard-note")
            await note.wait_for(state="visible", timeout=WAIT)
            assert (await kiosk.text_content("#idcard-note-title") or "").strip() == "已读取身份证"
            assert (await kiosk.text_content("[data-testid=kiosk-idcard-name]") or "").strip() == "测试样例"
            assert (await kiosk.text_content("[data-testid=kiosk-idcard-number]") or "").strip() == MASKED
            assert FULL not in await kiosk.content()
            assert FULL not in str(await kiosk.evaluate("JSON.stringify(window.kioskIdCard)"))
            fonts = await kiosk.evaluate("""() => [...document.querySelectorAll(
                '#idcard-note h2, #idcard-note dt, #idcard-note dd, #idcard-note p, #idcard-note button')]
                .map(e => parseFloat(getComputedStyle(e).fontSize))""")
            assert fonts and min(fonts) >= 24  # large type for older residents
            ok = await kiosk.locator("#idcard-note-ok").bounding_box()
            assert ok and ok["width"] >= 60 and ok["height"] >= 60
            # It takes no focus: a resident typing in the chat keeps typing.
            assert await kiosk.evaluate("document.activeElement?.closest('#idcard-note') == null")

            # The console shows the card beside the resident's face, the number masked.
            await assert_console_shows_the_card(console)
            [read] = card_reads(w)
            assert read.session_id == call_id and read.data["id_number_masked"] == MASKED
            last = await kiosk.evaluate("window.kioskIdCard.last")
            assert last["material_id"] == read.data["material_id"] and last["masked"] == MASKED

            await assert_accessible(kiosk, "kiosk id card read")
            await kiosk.screenshot(path=str(screenshot_dir / "kiosk-idcard-portrait.png"))
            await kiosk.set_viewport_size(LANDSCAPE)
            await assert_accessible(kiosk, "kiosk id card read (landscape)")
            await kiosk.screenshot(path=str(screenshot_dir / "kiosk-idcard-landscape.png"))
            await kiosk.set_viewport_size(PORTRAIT)
            await assert_accessible(console, "console id card from the booth agent")

            # Left on the reader, the card is sent once; the resident dismisses the confirmation.
            await polls_after(kiosk, 3)
            assert len(card_reads(w)) == 1 and await kiosk.evaluate("window.kioskIdCard.reads") == 1
            await kiosk.click("#idcard-note-ok")
            await note.wait_for(state="hidden", timeout=WAIT)

            # The call ends: the kiosk stops asking and forgets the card.
            await console.click("#end-call")
            await on_screen(kiosk, "rating", WAIT)
            await kiosk.wait_for_function("window.kioskIdCard.callId === null && window.kioskIdCard.last === null",
                                          timeout=WAIT)
            assert await kiosk.evaluate("window.kioskIdCard.state") == "idle"
            assert (await kiosk.text_content("[data-testid=kiosk-idcard-name]") or "") == ""
            await console.wait_for_selector("#idcard", state="hidden", timeout=WAIT)
        finally:
            await kiosk_context.close()
            await console_context.close()
            bridge.stop()
