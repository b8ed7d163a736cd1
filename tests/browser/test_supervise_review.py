"""A supervisor reviews a real finished call in Chromium: list, session page, synchronised playback, seeking.

The call is real: a booth and a clerk (protocol clients with aiortc peers sending synthetic video and
sound, as the simulators do) meet through the live server and its media hub for a few seconds; the
clerk asks for a capture, the booth uploads it, the booth sends a chat line, the clerk accepts the
case (a receipt is printed), ends the call, and the resident rates it.  The hub records every track.

Then the supervisor logs in through the form, finds the session in the list (and filters it), opens
it, plays: both videos advance with decoded frames and stay within the sync tolerance; a click on the
chat event moves the playback to that event's offset; a material opens.  The access log then holds
`recording.played` and `material.viewed` for that supervisor.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections import Counter
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlmodel import Session, col, select

from records.db import make_engine
from records.models import Event, Recording, User
from signaling.protocol_media import booth_tracks, clerk_tracks, open_peer
from tests.browser.a11y import assert_accessible
from tests.signaling_fixtures import PASSWORD, World, world
from tests.web_clients import booth_client, login

pytestmark = pytest.mark.browser

VIEWPORT = {"width": 1440, "height": 1000}
TIMEOUT_MS = 30000  # a shared 2-core machine decoding two videos and two sounds
RECORDED = {"booth-face", "booth-document", "booth-audio", "clerk-audio", "clerk-camera"}
CHAT = "请问还需要带户口簿吗？"
ITEM = "SB-004"  # 社会保障卡补领换领: id_card and photo on its checklist


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (1600, 1200), (236, 226, 200)).save(out, "PNG")
    return out.getvalue()


def rows(w: World, stmt: Any) -> list[Any]:
    engine = make_engine(w.settings.database_url)
    try:
        with Session(engine) as session:
            return list(session.exec(stmt))
    finally:
        engine.dispose()


async def until_rows(w: World, stmt: Any, done: Any, what: str, timeout_s: float = 30.0) -> list[Any]:
    """Poll the records (the server writes them in the background) until `done(rows)`."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = await asyncio.to_thread(rows, w, stmt)
        if done(found):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {found}")
        await asyncio.sleep(0.25)  # polling the records, not a synchronisation


async def finished_call(w: World) -> str:
    """A few seconds of a real call with a capture, a chat line, a decision and a rating; returns its id."""
    booth, clerk = await w.booth("b1"), await w.clerk("c1")
    peers: list[Any] = []
    try:
        call_id = str((await booth.request("call.request", item_code=ITEM))["call_id"])
        await clerk.wait_for("offer", lambda m: m["call_id"] == call_id)
        await clerk.request("offer.accept", call_id=call_id)
        await booth.wait_for("call.connected", lambda m: m["call_id"] == call_id)
        booth_peer = await open_peer(booth, call_id, publish=booth_tracks(), receive=("video", "audio"))
        clerk_peer = await open_peer(clerk, call_id, publish=clerk_tracks(), receive=("video", "video", "audio"))
        assert booth_peer is not None and clerk_peer is not None
        peers = [booth_peer, clerk_peer]
        await clerk_peer.wait_frames("booth-face", 15, 30)  # about a second of pictures
        await clerk_peer.wait_frames("booth-document", 2, 30)
        await booth_peer.wait_frames("clerk-camera", 15, 30)

        with closing(login(w.url, "c1", PASSWORD)) as c1, closing(booth_client(w.url, w.tokens["b1"])) as b1:
            asked = await asyncio.to_thread(c1.post, f"/api/seat/calls/{call_id}/capture", json={"material_code": "id_card"})
            assert asked.status_code == 202, asked.text
            await booth.wait_for("capture.request")
            uploaded = await asyncio.to_thread(b1.post, "/api/booth/materials", data={"call_id": call_id},
                                               files={"file": ("id.png", png(), "image/png")})
            assert uploaded.status_code == 201, uploaded.text
            await clerk_peer.wait_frames("booth-face", 30, 30)
            await booth.request("chat.send", call_id=call_id, text=CHAT)
            await clerk_peer.wait_frames("booth-face", 60, 30)  # the chat sits inside the recordings
            decided = await asyncio.to_thread(c1.post, f"/api/seat/calls/{call_id}/decision",
                                              json={"outcome": "accept", "accept_without": ["id_card", "photo"]})
            assert decided.status_code == 201, decided.text
            await clerk_peer.wait_frames("booth-face", 75, 30)
            await clerk.request("call.end", call_id=call_id)
            await booth.wait_for("call.ended", lambda m: m["call_id"] == call_id)
            rated = await asyncio.to_thread(b1.post, "/api/booth/ratings",
                                            json={"call_id": call_id, "level": 5, "comment": "很方便"})
            assert rated.status_code == 201, rated.text
    finally:
        for peer in peers:
            await peer.close()
        await booth.close()
        await clerk.close()
    await until_rows(w, select(Recording).where(Recording.session_id == call_id),
                     lambda found: RECORDED <= {r.track for r in found}, "the call's recordings")
    return call_id


