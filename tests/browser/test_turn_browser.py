"""Chromium kiosk and console in a call forced through a real coturn relay (iceTransportPolicy relay).

The pages get their ICE servers and policy only from the socket's `ice.servers` (a time-limited
TURN credential each); video is decoded both ways and each page's selected candidate pair has a
local candidate of type `relay` (getStats).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.test_call_browser_media import connect_call, open_console, open_kiosk, wait_decoded
from tests.coturn import running_coturn
from tests.signaling_fixtures import world

pytestmark = pytest.mark.browser

FRAMES = 10

SELECTED_LOCAL_TYPE = """async (holder) => {
    const pc = window[holder].media.pc;
    const stats = [...(await pc.getStats()).values()];
    const transport = stats.find((s) => s.type === "transport" && s.selectedCandidatePairId);
    const pair = transport ? stats.find((s) => s.id === transport.selectedCandidatePairId)
                           : stats.find((s) => s.type === "candidate-pair" && s.nominated && s.state === "succeeded");
    const local = pair && stats.find((s) => s.id === pair.localCandidateId);
    return {policy: pc.getConfiguration().iceTransportPolicy, type: local ? local.candidateType : null,
            servers: pc.getConfiguration().iceServers.map((s) => s.username)};
}"""


async def test_kiosk_and_console_call_through_the_relay_only(browser: Any, app_settings, tmp_path):
    with running_coturn(tmp_path) as coturn:
        settings = app_settings.with_overrides(
            turn_urls=(coturn.url,), turn_secret=coturn.secret, ice_policy="relay", offer_timeout_s=60,
            # The hub's address is the one coturn may relay to (allowed-peer-ip); the machine's
            # other interfaces are in the shipped denied ranges (documentation/ULA addresses).
            media_addresses=("127.0.0.1",))
        with world(settings) as w:
            console = await open_console(browser, w)
            kiosk = await open_kiosk(browser, w)
            try:
                assert await kiosk.locator("meta[name=cloudseat-ice-servers]").count() == 0  # no secret in the page
                await connect_call(kiosk, console, w.item_by_skill["social_insurance"])
                seen = await wait_decoded(console, "consoleMedia", {"booth-face": FRAMES})
                heard = await wait_decoded(kiosk, "kioskMedia", {"clerk-camera": FRAMES})
                assert seen["booth-face"] > FRAMES and heard["clerk-camera"] > FRAMES
                kiosk_pair = await kiosk.evaluate(SELECTED_LOCAL_TYPE, "kioskMedia")
                console_pair = await console.evaluate(SELECTED_LOCAL_TYPE, "consoleMedia")
                assert kiosk_pair["policy"] == console_pair["policy"] == "relay"
                assert kiosk_pair["type"] == "relay", kiosk_pair
                assert console_pair["type"] == "relay", console_pair
                assert kiosk_pair["servers"][0].endswith(f":booth-{w.booth_ids['b1']}")
                assert console_pair["servers"][0].endswith(":clerk-c1")
            finally:
                await kiosk.context.close()
                await console.context.close()
