"""Signature and ID card in a real call, in two real browsers: the kiosk and the clerk's console.

The clerk presses 请签名; the kiosk opens its signing pad; the resident signs with mouse strokes
and confirms; the PNG is stored as a `signature` material and appears in the console's gallery.
Then the booth's reader reads a card (posted with the booth token exactly as the booth agent
does, `booth.devices.id_card_form`): the console shows the name, the masked number and the card
photo beside the live face; the full number appears only on the logged reveal, and the card
leaves the page when the call ends.  Screenshots: kiosk-signature*.png, console-idcard*.png.
"""

from __future__ import annotations

import io
from contextlib import closing
from typing import Any

import pytest
from PIL import Image

from booth.devices import id_card_form, sample_card
from records.models import Event, Material
from tests.browser.a11y import assert_accessible
from tests.browser.idcard_call import FULL, MASKED, WAIT, accept_a_kiosk_call, assert_console_shows_the_card
from tests.browser.test_console import DESKTOP, open_console
from tests.browser.test_kiosk import LANDSCAPE, PORTRAIT, on_screen
from tests.signaling_fixtures import rows, world
from tests.web_clients import booth_client

pytestmark = pytest.mark.browser


async def sign_with_the_mouse(page: Any) -> None:
    """Two strokes across the pad, the way a finger would write, through real pointer events."""
    box = await page.locator("#signature-pad").bounding_box()
    assert box and box["width"] > 600 and box["height"] >= 300  # a big pad for an older hand
    x0, y0 = box["x"], box["y"]
    for points in ([(0.15, 0.6), (0.25, 0.3), (0.35, 0.7), (0.45, 0.35), (0.55, 0.65)],
                   [(0.6, 0.4), (0.7, 0.6), (0.8, 0.35), (0.88, 0.62)]):
        await page.mouse.move(x0 + box["width"] * points[0][0], y0 + box["height"] * points[0][1])
        await page.mouse.down()
        for fx, fy in points[1:]:
            await page.mouse.move(x0 + box["width"] * fx, y0 + box["height"] * fy, steps=8)
        await page.mouse.up()


