"""The supervisors' live wall in Chromium: a call appears live, the supervisor monitors it silently.

The booth and the clerk are protocol clients with aiortc peers publishing synthetic media
(`signaling.protocol_media`), so the only browser is the supervisor's.  The wall page must show
the call without a reload (a `wall.call` push), its Monitor button must open a receive-only
peer through the hub whose `getStats` count decoded frames of the booth's face and document
cameras and of the clerk's camera, and audio packets of both voices (polled with
`wait_for_function`, never slept on); leaving must log `monitor.joined`/`monitor.left`
and leave both parties' peers and sockets untouched.  A supervisor scoped to one region never
sees another region's booth or call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, col, select

from records.accounts import create_user
from records.alerts import raise_alert
from records.db import make_engine
from records.models import AlertKind, Event, Region, Role
from signaling.protocol_client import ProtocolClient
from signaling.protocol_media import MediaPeer, booth_tracks, clerk_tracks
from tests.browser.a11y import assert_accessible
from tests.signaling_fixtures import ALWAYS_OPEN, PASSWORD, World, clients, world

pytestmark = pytest.mark.browser

LANDSCAPE = {"width": 1920, "height": 1080}
LAPTOP = {"width": 1366, "height": 768}
FRAMES = 10
TIMEOUT_MS = 30000  # Chromium and three aiortc peers encoding/decoding on a shared 2-core machine
REGIONS = {"east": ("东城街道", "East Town"), "west": ("西湖街道", "West Lake")}
BOOTHS = {"东城1号亭": "east", "东城2号亭": "east", "东城3号亭": "east", "西湖1号亭": "west", "西湖2号亭": "west"}
CLERKS = {"c1": (["social_insurance"], ["east"]), "c2": (["medical"], ["west"]),
          "c3": (["social_insurance", "medical"], ["east", "west"])}


@pytest.fixture
def wall_settings(app_settings):
    # A heartbeat of 3 s: the page notices a dead link within about 10 s (the reconnect test), and
    # the test's own sockets survive a busy machine (the server closes them after 6 s of silence).
    return app_settings.with_overrides(heartbeat_s=3.0, offer_timeout_s=60)


def seed_extras(w: World) -> None:
    """Readable region names, a supervisor scoped to east, and two open alerts (one per region)."""
    engine = make_engine(w.settings.database_url)
    with Session(engine) as session:
        for code, (zh, en) in REGIONS.items():
            region = session.get(Region, code)
            assert region is not None
            region.name_zh, region.name_en = zh, en
            session.add(region)
        create_user(session, username="sup-east", password=PASSWORD, role=Role.SUPERVISOR,
                    display_name="东城监督员", regions=["east"])
        raise_alert(session, kind=AlertKind.RED, message="社保待遇申领已超期 1 个工作日",
                    booth_id=w.booth_ids["东城2号亭"])
        raise_alert(session, kind=AlertKind.BLUE, message="居民评价“非常不满意”",
                    booth_id=w.booth_ids["西湖1号亭"])
        session.commit()
    engine.dispose()


def events_of(w: World, call_id: str) -> list[Event]:
    engine = make_engine(w.settings.database_url)
    try:
        with Session(engine) as session:
            return list(session.exec(select(Event).where(Event.session_id == call_id).order_by(col(Event.id))))
    finally:
        engine.dispose()


async def open_wall(browser: Any, w: World, username: str, viewport: dict[str, int]) -> Any:
    context = await browser.new_context(viewport=viewport, locale="zh-CN", timezone_id="Asia/Shanghai")
    page = await context.new_page()
    await page.goto(f"{w.url}/login?next=/supervise")
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{w.url}/supervise")
    await page.wait_for_selector("body[data-ready=true][data-connected=true]")
    return page


async def live_call(w: World, booth: ProtocolClient, clerk: ProtocolClient, skill: str) -> str:
    """The booth calls for an item of `skill`, the clerk accepts; returns the call id."""
    call_id = str((await booth.request("call.request", item_code=w.item_by_skill[skill]))["call_id"])
    await clerk.wait_for("offer", lambda m: m["call_id"] == call_id, timeout_s=30)
    await clerk.request("offer.accept", call_id=call_id)
    return call_id


async def wait_monitor(page: Any, frames: dict[str, int], audio: tuple[str, ...]) -> dict[str, Any]:
    """Until the monitor decoded more than `frames[name]` frames of each video and got packets of each audio.

    `wait_for_function` does not await a promise, so each poll starts a `getStats` and judges the
    last one that finished.
    """
    check = """([frames, audio]) => {
        const media = window.wallMonitor.media;
        if (!media || !media.pc) return false;
        const polled = media.pc.__polled ?? (media.pc.__polled = {busy: false, stats: []});
        if (!polled.busy) {
            polled.busy = true;
            media.stats().then((s) => { polled.stats = s; }).finally(() => { polled.busy = false; });
        }
        const named = (s) => s.publisher && s.track ? `${s.publisher}-${s.track}` : null;
        const video = Object.entries(frames).every(([name, n]) =>
            polled.stats.some((s) => named(s) === name && s.framesDecoded > n));
        const sound = audio.every((name) => polled.stats.some((s) => named(s) === name && s.packetsReceived > 0));
        return video && sound;
    }"""
    try:
        await page.wait_for_function(check, arg=[frames, list(audio)], polling=250, timeout=TIMEOUT_MS)
    except Exception:
        stats = await page.evaluate("async () => window.wallMonitor.media && window.wallMonitor.media.stats()")
        raise AssertionError(f"monitor: no frames for {frames}/{audio}; stats: {stats}") from None
    return {s["publisher"] + "-" + s["track"]: s for s in
            await page.evaluate("async () => window.wallMonitor.media.stats()") if s["publisher"] and s["track"]}


async def test_a_call_appears_live_and_the_supervisor_monitors_it_silently(browser, wall_settings, screenshot_dir: Path):
    with world(wall_settings, regions={"east": ALWAYS_OPEN, "west": ALWAYS_OPEN}, booths=BOOTHS, clerks=CLERKS) as w:
        seed_extras(w)
        page = await open_wall(browser, w, "sup", LANDSCAPE)
        booth = await w.booth("东城1号亭")
        clerk = await w.clerk("c1")
        others = [await w.booth("东城3号亭"), await w.booth("西湖1号亭"), await w.clerk("c2", available=False)]
        peers: list[MediaPeer] = []
        try:
            async with clients(booth, clerk, *others):
                await others[0].request("device.status", devices={"printer": "paper_out", "camera": "ok"})
                await booth.request("device.status", devices={"printer": "ok", "camera": "ok", "doc_camera": "ok"})
                await others[2].request("presence.set", status="not_ready", reason="training")
                await page.wait_for_selector("#booth-regions li.booth[data-status=idle] >> text=东城1号亭")
                await page.wait_for_selector("#booth-regions >> text=打印机缺纸")
                await page.wait_for_selector("#alert-list li[data-kind=red]")
                assert await page.text_content("#tile-alerts") == "2"

                # The call: waiting first (the clerk is not ready), then live, each shown without a reload.
                await clerk.request("presence.set", status="not_ready", reason="meeting")
                call_id = str((await booth.request("call.request",
                                                   item_code=w.item_by_skill["social_insurance"]))["call_id"])
                await page.wait_for_selector(f"#queue-groups li[data-call-id='{call_id}']")
                assert await page.text_content("#tile-waiting") == "1"
                await clerk.request("presence.set", status="available")
                await clerk.wait_for("offer", lambda m: m["call_id"] == call_id, timeout_s=30)
                await clerk.request("offer.accept", call_id=call_id)
                row = f"#calls-rows tr[data-call-id='{call_id}']"
                await page.wait_for_selector(row)
                await page.wait_for_selector(f"#queue-groups li[data-call-id='{call_id}']", state="detached")
                assert await page.evaluate("performance.getEntriesByType('navigation').length") == 1  # no reload
                assert "东城1号亭" in await page.text_content(row) and "C1" in await page.text_content(row)
                await page.wait_for_selector(f"#clerk-rows tr[data-clerk-id='{w.clerk_ids['c1']}'][data-status=in_call]")

                booth_peer = MediaPeer(booth, call_id, publish=booth_tracks(), receive=("video", "audio"))
                clerk_peer = MediaPeer(clerk, call_id, publish=clerk_tracks(), receive=("video", "video", "audio"))
                peers += [booth_peer, clerk_peer]
                await booth_peer.connect()
                await clerk_peer.connect()
                await clerk_peer.wait_frames("booth-face", FRAMES, 30)
                await booth_peer.wait_frames("clerk-camera", FRAMES, 30)
                # Two residents wait meanwhile (c1 is busy, c2 not ready): a priority one and a west one.
                await others[0].request("call.request", item_code=w.item_by_skill["social_insurance"], priority=True)
                await others[1].request("call.request", item_code=w.item_by_skill["medical"])
                await page.wait_for_selector("#queue-groups .queue-group[data-skill=medical] li")
                await page.wait_for_selector("#queue-groups .queue-group[data-skill=social_insurance] li .badge-priority")
                assert await page.text_content("#tile-waiting") == "2"
                await assert_accessible(page, "live wall with a live call")
                await page.screenshot(path=str(screenshot_dir / "supervise-wall-1920x1080.png"))

                # Monitor: both sides' video and audio, decoded in the supervisor's browser.
                pushes_before = (len(booth.pushes), len(clerk.pushes))
                pcs_before = (booth_peer.pc, clerk_peer.pc)
                await page.click(f"{row} button.btn-monitor")
                await page.wait_for_selector("#monitor[open]")
                got = await wait_monitor(page, {"booth-face": FRAMES, "clerk-camera": FRAMES, "booth-document": 1},
                                         ("booth-audio", "clerk-audio"))
                assert got["booth-face"]["codec"] == "video/VP8"
                assert got["booth-document"]["frameWidth"] == 1280
                await page.wait_for_selector("#monitor[data-state=connected]")
                await page.wait_for_function("document.getElementById('mon-clerk').videoWidth > 0")
                await assert_accessible(page, "silent monitor")
                await page.screenshot(path=str(screenshot_dir / "supervise-wall-monitoring.png"))
                face_before = clerk_peer.receipt("booth-face").readable  # type: ignore[union-attr]

                await page.click("#monitor-leave")
                await page.wait_for_selector("#monitor", state="hidden")
                await page.wait_for_function("!document.body.dataset.monitoring && window.wallMonitor.media === null")

                kinds = [e.kind for e in events_of(w, call_id)]
                assert kinds.count("monitor.joined") == 1 and kinds.count("monitor.left") == 1, kinds
                assert kinds.index("monitor.joined") < kinds.index("monitor.left")
                left = next(e for e in events_of(w, call_id) if e.kind == "monitor.left")
                assert left.data["reason"] == "left"

                # Neither side was disturbed: no message, the same peers, media still flowing in order.
                await clerk_peer.wait_frames("booth-face", face_before + FRAMES, 30)
                told = [m for m in booth.pushes[pushes_before[0]:] + clerk.pushes[pushes_before[1]:]
                        if m["type"] != "pong"]  # heartbeat answers are all they got
                assert told == []
                assert (booth_peer.pc, clerk_peer.pc) == pcs_before
                assert booth_peer.pc.connectionState == clerk_peer.pc.connectionState == "connected"
                assert clerk_peer.receipt("booth-face").in_order  # type: ignore[union-attr]
                assert booth_peer.receipt("clerk-camera").in_order  # type: ignore[union-attr]

                # The call ends: it leaves the wall by itself.
                await clerk.request("call.end", call_id=call_id)
                await page.wait_for_selector(row, state="detached")
                await page.wait_for_selector(f"#clerk-rows tr[data-clerk-id='{w.clerk_ids['c1']}'][data-status=wrap_up]")
        finally:
            for peer in peers:
                await peer.close()
            await page.context.close()


async def test_a_scoped_supervisor_does_not_see_another_region(browser, wall_settings, screenshot_dir: Path):
    with world(wall_settings, regions={"east": ALWAYS_OPEN, "west": ALWAYS_OPEN}, booths=BOOTHS, clerks=CLERKS) as w:
        seed_extras(w)
        east = await open_wall(browser, w, "sup-east", LAPTOP)
        everyone = await open_wall(browser, w, "sup", LAPTOP)
        west_booth, west_clerk = await w.booth("西湖1号亭"), await w.clerk("c2")
        east_booth, east_clerk = await w.booth("东城1号亭"), await w.clerk("c1")
        try:
            async with clients(west_booth, west_clerk, east_booth, east_clerk):
                west_call = await live_call(w, west_booth, west_clerk, "medical")
                await everyone.wait_for_selector(f"#calls-rows tr[data-call-id='{west_call}']")
                east_call = await live_call(w, east_booth, east_clerk, "social_insurance")
                # The east wall got the east call, published after everything west above.
                await east.wait_for_selector(f"#calls-rows tr[data-call-id='{east_call}']")
                await everyone.wait_for_selector(f"#calls-rows tr[data-call-id='{east_call}']")
                await east.wait_for_selector("#booth-regions li.booth[data-status=in_call] >> text=东城1号亭")

                east_text = await east.text_content("main")
                assert "西湖" not in east_text and "C2" not in east_text, east_text
                assert await east.locator(f"#calls-rows tr[data-call-id='{west_call}']").count() == 0
                assert await east.locator("#booth-regions section.region").count() == 1
                assert await east.get_attribute("#booth-regions section.region", "data-region") == "east"
                assert await east.text_content("#tile-calls") == "1"
                assert await east.text_content("#tile-alerts") == "1"  # the API scopes alerts too
                assert "东城街道" in await east.text_content("[data-testid=wall-scope]")
                assert "西湖1号亭" in await everyone.text_content("#booth-regions")
                assert await everyone.text_content("#tile-calls") == "2"

                await assert_accessible(east, "scoped live wall")
                await east.screenshot(path=str(screenshot_dir / "supervise-wall-1366x768.png"))
                await everyone.screenshot(path=str(screenshot_dir / "supervise-wall-1366x768-all-regions.png"))

                # The network drops: the wall says so, reconnects with backoff and re-reads the
                # snapshot, so the call that ended meanwhile (its push was missed) is gone.
                await everyone.context.set_offline(True)
                await everyone.wait_for_selector("body[data-connected=false] #conn-banner[data-tone=warn]",
                                                 timeout=TIMEOUT_MS)
                await east_clerk.request("call.end", call_id=east_call)
                await everyone.context.set_offline(False)
                await everyone.wait_for_selector("body[data-reconnects='1'][data-connected=true]", timeout=TIMEOUT_MS)
                assert await everyone.locator(f"#calls-rows tr[data-call-id='{east_call}']").count() == 0
                assert await everyone.locator(f"#calls-rows tr[data-call-id='{west_call}']").count() == 1
                assert await everyone.text_content("#tile-calls") == "1"
        finally:
            await east.context.close()
            await everyone.context.close()
