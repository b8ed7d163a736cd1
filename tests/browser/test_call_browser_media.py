"""Real video in the browser: a kiosk page and a clerk console page in a call through the hub.

Two browser contexts (the booth with its token, the clerk logged in through the form) call each
other through the real server and its media hub; Chromium's fake camera and microphone (and, for
the booth's document camera, a 1280x720 test card: the fake device has one camera) are
published by `media.js`.  Frames decoded on each page come from `getStats` (polled with
`wait_for_function`, never slept on); the recordings are read back from the records.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from records.db import make_engine
from records.models import Recording
from tests.browser.a11y import assert_accessible
from tests.signaling_fixtures import PASSWORD, World, world

pytestmark = pytest.mark.browser

LANDSCAPE = {"width": 1920, "height": 1080}
LAPTOP = {"width": 1366, "height": 768}
FRAMES = 10
DROP_S = 10.0  # issue 14: a booth's network gone for 10 s mid-call
MEDIA_TIMEOUT_MS = 20000  # two browsers encoding and decoding on a shared 2-core machine
RECORDED = {"booth-face", "booth-document", "booth-audio", "clerk-camera", "clerk-audio"}

@pytest.fixture
def media_settings(app_settings):
    # A short heartbeat: a dead link is noticed within 4 s. A long offer timeout:
    # axe and screenshots take a while.
    return app_settings.with_overrides(heartbeat_s=2.0, offer_timeout_s=60)


async def open_kiosk(browser: Any, w: World) -> Any:
    context = await browser.new_context(viewport=LANDSCAPE, locale="zh-CN")
    page = await context.new_page()
    await page.goto(f"{w.url}/kiosk?thanks_s=2#token={w.tokens['b1']}")
    await page.wait_for_selector("body[data-ready=true][data-screen=start]")
    return page


async def open_console(browser: Any, w: World) -> Any:
    context = await browser.new_context(viewport=LAPTOP, timezone_id="Asia/Shanghai")
    page = await context.new_page()
    await page.goto(f"{w.url}/login")
    await page.fill("#username", "c1")
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{w.url}/seat")
    await page.wait_for_selector("body[data-connected=true]")
    await page.click("#go-available")
    await page.wait_for_selector("#state-pill[data-status=available]")
    return page


async def connect_call(kiosk: Any, console: Any, item: str) -> str:
    """The resident calls for `item`, the clerk accepts; returns the call id."""
    await kiosk.click("button.tile[data-category=social_insurance]")
    await kiosk.click(f"#category-items .item-row[data-item='{item}']")
    await kiosk.wait_for_selector("body[data-screen=item]")
    await kiosk.click("#call-button")
    await console.wait_for_selector("#view-ringing:not([hidden])")
    await console.click("#offer-accept")
    await console.wait_for_selector("#view-call:not([hidden])")
    await kiosk.wait_for_selector("body[data-screen=call]")
    return str(await kiosk.get_attribute("body", "data-call-id"))


async def wait_decoded(page: Any, holder: str, tracks: dict[str, int], *, generation: int = 1) -> dict[str, int]:
    """Until the page's media (`window.<holder>.media`) decoded more than `tracks[name]` frames of each.

    `wait_for_function` does not await a promise, so each poll starts a `getStats` and judges the
    last one that finished (kept on the peer connection, so a new peer starts from nothing).
    """
    try:
        await _wait_decoded(page, holder, tracks, generation)
    except Exception:
        state = await page.evaluate(f"""async () => {{
            const m = window.{holder}.media;
            return m && {{state: m.state, generation: m.generation, slots: [...m.slots.values()],
                         remote: [...m.remote.keys()], stats: await m.stats(), pc: m.pc && m.pc.connectionState}};
        }}""")
        raise AssertionError(f"{holder}: no frames for {tracks}; media: {state}") from None
    return await page.evaluate(f"async () => window.{holder}.media.framesDecoded()")


async def _wait_decoded(page: Any, holder: str, tracks: dict[str, int], generation: int) -> None:
    await page.wait_for_function(
        """([holder, tracks, generation]) => {
            const media = window[holder].media;
            if (!media || media.generation < generation || !media.pc) return false;
            const polled = media.pc.__polled ?? (media.pc.__polled = {busy: false, decoded: {}});
            if (!polled.busy) {
                polled.busy = true;
                media.framesDecoded().then((d) => { polled.decoded = d; }).finally(() => { polled.busy = false; });
            }
            return Object.entries(tracks).every(([name, n]) => (polled.decoded[name] ?? 0) > n);
        }""",
        arg=[holder, tracks, generation], polling=250, timeout=MEDIA_TIMEOUT_MS,
    )


async def recordings_of(w: World, call_id: str, expected: set[str], timeout_s: float = 20.0) -> list[Recording]:
    """The call's Recording rows, once `expected` tracks are all registered (the room closes in the background)."""
    engine = make_engine(w.settings.database_url)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            with Session(engine) as session:
                rows = list(session.exec(select(Recording).where(Recording.session_id == call_id)))
            if expected <= {r.track for r in rows} or time.monotonic() > deadline:
                return rows
            await asyncio.sleep(0.25)  # polling the records, which the server writes after the call
    finally:
        engine.dispose()


