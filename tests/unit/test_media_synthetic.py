"""The burnt-in frame code survives a real VP8 encode/decode; the synthetic tracks behave."""

from __future__ import annotations

import fractions
import time

import av
import pytest

from media.synthetic import (
    CODE_BITS,
    CameraTrack,
    DocumentCameraTrack,
    PreEncodedVideoTrack,
    ToneTrack,
    code_height,
    decode_code_bits,
    encode_code_bits,
    read_burnt_in,
)


def vp8_round_trip(frames: list[av.VideoFrame], bitrate: int) -> list[av.VideoFrame]:
    """Encode with libvpx at a WebRTC-like real-time setting and decode again."""
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height = frames[0].width, frames[0].height
    encoder.pix_fmt = "yuv420p"
    encoder.thread_count = 1  # FFmpeg's "auto" makes libvpx ~20x slower
    encoder.bit_rate = bitrate
    encoder.time_base = fractions.Fraction(1, 90000)
    encoder.options = {"deadline": "realtime", "cpu-used": "-6", "lag-in-frames": "0"}
    decoder = av.CodecContext.create("libvpx", "r")
    out: list[av.VideoFrame] = []
    for frame in frames:
        for packet in encoder.encode(frame):
            out.extend(decoder.decode(packet))
    return out


def test_code_bits_round_trip_and_checksum() -> None:
    bits = encode_code_bits(0xDEADBEEF, 1_700_000_123_456)
    assert len(bits) == CODE_BITS
    assert decode_code_bits(bits) == (0xDEADBEEF, 1_700_000_123_456)
    for flip in (0, 40, CODE_BITS - 1):
        damaged = bits.copy()
        damaged[flip] ^= 1
        with pytest.raises(ValueError, match="checksum"):
            decode_code_bits(damaged)


async def test_camera_code_survives_vp8_at_640x480() -> None:
    track = CameraTrack(fps=1000)  # pacing is not under test here
    before = int(time.time() * 1000)
    source = [await track.recv() for _ in range(30)]
    decoded = vp8_round_trip(source, bitrate=250_000)  # below aiortc's 500 kbit/s start rate
    codes = [read_burnt_in(frame) for frame in decoded]
    assert [counter for counter, _ms in codes] == list(range(30))
    assert all(before <= ms <= int(time.time() * 1000) for _counter, ms in codes)
    assert [f.pts for f in source[:3]] == [0, 90, 180]  # 90 kHz ticks at the nominal rate
    track.stop()


async def test_document_camera_code_survives_vp8_at_1080p() -> None:
    track = DocumentCameraTrack(fps=1000)
    source = [await track.recv() for _ in range(4)]
    assert (source[0].width, source[0].height) == (1920, 1080)
    decoded = vp8_round_trip(source, bitrate=800_000)
    assert [read_burnt_in(frame)[0] for frame in decoded] == [0, 1, 2, 3]
    assert code_height(1920) < 1080 // 5  # the form stays visible below the code
    track.stop()


async def test_document_camera_resolution_is_configurable() -> None:
    track = DocumentCameraTrack(1280, 720, fps=1000)
    frame = await track.recv()
    assert (frame.width, frame.height) == (1280, 720)
    assert read_burnt_in(frame)[0] == 0
    track.stop()


async def test_tone_track_frames() -> None:
    track = ToneTrack(frequency=1000)
    frames = [await track.recv() for _ in range(3)]
    assert [f.pts for f in frames] == [0, 960, 1920]
    assert frames[0].sample_rate == 48000 and frames[0].samples == 960
    samples = memoryview(bytes(frames[0].planes[0])).cast("h")
    assert max(samples) > 5000 and min(samples) < -5000
    track.stop()


async def test_pre_encoded_track_emits_keyframes_only_at_start_and_on_request() -> None:
    track = PreEncodedVideoTrack(CameraTrack(fps=1000))
    packets = [await track.recv() for _ in range(5)]
    track.request_keyframe()
    packets += [await track.recv() for _ in range(3)]
    assert [p.is_keyframe for p in packets] == [True, False, False, False, False, True, False, False]
    assert packets[1].time_base == fractions.Fraction(1, 90000) and packets[1].pts == 90
    assert track.keyframes == 2
    track.stop()
