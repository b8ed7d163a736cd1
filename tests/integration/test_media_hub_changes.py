"""The hub when a call changes: codec mismatch, a participant leaving and coming
back, offers the hub must refuse.  Real aiortc peers on loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import pytest

from media.errors import OfferRejected
from media.hub import MediaHub, Role
from media.synthetic import CameraTrack, ToneTrack
from tests.media_helpers import ClientPeer, wait_until


@pytest.fixture
async def hub():
    media_hub = MediaHub(host_addresses=["127.0.0.1"])
    yield media_hub
    await media_hub.close()


async def test_codec_mismatch_falls_back_to_transcoding(hub: MediaHub, tmp_path: Path) -> None:
    """An H.264-only booth and a VP8-only clerk: decoded and re-encoded, and reported."""
    events: list[tuple[Any, ...]] = []
    hub.on_fallback_transcode = lambda *a: events.append(a)
    hub.open_room("r", recording_dir=tmp_path)
    booth = ClientPeer("booth", publish=[CameraTrack()], video_codec="H264")
    clerk = ClientPeer("clerk", receive=["video"], video_codec="VP8")
    try:
        await booth.connect(hub, "r", "booth")
        await clerk.connect(hub, "r", "clerk")
        (received,) = clerk.received.values()
        await wait_until(lambda: len(received.codes) >= 10, 15, "transcoded frames")
        (slot,) = hub.slots("r", "clerk")
        assert (slot.codec, slot.transcoding) == ("VP8", True)
        assert events == [("r", booth.published[0].id, "H264 -> VP8 for clerk")]
        counters = received.counters
        assert all(b > a for a, b in zip(counters, counters[1:]))
        files = await hub.close_room("r")
    finally:
        await booth.close()
        await clerk.close()
    (recorded,) = files  # the recording is still a stream copy of the H.264
    assert recorded.codec == "H264" and recorded.path.suffix == ".mkv"
    with av.open(str(recorded.path)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert len(list(container.decode(video=0))) == recorded.frames


async def test_publisher_leaves_and_rejoins_into_the_same_slot(hub: MediaHub) -> None:
    left: list[tuple[Any, ...]] = []
    hub.on_participant_left = lambda *a: left.append(a)
    slot_changes: list[tuple[str, list[str | None]]] = []
    hub.on_slots_changed = lambda room, who, slots: slot_changes.append((who, [s.publisher for s in slots]))
    clerk = ClientPeer("clerk", receive=["video", "audio"])
    await clerk.connect(hub, "r", "clerk")  # the subscriber is there first
    first = ClientPeer("booth", publish=[CameraTrack(), ToneTrack()])
    second = ClientPeer("booth", publish=[CameraTrack(), ToneTrack()])
    try:
        await first.connect(hub, "r", "booth")
        video = next(r for r in clerk.received.values() if r.kind == "video")
        await wait_until(lambda: len(video.codes) >= 5, 10, "first booth's frames")
        await hub.remove_participant("r", "booth")
        assert left == [("r", "booth", "left")]
        assert all(slot.publisher is None for slot in hub.slots("r", "clerk"))
        assert slot_changes[-1] == ("clerk", [None, None])  # the clerk is told its slots emptied
        seen = len(video.codes)

        await second.connect(hub, "r", "booth")  # e.g. the kiosk reconnected
        await wait_until(lambda: len(video.codes) >= seen + 5, 10, "second booth's frames")
        assert [slot.track_id for slot in hub.slots("r", "clerk")] == [t.id for t in second.published]
        # the new camera counts from 0 again, on the same m-line of the clerk
        counters = video.counters
        restart = next(i for i in range(1, len(counters)) if counters[i] < counters[i - 1])
        assert restart >= seen and counters[restart] <= 2
        assert all(b > a for a, b in zip(counters[restart:], counters[restart + 1 :]))
        audio = next(r for r in clerk.received.values() if r.kind == "audio")
        assert audio.frames > 0
    finally:
        for peer in (clerk, first, second):
            await peer.close()


async def test_monitor_offering_to_send_publishes_nothing(hub: MediaHub) -> None:
    published: list[tuple[Any, ...]] = []
    hub.on_track_published = lambda *a: published.append(a)
    monitor = ClientPeer("sup", publish=[CameraTrack()])  # a misbehaving client
    try:
        await monitor.connect(hub, "r", Role.MONITOR)
        assert published == [] and hub.publications("r") == []
        assert "a=inactive" in monitor.pc.remoteDescription.sdp
    finally:
        await monitor.close()


async def test_bad_offers_are_rejected_with_a_code(hub: MediaHub) -> None:
    with pytest.raises(OfferRejected) as caught:
        await hub.handle_offer("r", "booth", "booth", "v=0\r\nthis is not sdp")
    assert caught.value.code in ("bad_sdp", "no_media")
    data_only = ClientPeer("booth")
    data_only.pc.createDataChannel("chat")
    try:
        offer = await data_only.pc.createOffer()
        with pytest.raises(OfferRejected) as caught:
            await hub.handle_offer("r", "booth", "booth", offer.sdp)
        assert caught.value.code == "no_media"
    finally:
        await data_only.close()
    with pytest.raises(ValueError):
        await hub.handle_offer("r", "x", "janitor", "v=0")



BROKEN_OFFERS = [
    "",
    "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF x\r\n",  # payload types aiortc's parser asserts on
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n",
    "v=0\r\na=fingerprint:sha-256\r\n",  # a fingerprint with no value
]


@pytest.mark.parametrize("broken", BROKEN_OFFERS)
async def test_a_refused_re_offer_keeps_the_working_media(hub: MediaHub, broken: str) -> None:
    """Parse before tearing down: a broken re-offer is `bad_sdp` and the booth's camera still reaches the clerk."""
    clerk = ClientPeer("clerk", receive=["video"])
    booth = ClientPeer("booth", publish=[CameraTrack()])
    try:
        await clerk.connect(hub, "r", "clerk")
        await booth.connect(hub, "r", "booth")
        (video,) = clerk.received.values()
        await wait_until(lambda: len(video.codes) >= 5, 10, "booth frames")
        with pytest.raises(OfferRejected) as caught:
            await hub.handle_offer("r", "booth", "booth", broken)
        assert caught.value.code in ("bad_sdp", "no_media")
        seen = len(video.codes)
        await wait_until(lambda: len(video.codes) >= seen + 10, 10, "frames after the refused offer")
        assert [p.participant_id for p in hub.publications("r")] == ["booth"]
    finally:
        await booth.close()
        await clerk.close()
