"""Bandwidth feedback through the hub: a subscriber's REMB reaches the publisher.

The clerk's receiver estimates what its leg carries and says so in REMB; the
hub relays the lowest estimate of a publication's subscribers to the
publisher's leg, so the publisher's encoder (here aiortc's own VP8 encoder,
which takes REMB as its target bit-rate) slows down for the slowest receiver.
"""

from __future__ import annotations

import asyncio

import pytest

from media import _aiortc_internals as internals
from media.hub import MediaHub
from media.synthetic import CameraTrack
from tests.media_helpers import ClientPeer, send_remb, silence_own_remb, wait_until

LOW = 270_000  # inside aiortc's VP8 clamp (250 k .. 1.5 M), never its default (500 k)


@pytest.fixture
async def hub():
    media_hub = MediaHub(host_addresses=["127.0.0.1"])
    yield media_hub
    await media_hub.close()


async def test_subscriber_remb_lowers_the_publishers_encoder_bitrate(hub: MediaHub) -> None:
    booth = ClientPeer("booth", publish=[CameraTrack()])
    clerk = ClientPeer("clerk", receive=["video"])
    monitor = ClientPeer("monitor", receive=["video"])
    try:
        (clerk_receiver,) = [t.receiver for t in clerk.pc.getTransceivers()]
        (monitor_receiver,) = [t.receiver for t in monitor.pc.getTransceivers()]
        for receiver in (clerk_receiver, monitor_receiver):
            silence_own_remb(receiver)  # only the estimates this test sends
        await booth.connect(hub, "r", "booth")
        await clerk.connect(hub, "r", "clerk")
        await monitor.connect(hub, "r", "monitor")
        (sender,) = booth.senders
        for peer in (clerk, monitor):
            (received,) = peer.received.values()
            await wait_until(lambda r=received: len(r.codes) >= 3, 10, f"{peer.name} frames")
        assert internals.sender_target_bitrate(sender) != LOW

        async def report(bitrates: dict[object, int]) -> None:
            for receiver, bitrate in bitrates.items():
                await send_remb(receiver, bitrate)

        # the monitor's leg is fine, the clerk's is slow: the slowest wins
        async def keep_reporting() -> None:
            while True:
                await report({clerk_receiver: LOW, monitor_receiver: 1_200_000})
                await asyncio.sleep(0.3)

        reporter = asyncio.ensure_future(keep_reporting())
        try:
            await wait_until(lambda: internals.sender_target_bitrate(sender) == LOW, 10, "publisher at the low REMB")
        finally:
            reporter.cancel()
        (publication,) = [p for p in hub.stats("r")["publications"] if p["participant"] == "booth"]
        assert publication["rembs_relayed"] >= 1 and publication["bandwidth_cap"] == LOW
    finally:
        for peer in (booth, clerk, monitor):
            await peer.close()
