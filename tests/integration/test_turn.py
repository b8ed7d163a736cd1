"""A call forced through a real coturn relay (relay-only ICE) with TURN REST credentials, recorded.

The booth and the clerk are aiortc peers with synthetic media; the server hands each socket
its `ice.servers` (a time-limited credential naming the party), and the peers use exactly
that, with the relay policy.  A wrong credential gathers no relay candidate: ICE fails on
that peer alone and the server goes on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cloudseat.settings import Settings
from signaling.protocol_media import MediaPeer, booth_tracks, clerk_tracks, ice_from_message
from tests.coturn import running_coturn
from tests.media_helpers import wait_until
from tests.signaling_fixtures import call_records, clients, world

pytestmark = pytest.mark.asyncio

FRAMES = 30


def selected_local_types(peer: MediaPeer) -> set[str]:
    """The candidate types of the nominated pairs' local side (aioice's view of the selected pair)."""
    types = set()
    for transceiver in peer.pc.getTransceivers():
        connection = transceiver.sender.transport.transport._connection  # aioice.Connection
        types |= {pair.local_candidate.type for pair in connection._nominated.values()}
    return types


def relay_settings(tmp_path: Path, coturn: Any) -> Settings:
    return Settings(data_dir=tmp_path / "var", media_addresses=("127.0.0.1",), turn_urls=(coturn.url,),
                    turn_secret=coturn.secret, turn_ttl_s=600, ice_policy="relay")


async def test_a_relay_only_call_goes_through_coturn_and_is_recorded(tmp_path):
    with running_coturn(tmp_path) as coturn, world(relay_settings(tmp_path, coturn)) as w:
        booth = await w.booth("b1")
        clerk = await w.clerk("c1")
        async with clients(booth, clerk):
            booth_ice = await booth.wait_for("ice.servers")
            clerk_ice = await clerk.wait_for("ice.servers")
            assert booth_ice["ice_transport_policy"] == "relay"
            assert booth_ice["ice_servers"][0]["username"].endswith(f":booth-{w.booth_ids['b1']}")
            assert clerk_ice["ice_servers"][0]["username"].endswith(":clerk-c1")
            refreshed = await clerk.request("ice.refresh")
            assert refreshed["ice_servers"][0]["urls"] == coturn.url and refreshed["expires_at"] >= clerk_ice["expires_at"]

            call_id = str((await booth.request("call.request", item_code=w.item_by_skill["social_insurance"]))["call_id"])
            await clerk.wait_for("offer", lambda m: m["call_id"] == call_id, timeout_s=30)
            await clerk.request("offer.accept", call_id=call_id)
            servers, relay = ice_from_message(booth_ice)
            booth_peer = MediaPeer(booth, call_id, publish=booth_tracks(), receive=("video", "audio"),
                                   ice_servers=servers, relay_only=relay)
            servers, relay = ice_from_message(clerk_ice)
            clerk_peer = MediaPeer(clerk, call_id, publish=clerk_tracks(), receive=("video", "video", "audio"),
                                   ice_servers=servers, relay_only=relay)
            try:
                offer = await booth_peer.connect()
                assert " typ relay " in booth_peer.pc.localDescription.sdp
                assert " typ host " not in booth_peer.pc.localDescription.sdp  # relay only: no host candidate
                assert " typ relay " in offer["sdp"]  # the hub took a relay candidate of its own
                await clerk_peer.connect()
                await clerk_peer.wait_frames("booth-face", FRAMES, 30)
                await booth_peer.wait_frames("clerk-camera", FRAMES, 30)
                assert selected_local_types(booth_peer) == {"relay"}
                assert selected_local_types(clerk_peer) == {"relay"}
                await clerk.request("call.end", call_id=call_id)

                def recorded() -> bool:
                    return len(call_records(w.settings, call_id)[1]) >= 5

                await wait_until(recorded, 30, "the call's recordings")
                _, recordings, _ = call_records(w.settings, call_id)
                assert {r.track for r in recordings} >= {"booth-face", "clerk-camera"}
                assert all(r.duration_s > 0 for r in recordings), [(r.track, r.duration_s) for r in recordings]
            finally:
                await booth_peer.close()
                await clerk_peer.close()
        log = coturn.log()
        assert f":booth-{w.booth_ids['b1']}>" in log and ":clerk-c1>" in log  # allocations are attributable


async def test_a_wrong_credential_fails_ice_and_leaves_the_server_serving(tmp_path):
    with running_coturn(tmp_path) as coturn, world(relay_settings(tmp_path, coturn)) as w:
        booth = await w.booth("b1")
        clerk = await w.clerk("c1")
        async with clients(booth, clerk):
            booth_ice = await booth.wait_for("ice.servers")
            call_id = str((await booth.request("call.request", item_code=w.item_by_skill["social_insurance"]))["call_id"])
            await clerk.wait_for("offer", lambda m: m["call_id"] == call_id, timeout_s=30)
            await clerk.request("offer.accept", call_id=call_id)
            servers, _ = ice_from_message(booth_ice)
            servers[0].credential = "d3Jvbmc="  # not the HMAC of the username
            bad = MediaPeer(booth, call_id, publish=booth_tracks(), receive=("video", "audio"),
                            ice_servers=servers, relay_only=True)
            try:
                await bad.connect()
                # coturn refused the allocation, so relay-only gathering has no candidate at all: aiortc
                # never starts ICE (there is nothing to pair) and the peer cannot connect.
                assert " typ relay " not in bad.pc.localDescription.sdp
                assert " typ host " not in bad.pc.localDescription.sdp
                assert bad.pc.iceConnectionState in ("new", "checking", "failed")
            finally:
                await bad.close()
            username = servers[0].username
            assert f"user <{username}>: incoming packet message processed, error 401" in coturn.log()
            # The server still serves: the socket answers and the call ends cleanly.
            assert (await booth.request("ping")) is not None
            assert (await clerk.request("call.end", call_id=call_id))["type"] == "ack"