async def test_signature_and_id_card_in_a_live_call(browser, fast_settings, screenshot_dir):
    with world(fast_settings) as w:
        console_context, console = await open_console(browser, w.url, "c1", viewport=DESKTOP)
        kiosk_context = await browser.new_context(viewport=PORTRAIT, locale="zh-CN")
        try:
            kiosk = await kiosk_context.new_page()
            await kiosk.goto(f"{w.url}/kiosk#token={w.tokens['b1']}")
            await kiosk.wait_for_selector("body[data-ready=true][data-screen=start]", timeout=WAIT)
            call_id = await accept_a_kiosk_call(kiosk, console)
            await console.wait_for_selector("#signature-button", timeout=WAIT)

            # 请签名: the kiosk opens a big pad; nothing can be confirmed before there is ink.
            await console.click("#signature-button")
            await kiosk.wait_for_selector("#signature-dialog[open]", timeout=WAIT)
            assert await kiosk.is_disabled("#signature-confirm")
            sizes = await kiosk.evaluate("""() => [...document.querySelectorAll('#signature-dialog button')].map(b => {
                const r = b.getBoundingClientRect(); return [r.width, r.height]; })""")
            assert sizes and all(wd >= 60 and ht >= 60 for wd, ht in sizes)
            fonts = await kiosk.evaluate("""() => [...document.querySelectorAll(
                '#signature-dialog h2, #signature-dialog p, #signature-dialog button, .signature-line')]
                .map(e => parseFloat(getComputedStyle(e).fontSize))""")
            assert fonts and min(fonts) >= 24
            await assert_accessible(kiosk, "signature pad")
            await kiosk.screenshot(path=str(screenshot_dir / "kiosk-signature-portrait.png"))

            await sign_with_the_mouse(kiosk)
            await kiosk.wait_for_function("!document.querySelector('#signature-confirm').disabled", timeout=WAIT)
            assert await kiosk.evaluate("window.kioskSignature.strokes") == 2
            # 重写 clears the pad; sign again.
            await kiosk.click("#signature-clear")
            assert await kiosk.evaluate("window.kioskSignature.points") == 0
            assert await kiosk.is_disabled("#signature-confirm")
            await sign_with_the_mouse(kiosk)
            await kiosk.set_viewport_size(LANDSCAPE)
            await assert_accessible(kiosk, "signature pad (landscape)")
            await kiosk.screenshot(path=str(screenshot_dir / "kiosk-signature-landscape.png"))
            await kiosk.set_viewport_size(PORTRAIT)
            await kiosk.screenshot(path=str(screenshot_dir / "kiosk-signature-signed.png"))
            await kiosk.click("#signature-confirm")
            await kiosk.wait_for_selector("body[data-signature=uploaded]", timeout=WAIT)
            await kiosk.wait_for_selector("#signature-dialog", state="hidden", timeout=WAIT)
            last = await kiosk.evaluate("window.kioskSignature.last")
            [material] = rows(w, Material, Material.id == last["material_id"])
            assert (material.kind, material.content_type, material.session_id) == ("signature", "image/png", call_id)
            png = (w.settings.data_dir / "files" / material.path).read_bytes()
            with Image.open(io.BytesIO(png)) as img:
                grey = img.convert("L")
                dark = sum(grey.histogram()[:100])  # pixels darker than 100 of 255
                corner = grey.getpixel((2, 2))
            assert dark > 500 and corner == 255  # the strokes are there, on white paper
            assert [e.kind for e in rows(w, Event, Event.session_id == call_id)
                    if e.kind in ("signature.requested", "material.added")] == ["signature.requested", "material.added"]

            # The clerk's gallery shows the signature.
            thumb = console.locator(f".thumb[data-material-id='{material.id}'][data-kind=signature]")
            await thumb.wait_for(timeout=WAIT)
            assert "签名" in (await thumb.text_content() or "")
            await console.wait_for_function("document.querySelector('#viewer-img').naturalWidth > 0", timeout=WAIT)
            assert await console.evaluate("document.querySelector('#viewer-img').naturalWidth") == material.width

            # The booth's reader reads a card: name, masked number and photo beside the live face.
            fields, (field, filename, ctype, body) = id_card_form(call_id, sample_card())
            with closing(booth_client(w.url, w.tokens["b1"])) as b1:
                read = b1.post("/api/booth/materials", data=fields, files={field: (filename, body, ctype)})
            assert read.status_code == 201, read.text
            await assert_console_shows_the_card(console)  # right beside the face
            await console.locator(".thumb[data-kind=id_photo]").wait_for(timeout=WAIT)
            await assert_accessible(console, "id card")
            await console.screenshot(path=str(screenshot_dir / "console-idcard.png"))

            # The reveal: explicit, logged (masked), and hidden again on request.
            assert rows(w, Event, Event.kind == "idcard.revealed") == []
            await console.click("#idcard-reveal")
            await console.wait_for_selector("[data-testid=idcard-number][data-revealed=true]", timeout=WAIT)
            assert (await console.text_content("[data-testid=idcard-number]") or "").strip() == FULL
            [revealed] = rows(w, Event, Event.kind == "idcard.revealed")
            assert revealed.data["id_number_masked"] == MASKED and FULL not in str(revealed.data)
            await assert_accessible(console, "id card revealed")
            await console.screenshot(path=str(screenshot_dir / "console-idcard-revealed.png"))
            await console.click("#idcard-reveal")
            await console.wait_for_selector("[data-testid=idcard-number][data-revealed=false]", timeout=WAIT)
            assert (await console.text_content("[data-testid=idcard-number]") or "").strip() == MASKED
            assert FULL not in await console.content()

            # The call ends: the card leaves the console, the kiosk goes on to the rating.
            await console.click("#end-call")
            await on_screen(kiosk, "rating", WAIT)
            await console.wait_for_selector("#idcard", state="hidden", timeout=WAIT)
            assert FULL not in await console.content()
            assert await console.evaluate("window.seatIdCard.card") is None
        finally:
            await kiosk_context.close()
            await console_context.close()
