"""Test participants for the media hub: real aiortc peers on loopback.

`ClientPeer` publishes synthetic tracks and receives on recvonly m-lines,
decodes what arrives and reads the burnt-in code of every video frame; it also
taps the encoded frames its receivers reassemble, to prove bit-exact
forwarding.  `wait_until` awaits a condition with a deadline (never a bare
sleep standing in for synchronisation).
"""

from __future__ import annotations

import asyncio
import fractions
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtptransceiver import RTCRtpTransceiver

from media import _aiortc_internals as internals
from media.hub import MediaHub
from media.ice import LOOPBACK_ADDRESSES, advertise_host_addresses, rtc_configuration
from media.synthetic import read_burnt_in


async def wait_until(predicate: Callable[[], bool], timeout: float, what: str = "condition") -> float:
    """Poll ``predicate`` every 10 ms; return the seconds it took, fail after ``timeout``."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)
    return time.monotonic() - start


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def prefer_codec(transceiver: RTCRtpTransceiver, name: str) -> None:
    """Offer only ``name`` (plus RTX) on this transceiver."""
    codecs = RTCRtpSender.getCapabilities(transceiver.kind).codecs
    transceiver.setCodecPreferences(
        [c for c in codecs if c.name.lower() == name.lower()] + [c for c in codecs if c.name == "rtx"]
    )


@dataclass
class Received:
    """What one receive m-line of a client got."""

    mid: str
    kind: str
    codes: list[tuple[int, int, float]] = field(default_factory=list)  # (counter, clock ms, arrival)
    unreadable: int = 0
    frames: int = 0
    sizes: set[tuple[int, int]] = field(default_factory=set)
    encoded: list[str] = field(default_factory=list)  # sha1 of every reassembled encoded frame
    first_frame_at: float | None = None

    @property
    def counters(self) -> list[int]:
        return [c for c, _ms, _t in self.codes]


class ClientPeer:
    """A booth, clerk or monitor as the hub sees it: one aiortc peer connection."""

    def __init__(
        self,
        name: str,
        publish: Sequence[MediaStreamTrack] = (),
        receive: Sequence[str] = (),
        video_codec: str | None = None,
    ) -> None:
        self.name = name
        self.pc = RTCPeerConnection(rtc_configuration())
        self.published: list[MediaStreamTrack] = list(publish)
        self.senders: list[RTCRtpSender] = []
        self.received: dict[str, Received] = {}
        self._recv_transceivers: list[RTCRtpTransceiver] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._pending: list[Received] = []
        for track in publish:
            transceiver = self.pc.addTransceiver(track, direction="sendonly")
            if video_codec and track.kind == "video":
                prefer_codec(transceiver, video_codec)
            self.senders.append(transceiver.sender)
        for kind in receive:
            transceiver = self.pc.addTransceiver(kind, direction="recvonly")
            if video_codec and kind == "video":
                prefer_codec(transceiver, video_codec)
            self._recv_transceivers.append(transceiver)
            # tap before the receiver starts; the mid is known after setLocalDescription
            received = Received(mid="", kind=kind)
            self._pending.append(received)
            internals.tap_decoder_queue(transceiver.receiver, self._tap(received))

    async def connect(self, hub: MediaHub, room: str, role: str) -> None:
        offer = await self.pc.createOffer()
        advertise_host_addresses(self.pc, LOOPBACK_ADDRESSES)
        await self.pc.setLocalDescription(offer)
        for transceiver, received in zip(self._recv_transceivers, self._pending):
            received.mid = str(transceiver.mid)
            self.received[received.mid] = received
        answer = await hub.handle_offer(room, self.name, role, self.pc.localDescription.sdp)
        await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        for transceiver in self._recv_transceivers:
            received = self.received[str(transceiver.mid)]
            self._tasks.append(asyncio.ensure_future(self._consume(transceiver.receiver.track, received)))

    @staticmethod
    def _tap(received: Received) -> Callable[[RTCRtpCodecParameters, bytes, int], None]:
        def on_frame(codec: RTCRtpCodecParameters, data: bytes, timestamp: int) -> None:
            received.encoded.append(sha1(data))

        return on_frame

    @staticmethod
    async def _consume(track: MediaStreamTrack, received: Received) -> None:
        try:
            while True:
                frame = await track.recv()
                now = time.time()
                if received.first_frame_at is None:
                    received.first_frame_at = now
                received.frames += 1
                if isinstance(frame, av.VideoFrame):
                    received.sizes.add((frame.width, frame.height))
                    try:
                        counter, clock_ms = read_burnt_in(frame)
                    except ValueError:
                        received.unreadable += 1
                        continue
                    received.codes.append((counter, clock_ms, now))
        except MediaStreamError:
            return

    def video(self, size: tuple[int, int] | None = None) -> list[Received]:
        """Receive m-lines that got video (of ``size`` if given)."""
        return [
            r for r in self.received.values()
            if r.kind == "video" and r.frames and (size is None or size in r.sizes)
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.pc.close()


def encode_video(
    codec: str = "VP8",
    count: int = 30,
    width: int = 640,
    height: int = 480,
    fps: int = 15,
    bitrate: int = 500_000,
) -> list[tuple[bytes, bool]]:
    """Encode ``count`` test-pattern frames (burnt-in code included) the way a
    WebRTC sender would: VP8 frames, or H.264 Annex-B access units with in-band
    SPS/PPS.  Returns (data, keyframe) per frame, first one a keyframe."""
    from media.synthetic import TestPattern, frame_from_luma

    name = {"VP8": "libvpx", "H264": "libx264"}[codec]
    encoder: Any = av.CodecContext.create(name, "w")  # a video encoder context
    encoder.width, encoder.height = width, height
    encoder.pix_fmt = "yuv420p"
    encoder.thread_count = 1  # FFmpeg's "auto" makes libvpx ~20x slower
    encoder.bit_rate = bitrate
    encoder.time_base = fractions.Fraction(1, fps)
    if codec == "VP8":
        encoder.options = {"deadline": "realtime", "cpu-used": "-6", "lag-in-frames": "0"}
    else:
        encoder.options = {"tune": "zerolatency", "preset": "ultrafast"}
        encoder.profile = "Baseline"
    pattern = TestPattern(width, height)
    out: list[tuple[bytes, bool]] = []
    for index in range(count):
        frame = frame_from_luma(pattern.render(index, 1_700_000_000_000 + index))
        frame.pts = index
        frame.time_base = fractions.Fraction(1, fps)
        for packet in encoder.encode(frame):
            out.append((bytes(packet), bool(packet.is_keyframe)))
    for packet in encoder.encode(None):
        out.append((bytes(packet), bool(packet.is_keyframe)))
    return out


def encode_opus(count: int = 50) -> list[bytes]:
    """``count`` 20 ms Opus packets of a 440 Hz tone (48 kHz stereo)."""
    import array
    import math

    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate = 48000
    encoder.layout = "stereo"
    encoder.format = "s16"
    encoder.time_base = fractions.Fraction(1, 48000)
    tone = array.array("h", (int(6000 * math.sin(2 * math.pi * 440 * (i // 2) / 48000)) for i in range(2 * 48000)))
    out: list[bytes] = []
    for index in range(count):
        frame = av.AudioFrame(format="s16", layout="stereo", samples=960)
        start = 2 * ((index * 960) % 48000)
        frame.planes[0].update(tone[start : start + 2 * 960].tobytes())
        frame.sample_rate = 48000
        frame.pts = index * 960
        frame.time_base = fractions.Fraction(1, 48000)
        out.extend(bytes(p) for p in encoder.encode(frame))
    return out


def record_until_killed(directory: str) -> None:
    """Subprocess body for the crash test: record a 15 fps camera and a tone in
    real time with `TrackRecorder`, printing the media time written after each
    video frame, until SIGKILL arrives.  Never closes anything on purpose."""
    import sys

    from media.passthrough import EncodedFrame
    from media.recorder import TrackRecorder

    video = encode_video("VP8", count=15 * 8, bitrate=400_000)
    audio = encode_opus(50)
    start = time.time()
    camera = TrackRecorder(Path(directory) / "booth-video0", kind="video", codec="VP8", session_start=start)
    tone = TrackRecorder(Path(directory) / "booth-audio0", kind="audio", codec="opus", session_start=start)
    audio_index = 0
    for index, (data, key) in enumerate(video):
        due = start + index / 15
        while audio_index * 0.02 <= index / 15:
            when = start + audio_index * 0.02
            tone.on_frame(EncodedFrame("opus", "audio", audio[audio_index % 50], audio_index * 960, 48000, True, when, when))
            audio_index += 1
        time.sleep(max(0.0, due - time.time()))
        now = time.time()
        camera.on_frame(EncodedFrame("VP8", "video", data, index * 6000, 90000, key, now, now))
        print(f"{now - start:.3f}", flush=True)
    sys.exit("ran out of frames before being killed")


def silence_own_remb(receiver: Any) -> None:
    """Stop an aiortc receiver from sending its own REMB estimates (a test sends its own)."""
    send = getattr(receiver, internals.RECEIVER_SEND_RTCP)

    async def send_rtcp(packet: Any) -> None:
        if not internals.is_remb(packet):
            await send(packet)

    setattr(receiver, internals.RECEIVER_SEND_RTCP, send_rtcp)
    setattr(receiver, "_remb_send_unfiltered", send)


async def send_remb(receiver: Any, bitrate: int) -> None:
    """Send a REMB of ``bitrate`` from ``receiver`` about the media it receives."""
    from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, pack_remb_fci

    send = getattr(receiver, "_remb_send_unfiltered", None) or getattr(receiver, internals.RECEIVER_SEND_RTCP)
    ssrcs = internals.media_ssrcs(receiver)
    rtcp_ssrc = getattr(receiver, internals.RECEIVER_RTCP_SSRC)
    assert ssrcs and rtcp_ssrc is not None, "the receiver has not heard its sender yet"
    await send(RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=pack_remb_fci(bitrate, ssrcs)))
