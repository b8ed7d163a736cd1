"""Media across nodes: two real `cloudseat serve` processes on one Redis and one PostgreSQL.

The booth and a supervisor are connected to node-0, the clerk to node-1; the
clerk accepts there, so node-1 is the call's media node.  node-0 relays their
`rtc.offer` / `monitor.*` over the bus (`signaling.media_rpc`) and their media
goes straight to node-1's hub.  Checked:

- booth and clerk each receive the other's video readable and in order;
- the recordings are registered by the media node, with their files in its store;
- the supervisor on node-0 monitors (frames decoded, its `rtc.slots` relayed back),
  leaves, and a second supervisor socket that just closes ends its monitor too:
  `monitor.joined` / `monitor.left` (reasons `left`, `disconnected`) are logged;
- a booth of another call still gets `call_not_found` through node-0, hub refusals
  (`no_media`) come back with their code, and a media node killed with an offer in
  flight gives `media_unavailable` within seconds instead of a hang.
"""

from __future__ import annotations

import asyncio
import hashlib
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, col, select

from booth.simulator import BoothPlan, run_booth
from records.db import make_engine
from records.models import Event, Recording
from seat.simulator import SeatPlan, run_seat
from signaling.protocol_client import ProtocolClient, ReplyError, login_cookie
from signaling.protocol_media import MediaPeer
from tests.cluster import cluster, seed_cluster_world
from tests.media_helpers import wait_until
from tests.signaling_fixtures import PASSWORD, clients

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

HANDLE_S = 20.0  # the clerk ends the call this long after its media connected
MEDIA_ENV = {"CLOUDSEAT_MEDIA_ADDRESSES": "127.0.0.1"}  # what each node's hub advertises in its answers
DUMMY_SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
VIDEO_TRACKS = ("booth-face", "booth-document", "clerk-camera")
ALL_TRACKS = {*VIDEO_TRACKS, "booth-audio", "clerk-audio"}


def load(database_url: str, call_id: str) -> tuple[list[Event], list[Recording]]:
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            events = list(session.exec(select(Event).where(Event.session_id == call_id).order_by(col(Event.seq))))
            recordings = list(session.exec(select(Recording).where(Recording.session_id == call_id)))
            return events, recordings
    finally:
        engine.dispose()


async def wait_for_events(database_url: str, call_id: str, what: str, done: Any, timeout_s: float = 30.0
                          ) -> tuple[list[Event], list[Recording]]:
    deadline = time.monotonic() + timeout_s
    while True:
        events, recordings = await asyncio.to_thread(load, database_url, call_id)
        if done(events):
            return events, recordings
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {[e.kind for e in events]}"
        await asyncio.sleep(0.2)  # polling the database: there is no event to wait on


async def code_of(client: ProtocolClient, mtype: str, **fields: Any) -> tuple[str, dict[str, Any], float]:
    """The error code a request gets, its reply, and how long it took."""
    started = time.monotonic()
    with pytest.raises(ReplyError) as info:
        await client.request(mtype, timeout_s=30, **fields)
    return info.value.code, info.value.reply, time.monotonic() - started