async def test_call_shows_video_both_ways_and_records_every_track(browser, media_settings, screenshot_dir: Path):
    with world(media_settings) as w:
        console = await open_console(browser, w)
        kiosk = await open_kiosk(browser, w)
        try:
            call_id = await connect_call(kiosk, console, w.item_by_skill["social_insurance"])

            # The clerk sees the resident's face AND the document camera; the resident sees the clerk.
            seen = await wait_decoded(console, "consoleMedia", {"booth-face": FRAMES, "booth-document": FRAMES})
            heard = await wait_decoded(kiosk, "kioskMedia", {"clerk-camera": FRAMES})
            assert seen["booth-face"] > FRAMES and seen["booth-document"] > FRAMES
            assert heard["clerk-camera"] > FRAMES
            stats = await console.evaluate("async () => window.consoleMedia.media.stats()")
            document = next(s for s in stats if s["track"] == "document")
            assert document["codec"] == "video/VP8"  # the hub forwards VP8 as it came
            assert (document["frameWidth"], document["frameHeight"]) == (1280, 720)
            assert {s["track"] for s in stats if s["kind"] == "audio"} == {"audio"}
            sdp_sizes = [await page.evaluate(f"window.{holder}.media.pc.localDescription.sdp.length")
                         for page, holder in ((console, "consoleMedia"), (kiosk, "kioskMedia"))]
            assert max(sdp_sizes) < 32 * 1024, sdp_sizes  # rtc.offer's limit, with VP8/H.264 only
            assert await kiosk.evaluate("window.kioskMedia.cameras.documentIsCamera") is False  # one fake camera
            assert await kiosk.get_attribute("body", "data-media") == "connected"
            assert await kiosk.is_visible("#doc-video") and await kiosk.is_visible("#self-video")
            assert await kiosk.is_hidden("#video-placeholder")
            await console.wait_for_selector("#face-video:not([hidden])")
            assert await console.evaluate(
                "['face-video', 'doc-video', 'self-video'].every((id) => document.getElementById(id).videoWidth > 0)")

            # The document view zooms by keyboard and by its buttons.
            await console.focus("#doc-video")
            await console.keyboard.press("+")
            assert await console.evaluate("window.consoleMedia.zoom") == 1.5
            await console.keyboard.press("ArrowRight")
            assert "translate(-" in await console.eval_on_selector("#doc-video", "v => v.style.transform")
            await console.click("#doc-zoom-in")
            assert await console.text_content("#doc-zoom-level") == "200%"
            await console.click("#doc-zoom-reset")
            assert await console.evaluate("window.consoleMedia.zoom") == 1
            assert await console.is_disabled("#doc-zoom-out")
            await console.click("#doc-zoom-in")

            await assert_accessible(kiosk, "kiosk in call with video")
            await kiosk.screenshot(path=str(screenshot_dir / "kiosk-call-video-landscape.png"))
            await assert_accessible(console, "console in call with video")
            await console.screenshot(path=str(screenshot_dir / "console-in-call-video.png"))

            # axe and screenshots can hold a page's main thread past the short heartbeat on a busy
            # machine; a clerk clicks once the console says it is connected again.
            await console.wait_for_selector("body[data-connected=true]")
            await console.click("#end-call")
            await kiosk.wait_for_selector("body[data-screen=rating]")
            await console.wait_for_selector("#view-wrapup:not([hidden])")
            # Cameras off at both ends once the call is over.
            assert await kiosk.evaluate("window.kioskMedia.media === null && window.kioskMedia.cameras === null")
            assert await kiosk.evaluate("document.getElementById('self-video').srcObject === null")
            await console.wait_for_function("window.consoleMedia.media === null")
            assert await console.evaluate("window.consoleMedia.zoom") == 1

            rows = await recordings_of(w, call_id, RECORDED)
            assert RECORDED <= {r.track for r in rows}, [r.track for r in rows]
            for row in rows:
                assert row.duration_s > 0 and row.size > 0, row
                assert row.codec == ("opus" if row.track.endswith("audio") else "VP8"), row
        finally:
            await kiosk.context.close()
            await console.context.close()


