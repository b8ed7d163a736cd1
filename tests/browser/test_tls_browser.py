"""A whole call over https and wss in Chromium, from a host name that is not loopback.

Browsers give cameras only to secure origins; this is the set-up a booth has when it reaches the
centre by its LAN name. The server speaks TLS itself (uvicorn's, as `cloudseat serve --certfile`)
with a certificate made at test time for `booth.cloudseat.test`. Chromium resolves that name to
127.0.0.1 (`--host-resolver-rules`) and trusts exactly that certificate's key
(`--ignore-certificate-errors-spki-list`), so the page is a secure context by its own right.
"""

from __future__ import annotations

from pathlib import Path
import pytest

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, REQUIRE_BROWSER
from tests.browser.test_call_browser_media import FRAMES, connect_call, open_console, open_kiosk, wait_decoded
from tests.signaling_fixtures import world
from tests.tls_certs import HOST_NAME, make_cert_pair

pytestmark = pytest.mark.browser


async def test_a_call_over_https_and_wss_from_a_lan_host_name(app_settings, tmp_path: Path):
    if not Path(CHROMIUM).exists():  # as the `browser` fixture; this test launches its own, with TLS flags
        if REQUIRE_BROWSER:
            pytest.fail(f"Chromium is required but {CHROMIUM} does not exist (apt-get install chromium)")
        pytest.skip(f"no Chromium at {CHROMIUM}")
    pair = make_cert_pair(tmp_path / "tls")
    settings = app_settings.with_overrides(offer_timeout_s=60, heartbeat_s=2.0)
    with world(settings, tls=(pair.certfile, pair.keyfile), host_name=HOST_NAME) as w:
        assert w.url.startswith(f"https://{HOST_NAME}:")
        from playwright.async_api import async_playwright

        async with async_playwright() as pw:
            tls_browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
                *CHROMIUM_ARGS, f"--host-resolver-rules=MAP {HOST_NAME} 127.0.0.1",
                f"--ignore-certificate-errors-spki-list={pair.spki_sha256_b64}"])
            try:
                console = await open_console(tls_browser, w)
                kiosk = await open_kiosk(tls_browser, w)
                for page in (console, kiosk):
                    assert await page.evaluate("window.isSecureContext") is True
                    assert await page.evaluate("location.protocol") == "https:"
                call_id = await connect_call(kiosk, console, w.item_by_skill["social_insurance"])
                assert call_id
                seen = await wait_decoded(console, "consoleMedia", {"booth-face": FRAMES})
                heard = await wait_decoded(kiosk, "kioskMedia", {"clerk-camera": FRAMES})
                assert seen["booth-face"] > FRAMES and heard["clerk-camera"] > FRAMES
                # The signaling socket is wss on the page's own origin.
                ws_url = await kiosk.evaluate("window.kioskMedia.media.client.ws.url")
                assert ws_url.startswith(f"wss://{HOST_NAME}:"), ws_url
                await console.wait_for_selector("body[data-connected=true]")
                await console.click("#end-call")
                await kiosk.wait_for_selector("body[data-screen=rating]")
            finally:
                await tls_browser.close()