async def test_a_call_whose_parties_are_on_two_nodes_has_media_recordings_and_a_monitor(
        tmp_path: Path, postgres_url: str, redis_url: str) -> None:
    seeded = seed_cluster_world(tmp_path, postgres_url)
    with cluster(tmp_path, postgres_url, redis_url, size=2, **MEDIA_ENV) as c:
        node_a, node_b = c[0], c[1]
        booth_peers: list[MediaPeer] = []
        seat_peers: list[MediaPeer] = []
        ready = asyncio.Event()
        seat_task = asyncio.create_task(run_seat(
            node_b.url, "c1", PASSWORD, SeatPlan(handle_s=HANDLE_S, jitter=0.0, calls=1), ready=ready,
            media=True, on_media=seat_peers.append))
        await asyncio.wait_for(ready.wait(), 30)
        booth_task = asyncio.create_task(run_booth(
            node_a.url, seeded["tokens"]["b1"],
            BoothPlan(item_code=seeded["item_by_skill"]["social_insurance"], answer_timeout_s=30),
            media=True, on_media=booth_peers.append))
        await wait_until(lambda: bool(booth_peers and seat_peers), 60, "both media peers")
        booth, clerk = booth_peers[0], seat_peers[0]
        call_id = booth.call_id
        assert booth.client.welcome["node"] == "node-0" and clerk.client.welcome["node"] == "node-1"
        # The booth's slots name the clerk's tracks: pushed from node-1's hub to the booth's socket on node-0.
        await booth.wait_frames("clerk-camera", 10, 30)
        await clerk.wait_frames("booth-face", 10, 30)
        await clerk.wait_frames("booth-document", 2, 30)

        sup_cookie = await asyncio.to_thread(login_cookie, node_a.url, "sup", PASSWORD)
        sup = await ProtocolClient.connect(node_a.url, "supervisor", cookie=sup_cookie)
        other = await ProtocolClient.connect(node_a.url, "booth", token=seeded["tokens"]["b2"])
        async with clients(sup, other):
            # A booth of another call is refused on node-0, before anything reaches node-1.
            assert (await code_of(other, "rtc.offer", call_id=call_id, sdp=DUMMY_SDP))[0] == "call_not_found"
            assert (await code_of(sup, "rtc.offer", call_id=call_id, sdp=DUMMY_SDP))[0] == "not_monitoring"

            joined = await sup.request("monitor.join", call_id=call_id, timeout_s=30)
            assert joined["media_node"] == "node-1"
            assert {t["track"] for t in joined["tracks"]} >= {"face", "document", "camera"}
            monitor = MediaPeer(sup, call_id, receive=("video", "video", "video", "audio", "audio"))
            try:
                await monitor.connect(timeout_s=30)
                await monitor.wait_frames("booth-face", 5, 30)
                await monitor.wait_frames("clerk-camera", 5, 30)
                # Its slots also come as `rtc.slots` pushes, relayed by node-0 (the peer's own watcher
                # consumes them from the client, so look at what arrived).
                def relayed() -> list[dict[str, Any]]:
                    return [m for m in sup.pushes if m.get("type") == "rtc.slots" and m.get("call_id") == call_id]

                await wait_until(lambda: bool(relayed()), 30, "an rtc.slots push for the monitor")
                assert {s["track"] for s in relayed()[-1]["slots"] if s["track"]} >= {"face", "document", "camera"}
                report = monitor.report()["received"]
                assert report["booth-face"]["in_order"] and report["clerk-camera"]["in_order"]
            finally:
                await monitor.close()
            assert (await sup.request("monitor.leave", call_id=call_id, timeout_s=30))["call_id"] == call_id
            assert (await code_of(sup, "monitor.leave", call_id=call_id))[0] == "not_monitoring"

        # A second supervisor socket that closes while monitoring ends its remote monitor.
        gone = await ProtocolClient.connect(node_a.url, "supervisor", cookie=sup_cookie)
        async with clients(gone):
            await gone.request("monitor.join", call_id=call_id, timeout_s=30)
        await wait_for_events(postgres_url, call_id, "the disconnected monitor to end",
                              lambda ev: any(e.kind == "monitor.left" and e.data["reason"] == "disconnected"
                                             for e in ev))

        seat_summary = await asyncio.wait_for(seat_task, 90)
        booth_summary = await asyncio.wait_for(booth_task, 90)
        events, recordings = await wait_for_events(postgres_url, call_id, "recording.finished",
                                                   lambda ev: any(e.kind == "recording.finished" for e in ev))

    assert booth_summary.all_answered and booth_summary.media_ok, booth_summary.to_json()
    assert seat_summary.answered == 1 and seat_summary.media_ok, seat_summary.to_json()
    got = booth_summary.media[0]["received"]
    assert got["clerk-camera"]["in_order"] and got["clerk-camera"]["readable"] >= HANDLE_S * 15 * 0.7
    assert got["clerk-audio"]["frames"] > 0
    got = seat_summary.media[0]["received"]
    assert got["booth-face"]["in_order"] and got["booth-face"]["readable"] >= HANDLE_S * 15 * 0.7
    assert got["booth-document"]["in_order"] and got["booth-document"]["readable"] >= HANDLE_S * 3 * 0.7
    assert got["booth-audio"]["frames"] > 0

    # The media node recorded every track into its own store and registered the files.
    assert {r.track for r in recordings} == ALL_TRACKS
    media_store, other_store = tmp_path / "node1" / "files", tmp_path / "node0" / "files"
    for r in recordings:
        path = media_store / r.path
        assert hashlib.sha256(path.read_bytes()).hexdigest() == r.sha256
        assert not (other_store / r.path).exists()
    assert not list((other_store / "recordings").glob(f"{call_id}*"))

    # Both monitors were logged by the media node, naming the node that relayed them.
    joins = [e for e in events if e.kind == "monitor.joined"]
    leaves = [e for e in events if e.kind == "monitor.left"]
    assert [(e.data["node"], e.data["via"]) for e in joins] == [("node-1", "node-0")] * 2
    assert sorted(e.data["reason"] for e in leaves) == ["disconnected", "left"]
    assert events.index(joins[0]) < events.index(leaves[0])


async def test_a_media_node_killed_mid_offer_gives_media_unavailable_promptly(
        tmp_path: Path, postgres_url: str, redis_url: str) -> None:
    seeded = seed_cluster_world(tmp_path, postgres_url)
    with cluster(tmp_path, postgres_url, redis_url, size=2, **MEDIA_ENV) as c:
        node_a, node_b = c[0], c[1]
        clerk = await ProtocolClient.connect(node_b.url, "seat", cookie=login_cookie(node_b.url, "c1", PASSWORD))
        booth = await ProtocolClient.connect(node_a.url, "booth", token=seeded["tokens"]["b1"])
        async with clients(clerk, booth):
            await clerk.request("presence.set", status="available")
            call_id = (await booth.request("call.request", item_code=seeded["item_by_skill"]["social_insurance"]))[
                "call_id"]
            await clerk.wait_for("offer", lambda m: m["call_id"] == call_id)
            await clerk.request("offer.accept", call_id=call_id)
            assert (await booth.wait_for("call.connected"))["media_node"] == "node-1"
            # The hub's own refusal of a bad offer comes back through node-0 with its code.
            assert (await code_of(booth, "rtc.offer", call_id=call_id, sdp=DUMMY_SDP))[0] == "no_media"

            assert node_b.proc is not None
            node_b.proc.send_signal(signal.SIGSTOP)  # frozen: it can no longer answer ...
            offering = asyncio.create_task(code_of(booth, "rtc.offer", call_id=call_id, sdp=DUMMY_SDP))
            await asyncio.to_thread(node_b.kill)  # ... and dies with the offer in flight
            code, reply, took = await offering
            assert (code, reply.get("node")) == ("media_unavailable", "node-1")
            assert took < 10.0, took  # the silence limit (4 s) plus slack for a loaded machine
            # node-0 is fine: the next request is answered the same way, not stuck behind the first.
            assert (await code_of(booth, "rtc.offer", call_id=call_id, sdp=DUMMY_SDP))[0] == "media_unavailable"
