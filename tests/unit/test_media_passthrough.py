"""Keyframe detection, the subscriber keyframe gate, bounded queues and fan-out.

Frames come from real encoders (libvpx, libx264) and enter a real aiortc
receiver's decoder queue exactly as `RTCRtpReceiver._handle_rtp_packet` puts
them, so the source's hook is exercised as in production.
"""

from __future__ import annotations

import fractions

import av
import pytest
from aiortc import RTCPeerConnection
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from media import _aiortc_internals as internals
from media.ice import rtc_configuration
from media.passthrough import (
    EncodedFrame,
    PassthroughSource,
    PassthroughTrack,
    h264_nal_types,
    is_keyframe,
    vp8_frame_size,
)
from tests.media_helpers import encode_opus, encode_video

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=97)
OPUS = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=96)


@pytest.fixture(scope="module")
def vp8_frames() -> list[tuple[bytes, bool]]:
    return encode_video("VP8", count=12)


@pytest.fixture
async def pc():
    peer = RTCPeerConnection(rtc_configuration())
    yield peer
    await peer.close()


def frame(data: bytes, key: bool, ts: int, kind: str = "video") -> EncodedFrame:
    clock = 90000 if kind == "video" else 48000
    return EncodedFrame("VP8" if kind == "video" else "opus", kind, data, ts, clock, key, 0.0)


def feed(source: PassthroughSource, codec: RTCRtpCodecParameters, data: bytes, ts: int) -> None:
    """Deliver a frame the way aiortc's receiver does: put it on its decoder queue."""
    getattr(source.receiver, internals.RECEIVER_DECODER_QUEUE).put((codec, JitterFrame(data, ts)))


# -- pure helpers ----------------------------------------------------------------------


def test_vp8_keyframes_detected_from_real_encoder_output(vp8_frames: list[tuple[bytes, bool]]) -> None:
    assert [is_keyframe("VP8", data) for data, _key in vp8_frames] == [key for _data, key in vp8_frames]
    assert vp8_frames[0][1] and not any(key for _data, key in vp8_frames[1:])


def test_h264_keyframes_detected_from_real_encoder_output() -> None:
    frames = encode_video("H264", count=8)
    assert [is_keyframe("H264", data) for data, _key in frames] == [key for _data, key in frames]
    assert {7, 8, 5} <= set(h264_nal_types(frames[0][0]))  # SPS, PPS, IDR
    assert 5 not in h264_nal_types(frames[1][0])


def test_keyframe_edge_cases() -> None:
    assert not is_keyframe("VP8", b"")
    assert is_keyframe("opus", b"\xfc\x00")  # audio frames are independent
    assert is_keyframe("vp8", b"\x10")  # codec names are case-insensitive
    assert not is_keyframe("H264", b"\x00\x00\x01")  # start code with no NAL header


def test_vp8_frame_size(vp8_frames: list[tuple[bytes, bool]]) -> None:
    assert vp8_frame_size(vp8_frames[0][0]) == (640, 480)
    assert vp8_frame_size(vp8_frames[1][0]) is None
    small = encode_video("VP8", count=1, width=320, height=176)
    assert vp8_frame_size(small[0][0]) == (320, 176)


def test_encoded_frame_validates_itself() -> None:
    with pytest.raises(ValueError, match="kind"):
        EncodedFrame("VP8", "data", b"x", 0, 90000, True, 0.0)
    with pytest.raises(ValueError, match="clock_rate"):
        EncodedFrame("VP8", "video", b"x", 0, 0, True, 0.0)
    assert frame(b"x", True, 0).time_base == fractions.Fraction(1, 90000)


# -- the subscriber track --------------------------------------------------------------


async def test_gate_drops_delta_frames_until_a_keyframe(vp8_frames: list[tuple[bytes, bool]]) -> None:
    track = PassthroughTrack("video")
    track.on_frame(frame(vp8_frames[1][0], False, 6000))
    assert track.stats.dropped == 1
    track.on_frame(frame(vp8_frames[0][0], True, 12000))
    track.on_frame(frame(vp8_frames[1][0], False, 18000))
    first, second = await track.recv(), await track.recv()
    assert isinstance(first, av.Packet) and bytes(first) == vp8_frames[0][0]
    assert first.is_keyframe and not second.is_keyframe
    assert (first.pts, second.pts) == (12000, 18000)
    assert first.time_base == fractions.Fraction(1, 90000)
    assert track.stats.forwarded == 2
    track.stop()


async def test_video_overflow_drops_backlog_and_resyncs_on_keyframe(vp8_frames: list[tuple[bytes, bool]]) -> None:
    track = PassthroughTrack("video", max_queue=3)
    key, delta = vp8_frames[0][0], vp8_frames[1][0]
    track.on_frame(frame(key, True, 0))
    for i in range(1, 6):  # nobody reads: the 4th frame overflows
        track.on_frame(frame(delta, False, i * 6000))
    assert track.stats.overflows == 1
    assert track.stats.dropped == 3 + 3  # the backlog, then the 3 deltas behind the closed gate
    track.on_frame(frame(key, True, 36000))
    packet = await track.recv()
    assert packet.is_keyframe and packet.pts == 36000
    track.stop()