async def test_kiosk_network_drop_resumes_the_call_on_a_new_peer_connection(browser, media_settings, screenshot_dir):
    with world(media_settings) as w:
        console = await open_console(browser, w)
        kiosk = await open_kiosk(browser, w)
        try:
            call_id = await connect_call(kiosk, console, w.item_by_skill["social_insurance"])
            await wait_decoded(kiosk, "kioskMedia", {"clerk-camera": FRAMES})
            before = await wait_decoded(console, "consoleMedia", {"booth-face": FRAMES, "booth-document": FRAMES})

            # The booth's network is gone for DROP_S: both ends notice, and the outage lasts its length
            # (this wait is the fault's duration, not a synchronisation).
            await kiosk.context.set_offline(True)
            dropped_at = time.monotonic()
            await kiosk.wait_for_selector("#net-banner:not([hidden])", timeout=15000)
            await console.wait_for_selector("[data-testid=peer-status] >> text=居民端连接中断")
            await asyncio.sleep(max(0.0, DROP_S - (time.monotonic() - dropped_at)))
            await kiosk.context.set_offline(False)
            back_at = time.monotonic()
            await kiosk.wait_for_selector("#net-banner", state="hidden", timeout=30000)
            await console.wait_for_selector("[data-testid=peer-status] >> text=居民端已重新连接")
            rejoined_s = time.monotonic() - back_at

            # The same call, on a second peer connection, with pictures again at both ends.
            assert await kiosk.get_attribute("body", "data-call-id") == call_id
            again = await wait_decoded(kiosk, "kioskMedia", {"clerk-camera": FRAMES}, generation=2)
            assert again["clerk-camera"] > FRAMES
            assert await kiosk.evaluate("window.kioskMedia.media.generation") == 2
            after = await wait_decoded(console, "consoleMedia", {name: n + FRAMES for name, n in before.items()})
            assert after["booth-face"] > before["booth-face"] and after["booth-document"] > before["booth-document"]
            assert await console.evaluate("window.consoleMedia.media.generation") == 1  # the clerk kept its peer
            print(json.dumps({"figure": "booth network drop mid-call", "dropped_s": round(back_at - dropped_at, 1),
                              "signaling_back_s": round(rejoined_s, 2),
                              "pictures_back_s": round(time.monotonic() - back_at, 2)}))
            await assert_accessible(kiosk, "kiosk in call after a network drop")

            await console.wait_for_selector("body[data-connected=true]")
            await console.click("#end-call")
            await kiosk.wait_for_selector("body[data-screen=rating]")
            # Both booth peers were recorded: the segments before and after the drop.
            rows = await recordings_of(w, call_id, RECORDED)
            tracks = [r.track for r in rows]
            assert RECORDED <= set(tracks) and tracks.count("booth-face") == 2, tracks
        finally:
            await kiosk.context.close()
            await console.context.close()