async def log_in(browser: Any, w: World, username: str) -> Any:
    context = await browser.new_context(viewport=VIEWPORT, timezone_id="Asia/Shanghai", locale="zh-CN")
    page = await context.new_page()
    await page.goto(f"{w.url}/login")
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(lambda url: "/login" not in url)
    return page


async def wait_media(page: Any, script: str, arg: Any = None) -> None:
    """`wait_for_function` on the player; on a timeout, say what every media element was doing."""
    try:
        await page.wait_for_function(script, arg=arg, timeout=TIMEOUT_MS)
    except Exception:
        state = await page.evaluate("""() => [...document.querySelectorAll('video, audio')].map((m) => ({
            id: m.id, src: m.getAttribute('src'), t: m.currentTime, paused: m.paused, ready: m.readyState,
            network: m.networkState, error: m.error && m.error.message, seeking: m.seeking,
            buffered: m.buffered.length ? [m.buffered.start(0), m.buffered.end(0)] : null}))""")
        recordings = await page.evaluate("JSON.parse(document.getElementById('review-data').textContent).recordings")
        raise AssertionError(f"player state: {state}; recordings: {recordings}") from None


def players(page: Any) -> Any:
    return page.evaluate("""() => ['video-face', 'video-document'].map((id) => {
        const v = document.getElementById(id);
        return {t: v.currentTime, frames: v.getVideoPlaybackQuality().totalVideoFrames, paused: v.paused,
                seeking: v.seeking, w: v.videoWidth};
    })""")


