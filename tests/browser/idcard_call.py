"""A live call between a kiosk page and the clerk's console, and the console's ID card checks.

Shared by the ID card browser tests (the booth agent's reader and the posted card); both read the
sample card of `booth.devices.sample_card`.
"""

from __future__ import annotations

from typing import Any

from tests.browser.test_console import go_available
from tests.browser.test_kiosk import choose_item_by_initials, on_screen

WAIT = 30000  # ms; conditions are awaited, so a generous limit costs nothing when things are fast
MASKED = "110105********002X"
FULL = "11010519491231002X"


async def accept_a_kiosk_call(kiosk: Any, console: Any) -> str:
    """The clerk goes available, the resident picks the item and calls, the clerk accepts; returns the call id."""
    await go_available(console)
    await choose_item_by_initials(kiosk)
    await kiosk.click("#call-button")
    await console.wait_for_selector("#view-ringing:not([hidden])", timeout=WAIT)
    await console.click("#offer-accept")
    await on_screen(kiosk, "call", WAIT)
    return await kiosk.evaluate("document.body.dataset.callId")


async def assert_console_shows_the_card(console: Any) -> None:
    """Name, masked number and photo right beside the resident's face; the full number nowhere."""
    await console.wait_for_selector("#idcard:not([hidden])", timeout=WAIT)
    assert (await console.text_content("[data-testid=idcard-name]") or "").strip() == "测试样例"
    assert (await console.text_content("[data-testid=idcard-number]") or "").strip() == MASKED
    await console.wait_for_function("document.querySelector('#idcard-photo').naturalWidth === 102", timeout=WAIT)
    placement = await console.evaluate("""() => {
        const face = document.querySelector('#face-video').closest('.pane').getBoundingClientRect();
        const card = document.querySelector('#idcard').getBoundingClientRect();
        return {gap: card.left - face.right, top: card.top - face.top};
    }""")
    assert 0 <= placement["gap"] <= 24 and abs(placement["top"]) <= 2
    assert FULL not in await console.content()
