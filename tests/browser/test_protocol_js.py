"""`seat/static/js/protocol.js` in real Chromium against the real server.

A booth (token as subprotocol) and a clerk (session cookie from the real login form) open their
sockets through the browser client; a call is requested, offered, accepted and connected; bad
requests are refused with their stable codes; the heartbeat keeps sockets alive past twice the
heartbeat period; a dropped clerk socket reconnects and finds its live call again.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.signaling_fixtures import PASSWORD, world

pytestmark = pytest.mark.browser

MODULE = "/static/seat/js/protocol.js"
HEARTBEAT_S = 1.0
# The server closes after 2 x heartbeat_s of silence, checked every sweep (heartbeat_s here):
# four answered pings span more than that limit.
PONGS_PAST_SILENCE_LIMIT = 4


@pytest.fixture
def fast_settings(app_settings):
    return app_settings.with_overrides(heartbeat_s=HEARTBEAT_S, offer_timeout_s=5)


async def open_client(page: Any, role: str, token: str | None = None) -> dict[str, Any]:
    """Import the module, connect as `role`, keep the client and what it hears on `window`."""
    return await page.evaluate(
        """async ([module, role, token]) => {
            const { ProtocolClient } = await import(module);
            window.heard = [];
            window.client = await ProtocolClient.connect(role, {
                token: token ?? undefined,
                onPush: (message) => window.heard.push(message),
            });
            window.pongs = 0;
            window.client.on("pong", () => { window.pongs += 1; });
            window.events = [];
            for (const type of ["reconnecting", "reconnected", "closed"]) {
                window.client.on(type, (event) => window.events.push(event));
            }
            return window.client.welcome;
        }""",
        [MODULE, role, token],
    )


async def request(page: Any, mtype: str, fields: dict[str, Any]) -> dict[str, Any]:
    """`client.request` in the page; an `error` comes back as {"refused": {code, name, re}}."""
    return await page.evaluate(
        """async ([mtype, fields]) => {
            try {
                return await window.client.request(mtype, fields);
            } catch (err) {
                return { refused: { code: err.code, name: err.name, re: err.reply && err.reply.re } };
            }
        }""",
        [mtype, fields],
    )


async def wait_for(page: Any, mtype: str, call_id: str, timeout_ms: int = 15000) -> dict[str, Any]:
    return await page.evaluate(
        "([mtype, callId, ms]) => window.client.waitFor(mtype, (m) => m.call_id === callId, ms)",
        [mtype, call_id, timeout_ms],
    )


async def log_in(page: Any, base_url: str, username: str) -> None:
    await page.goto(f"{base_url}/login")
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base_url}/seat")


async def test_booth_and_clerk_connect_call_and_stay_alive(browser, fast_settings, screenshot_dir):
    with world(fast_settings) as w:
        clerk_context = await browser.new_context()
        booth_context = await browser.new_context()  # no cookie: the token alone authenticates
        try:
            clerk = await clerk_context.new_page()
            await log_in(clerk, w.url, "c1")
            welcome = await open_client(clerk, "seat")
            assert welcome["role"] == "seat" and welcome["heartbeat_s"] == HEARTBEAT_S
            assert welcome["state"] == {"status": "not_ready", "reason": "signed_in"}
            assert welcome["clerk"]["skills"] == ["social_insurance"]
            assert (await request(clerk, "presence.set", {"status": "available"}))["status"] == "available"

            booth = await booth_context.new_page()
            await booth.goto(f"{w.url}/kiosk")
            welcome = await open_client(booth, "booth", w.tokens["b1"])
            assert welcome["role"] == "booth" and welcome["booth"]["name"] == "b1"
            assert welcome["call"] is None and welcome["service"]["open"] is True

            # Refusals carry their stable code and pair with the request's id.
            bad = await request(booth, "call.request", {"item_code": "SB 001"})
            assert bad["refused"]["code"] == "invalid" and bad["refused"]["name"] == "ProtocolError"
            assert bad["refused"]["re"].startswith("r")
            assert (await request(booth, "call.request", {"item_code": "NO-SUCH"}))["refused"]["code"] == "unknown_item"
            assert (await request(booth, "presence.set", {"status": "available"}))["refused"]["code"] == "not_allowed"

            item = w.item_by_skill["social_insurance"]
            ack = await request(booth, "call.request", {"item_code": item})
            assert ack["type"] == "ack" and ack["position"] == 1
            call_id = ack["call_id"]
            again = await request(booth, "call.request", {"item_code": item})
            assert again["refused"]["code"] == "call_in_progress"

            offer = await wait_for(clerk, "offer", call_id)
            assert offer["item"]["code"] == item and offer["booth"]["id"] == w.booth_ids["b1"]
            accepted = await request(clerk, "offer.accept", {"call_id": call_id})
            assert accepted["call_id"] == call_id and accepted["booth_id"] == w.booth_ids["b1"]
            connected = await wait_for(booth, "call.connected", call_id)
            assert connected["clerk"]["name"] == "C1" and connected["media_node"] == accepted["media_node"]

            # Heartbeat: both sockets outlive twice the heartbeat period plus a sweep, untouched.
            for page in (booth, clerk):
                await page.wait_for_function("n => window.pongs >= n", arg=PONGS_PAST_SILENCE_LIMIT,
                                             timeout=15000)
            for page in (booth, clerk):
                assert await page.evaluate("window.client.ws.readyState === WebSocket.OPEN")
                assert await page.evaluate("window.events") == []
            assert (await request(booth, "chat.send", {"call_id": call_id, "text": "您好"}))["type"] == "ack"
            chat = await wait_for(clerk, "chat.message", call_id)
            assert chat["sender"] == "booth" and chat["text"] == "您好"

            # A dropped clerk socket reconnects by itself and finds its live call again.
            await clerk.evaluate("window.client.ws.close(4000, 'test drop')")
            left = await wait_for(booth, "peer.left", call_id)
            assert left["who"] == "clerk"
            back = await clerk.evaluate("window.client.waitFor('reconnected', undefined, 15000)")
            assert back["welcome"]["state"]["status"] == "in_call"
            assert back["welcome"]["call"]["call_id"] == call_id
            assert [e["type"] for e in await clerk.evaluate("window.events")] == ["reconnecting", "reconnected"]
            rejoined = await wait_for(booth, "peer.rejoined", call_id)
            assert rejoined["who"] == "clerk"

            ended = await request(clerk, "call.end", {"call_id": call_id})
            assert ended["status"] == "ended"
            assert (await wait_for(booth, "call.ended", call_id))["reason"] == "hangup_clerk"
            await booth.screenshot(path=str(screenshot_dir / "protocol-js-booth.png"))

            # An explicit close() is final: a `closed` event and no reconnect.
            await booth.evaluate("window.client.close()")
            assert await booth.evaluate("window.events.map(e => e.type)") == ["closed"]
            refused = await request(booth, "device.status", {"devices": {"camera": "ok"}})
            assert refused["refused"]["code"] == "disconnected"
        finally:
            await clerk_context.close()
            await booth_context.close()


async def test_a_silent_client_is_dropped_and_reconnects(browser, fast_settings):
    with world(fast_settings) as w:
        context = await browser.new_context()
        try:
            page = await context.new_page()
            await page.goto(f"{w.url}/kiosk")
            await page.evaluate(
                """async ([module, token]) => {
                    const { ProtocolClient, CLOSE } = await import(module);
                    window.CLOSE = CLOSE;
                    window.client = await ProtocolClient.connect("booth", { token, heartbeat: false });
                }""",
                [MODULE, w.tokens["b2"]],
            )
            dropped = await page.evaluate("window.client.waitFor('reconnecting', undefined, 15000)")
            assert dropped["code"] == await page.evaluate("window.CLOSE.HEARTBEAT") == 4000
            assert dropped["attempt"] == 1 and dropped["delay_ms"] == 1000
            back = await page.evaluate("window.client.waitFor('reconnected', undefined, 15000)")
            assert back["welcome"]["role"] == "booth"
            await page.evaluate("window.client.close()")
        finally:
            await context.close()


async def test_a_refused_upgrade_rejects_connect(browser, fast_settings):
    with world(fast_settings) as w:
        context = await browser.new_context()
        try:
            page = await context.new_page()
            await page.goto(f"{w.url}/kiosk")
            outcome = await page.evaluate(
                """async (module) => {
                    const { ProtocolClient } = await import(module);
                    const tries = [["booth", { token: "cst_not-a-real-token" }], ["seat", {}], ["supervisor", {}]];
                    const codes = [];
                    for (const [role, options] of tries) {
                        try {
                            await ProtocolClient.connect(role, options);
                            codes.push("connected");
                        } catch (err) {
                            codes.push(err.code);
                        }
                    }
                    return codes;
                }""",
                MODULE,
            )
            assert outcome == ["connect_failed"] * 3
            assert w.server.app.state.switchboard.connection_count == 0
        finally:
            await context.close()