async def test_supervisor_reviews_a_finished_call(browser, app_settings, screenshot_dir: Path):
    settings = app_settings.with_overrides(heartbeat_s=1.0, offer_timeout_s=60)
    with world(settings) as w:
        call_id = await finished_call(w)
        page = await log_in(browser, w, "sup")
        try:
            # The list: the session is there; filters refresh it in place.
            await page.goto(f"{w.url}/supervise/sessions")
            await page.wait_for_selector("body[data-ready=true]")
            row = f"#sessions-body tr[data-call-id='{call_id}']"
            await page.wait_for_selector(row)
            assert "SB-004" not in (await page.text_content(row) or "")  # names, not codes
            await page.select_option("select[name=outcome]", "accepted")
            await page.wait_for_function("document.body.dataset.listLoaded")
            await page.wait_for_selector(row)
            assert "outcome=accepted" in page.url
            await page.select_option("select[name=rating]", "1")
            await page.wait_for_selector("#sessions-empty:not([hidden])")
            await page.select_option("select[name=rating]", "5")
            await page.wait_for_selector(row)
            await assert_accessible(page, "session review list")
            await page.screenshot(path=str(screenshot_dir / "supervise-review-list.png"), full_page=True)

            # The session page.
            await page.click(f"{row} a.open-session")
            await page.wait_for_url(f"{w.url}/supervise/sessions/{call_id}")
            await page.wait_for_selector("body[data-ready=true]")
            for kind in ("call.queued", "call.offered", "call.answered", "capture.requested", "material.added",
                         "chat.message", "case.opened", "print.created", "call.ended", "rating.given",
                         "recording.finished"):
                assert await page.locator(f".tl-item[data-kind='{kind}']").count() >= 1, kind
            assert CHAT in (await page.text_content("#timeline") or "")
            assert await page.locator("[data-testid=case]").count() == 1
            assert "5/5" in (await page.text_content("[data-testid=rating]") or "")
            # Nothing is fetched (nor logged) before the user plays.
            assert await page.evaluate("document.getElementById('video-face').getAttribute('src')") is None

            # Play: both videos advance with decoded frames, together.
            await page.click("#play-toggle")
            await wait_media(page, """() => ['video-face', 'video-document'].every((id) => {
                const v = document.getElementById(id);
                return !v.paused && v.getVideoPlaybackQuality().totalVideoFrames > 0 && v.videoWidth > 0;
            })""")
            start = await players(page)
            await wait_media(page, "(t0) => document.getElementById('video-face').currentTime > t0 + 1", start[0]["t"])
            for _ in range(4):  # sampled while playing: within the re-alignment tolerance
                face, document = await players(page)
                assert face["t"] > start[0]["t"] and document["t"] > start[1]["t"]
                assert abs(face["t"] - document["t"]) < 0.35, (face, document)
                await wait_media(page, "(t0) => document.getElementById('video-face').currentTime > t0 + 0.3",
                                 face["t"])
            assert (await players(page))[1]["frames"] > 0
            await page.click("#play-toggle")  # pause
            await page.wait_for_selector("body[data-playing=false]")

            # A click on the chat event moves the playback to that event's offset.
            jump = page.locator(".tl-item[data-kind='chat.message'] .tl-jump")
            offset = float(await jump.get_attribute("data-offset") or "nan")
            assert 0.5 < offset < 10, offset
            await jump.click()
            await wait_media(page, """(offset) => ['video-face', 'video-document'].every((id) => {
                const v = document.getElementById(id);
                return !v.seeking && Math.abs(v.currentTime - offset) < 0.5;
            })""", offset)
            assert abs(await page.evaluate("window.reviewPlayer.time") - offset) < 0.5
            assert await page.get_attribute(".tl-item[data-kind='chat.message']", "aria-current") == "step"

            # A material opens in the viewer.
            await page.click(".material-open")
            await page.wait_for_function(
                "() => { const i = document.getElementById('viewer-image'); return i.complete && i.naturalWidth === 1600; }",
                timeout=TIMEOUT_MS)
            assert await page.evaluate("document.getElementById('material-viewer').open")
            await page.screenshot(path=str(screenshot_dir / "supervise-review-material.png"))
            await page.click("#viewer-close")
            await assert_accessible(page, "session review page")
            await page.screenshot(path=str(screenshot_dir / "supervise-review-session.png"), full_page=True)

            # The access log: this supervisor played the tracks and viewed the material.
            sup_id = (await asyncio.to_thread(rows, w, select(User.id).where(User.username == "sup")))[0]
            actor = f"user:{sup_id}"
            accesses = await until_rows(
                w, select(Event).where(Event.session_id == call_id,
                                       col(Event.kind).in_(["recording.played", "material.viewed"])),
                lambda found: {"recording.played", "material.viewed"} <= {e.kind for e in found}, "access events")
            played = Counter(e.data["track"] for e in accesses if e.kind == "recording.played" and e.actor == actor)
            # One playback (with a seek and many range requests in it) is one event per track played.
            assert played == {"booth-face": 1, "booth-document": 1, "booth-audio": 1, "clerk-audio": 1}, played
            assert any(e.kind == "material.viewed" and e.actor == actor and "material_id" in e.data for e in accesses)

            # The same page in English (the lang cookie), still accessible.
            await page.context.add_cookies([{"name": "lang", "value": "en", "url": w.url}])
            await page.reload()
            await page.wait_for_selector("body[data-ready=true]")
            assert await page.text_content("#player-title") == "Recordings"
            assert "Chat message" in (await page.text_content("#timeline") or "")
            await assert_accessible(page, "session review page in English")
            await page.evaluate("window.scrollTo(0, 0)")
            await page.screenshot(path=str(screenshot_dir / "supervise-review-session-en.png"))
        finally:
            await page.context.close()