async def test_audio_overflow_drops_only_the_oldest() -> None:
    track = PassthroughTrack("audio", max_queue=3)
    for i in range(5):
        track.on_frame(frame(bytes([i]), True, i * 960, kind="audio"))
    assert track.stats.dropped == 2 and track.stats.overflows == 2
    assert [bytes(await track.recv()) for _ in range(3)] == [b"\x02", b"\x03", b"\x04"]
    track.stop()


async def test_stopped_track_raises() -> None:
    track = PassthroughTrack("audio")
    track.stop()
    with pytest.raises(MediaStreamError):
        await track.recv()


# -- the source ------------------------------------------------------------------------


async def test_source_fans_out_and_a_stalled_subscriber_does_not_stall_others(
    pc: RTCPeerConnection, vp8_frames: list[tuple[bytes, bool]]
) -> None:
    source = PassthroughSource(pc.addTransceiver("video").receiver, "video")
    stalled = source.subscribe(max_queue=2)
    reader = source.subscribe(max_queue=4)
    got: list[bytes] = []
    for i, (data, _key) in enumerate(vp8_frames):
        feed(source, VP8, data, i * 6000)
        got.append(bytes(await reader.recv()))  # reader keeps up; `stalled` never reads
    assert got == [data for data, _key in vp8_frames]
    assert stalled.stats.overflows >= 1 and stalled.stats.forwarded == 0
    assert source.stats.frames == len(vp8_frames) and source.stats.keyframes == 1
    assert source.codec == "VP8"
    source.close()


async def test_a_failing_sink_is_removed_and_others_continue(pc: RTCPeerConnection, vp8_frames: list[tuple[bytes, bool]]) -> None:
    class Broken:
        def on_frame(self, frame: EncodedFrame) -> None:
            raise RuntimeError("disk full")

        def on_source_ended(self, source: PassthroughSource) -> None:
            pass

    source = PassthroughSource(pc.addTransceiver("video").receiver, "video")
    broken = Broken()
    source.add_sink(broken)
    track = source.subscribe()
    feed(source, VP8, vp8_frames[0][0], 0)
    assert broken not in source.sinks
    assert bytes(await track.recv()) == vp8_frames[0][0]
    source.close()


async def test_reattached_track_rebases_timestamps_and_closes_gate(
    pc: RTCPeerConnection, vp8_frames: list[tuple[bytes, bool]]
) -> None:
    first = PassthroughSource(pc.addTransceiver("video").receiver, "video")
    second = PassthroughSource(pc.addTransceiver("video").receiver, "video")
    track = PassthroughTrack("video")
    track.attach(first)
    for i in range(3):
        feed(first, VP8, vp8_frames[i][0], 900_000 + i * 6000)
    pts = [(await track.recv()).pts for _ in range(3)]
    track.attach(second)  # e.g. the publisher reconnected
    feed(second, VP8, vp8_frames[1][0], 0)  # delta: gate closed again
    feed(second, VP8, vp8_frames[0][0], 6000)
    packet = await track.recv()
    assert packet.is_keyframe
    assert pts == [900_000, 906_000, 912_000]
    assert packet.pts == 912_000 + 3000  # continues, one 30 fps step later
    assert first.sinks == [] and second.sinks == [track]
    first.close()
    second.close()


async def test_audio_source_forwards_opus_and_ends_subscribers(pc: RTCPeerConnection) -> None:
    source = PassthroughSource(pc.addTransceiver("audio").receiver, "audio")
    track = source.subscribe()
    packets = encode_opus(3)
    for i, data in enumerate(packets):
        feed(source, OPUS, data, i * 960)
    source.request_keyframe()  # meaningless for audio: no PLI
    assert source.stats.keyframe_requests == 0
    out = [await track.recv() for _ in packets]
    assert [bytes(p) for p in out] == packets
    assert [p.pts for p in out] == [0, 960, 1920]
    assert out[0].time_base == fractions.Fraction(1, 48000)
    getattr(source.receiver, internals.RECEIVER_DECODER_QUEUE).put(None)  # receiver stopped
    assert source.ended
    with pytest.raises(MediaStreamError):
        await track.recv()


async def test_keyframe_requests_wait_for_the_publisher_ssrc(pc: RTCPeerConnection) -> None:
    # No packet has arrived, so no SSRC is known: nothing is sent, a retry is armed.
    source = PassthroughSource(pc.addTransceiver("video").receiver, "video")
    source.request_keyframe()
    source.request_keyframe()
    assert source.stats.keyframe_requests == 2
    assert source.stats.plis_sent == 0
    source.close()
