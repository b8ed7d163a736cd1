"""Encoded-frame forwarding: one publisher's frames to any number of subscribers.

The hub never decodes to forward.  A `PassthroughSource` takes the frames an
aiortc receiver has reassembled (VP8, H.264, Opus ...) and hands each one, as
an `EncodedFrame`, to its sinks.  A sink is anything with `on_frame` /
`on_source_ended`: a `PassthroughTrack` feeding an `RTCRtpSender` (aiortc
packs an `av.Packet` from a track without encoding), or a recorder.

Video decoders can only start at a keyframe, and a publisher's encoder emits
one only at start or when asked.  So a new video subscriber waits behind a
keyframe gate and the source asks the publisher for a keyframe (RTCP PLI) on
subscribe and whenever a subscriber's own receiver reports picture loss --
throttled to one PLI per `pli_min_interval` per source, with a trailing PLI so
a request inside the window is never lost.

Latency: the source makes its receiver release a frame as soon as its last
packet (RTP marker) is in, not when the next frame starts as aiortc does, so
forwarding adds no frame interval (`internals.release_complete_frames`).

Bandwidth: each subscriber's receiver-side estimate (REMB, arriving at the
slot's sender) is reported to the source, which caps the REMB its receiver
sends the publisher at the lowest fresh estimate and pushes a REMB at once
when that drops -- so a sending browser lowers its bit-rate for the slowest
subscriber (`internals.RembRelay`).  Estimates older than `REMB_TTL` are
forgotten (a subscriber that stopped reporting no longer holds the cap).

One slow or dead subscriber never stalls the others: pushing is synchronous
and non-blocking, each track has a bounded queue, and on overflow a video
track drops its backlog (a delta chain with a hole is undecodable anyway),
counts the loss and waits for the next keyframe, which it requests.
"""

from __future__ import annotations

import asyncio
import collections
import fractions
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import av
from aiortc import RTCRtpReceiver, RTCRtpSender
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from media import _aiortc_internals as internals

logger = logging.getLogger(__name__)

VIDEO_CLOCK_RATE = 90000
DEFAULT_PLI_MIN_INTERVAL = 0.5
# Frames a subscriber may lag before it resynchronises: ~2 s of 15 fps video,
# ~1 s of 20 ms audio.  Beyond that, showing old media is worse than a skip.
DEFAULT_VIDEO_QUEUE = 30
DEFAULT_AUDIO_QUEUE = 50
REMB_TTL = 5.0  # seconds a subscriber's bandwidth estimate stays valid
REMB_RESEND_INTERVAL = 1.0  # an unchanged or rising cap is re-sent at most this often
_SSRC_RETRY_DELAY = 0.1
_SSRC_RETRIES = 50


def h264_nal_types(data: bytes) -> list[int]:
    """NAL unit types of an Annex-B access unit (aiortc depayloads H.264 to Annex-B)."""
    types = []
    i = data.find(b"\x00\x00\x01")
    while 0 <= i and i + 3 < len(data):
        types.append(data[i + 3] & 0x1F)
        i = data.find(b"\x00\x00\x01", i + 3)
    return types


def is_keyframe(codec: str, data: bytes) -> bool:
    """Whether an encoded frame can start decoding on its own.

    VP8: bit 0 of the frame tag is the *inverse* key frame flag (RFC 6386
    9.1).  H.264: the access unit holds an IDR slice (NAL type 5).  Audio
    codecs have no inter-frame dependency, so every frame counts as a key.
    """
    if not data:
        return False
    name = codec.upper()
    if name == "VP8":
        return (data[0] & 0x01) == 0
    if name == "H264":
        return 5 in h264_nal_types(data)
    return True


def vp8_frame_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a VP8 key frame header (RFC 6386 9.1), else None."""
    if len(data) >= 10 and (data[0] & 0x01) == 0 and data[3:6] == b"\x9d\x01\x2a":
        width = int.from_bytes(data[6:8], "little") & 0x3FFF
        height = int.from_bytes(data[8:10], "little") & 0x3FFF
        return width, height
    return None


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """One reassembled encoded frame as the publisher sent it.

    `timestamp` counts `clock_rate` ticks from the publisher's first frame;
    `received_at` is the hub's wall clock (seconds since the epoch) when the
    receiver handed the frame over.  With the hub's complete-frame release
    that is when its last packet came in; with aiortc's stock jitter buffer a
    frame interval or more later (it completes a frame only when a later one
    starts).  `arrived_at` carries the first packet's arrival where the source
    could tell (None for the first few frames with the stock buffer): what a
    recorder needs to line tracks of different frame rates up.
    """

    codec: str
    kind: str
    data: bytes
    timestamp: int
    clock_rate: int
    keyframe: bool
    received_at: float
    arrived_at: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("audio", "video"):
            raise ValueError(f"kind must be audio or video, not {self.kind!r}")
        if self.clock_rate <= 0:
            raise ValueError("clock_rate must be positive")

    @property
    def time_base(self) -> fractions.Fraction:
        return fractions.Fraction(1, self.clock_rate)


class FrameSink(Protocol):
    """What a source pushes to: a forwarding track or a recorder."""

    def on_frame(self, frame: EncodedFrame) -> None: ...

    def on_source_ended(self, source: PassthroughSource) -> None: ...


@dataclass
class SourceStats:
    frames: int = 0
    keyframes: int = 0
    bytes: int = 0
    keyframe_requests: int = 0
    plis_sent: int = 0
    rembs_relayed: int = 0
    # (wall time, event) of recent keyframes and PLIs, for diagnostics and tests
    events: collections.deque[tuple[float, str]] = field(
        default_factory=lambda: collections.deque(maxlen=200)
    )


class PassthroughSource:
    """The encoded frames of one published track, fanned out to sinks.

    Create it before the receiver starts (the hub does so on a transceiver it
    pre-creates before `setRemoteDescription`), because it replaces the
    receiver's decoder queue.
    """

    def __init__(
        self,
        receiver: RTCRtpReceiver,
        kind: str,
        *,
        track_id: str = "",
        codec: str | None = None,
        pli_min_interval: float = DEFAULT_PLI_MIN_INTERVAL,
        clock: Callable[[], float] = time.time,
        release_on_marker: bool = True,
    ) -> None:
        if kind not in ("audio", "video"):
            raise ValueError(f"kind must be audio or video, not {kind!r}")
        if release_on_marker:
            internals.release_complete_frames(receiver)
        self.receiver = receiver
        self.kind = kind
        self.track_id = track_id
        self.codec = codec
        self.ended = False
        self.stats = SourceStats()
        self._clock = clock
        self._sinks: list[FrameSink] = []
        self._pli_min_interval = pli_min_interval
        self._last_pli = float("-inf")
        self._pli_timer: asyncio.TimerHandle | None = None
        self._ssrc_retries = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop = asyncio.get_running_loop()
        # release times of the last `lag` frames: the oldest is when the newest
        # frame's first packet arrived (see EncodedFrame.arrived_at)
        self._releases: collections.deque[float] = collections.deque(
            maxlen=internals.release_lag_frames(receiver)
        )
        internals.hook_decoder_queue(receiver, self._on_encoded, self._on_receiver_end)
        # subscriber bandwidth estimates: id(sink) -> (bitrate, monotonic time)
        self._estimates: dict[int, tuple[int, float]] = {}
        self._last_remb = float("-inf")
        self._remb = internals.RembRelay(receiver, self.bandwidth_cap) if kind == "video" else None

    @property
    def sinks(self) -> list[FrameSink]:
        return list(self._sinks)

    def add_sink(self, sink: FrameSink) -> None:
        """Start pushing frames to ``sink`` and, for video, ask for a keyframe."""
        if sink not in self._sinks:
            self._sinks.append(sink)
        if self.ended:
            sink.on_source_ended(self)
            return
        self.request_keyframe()

    def remove_sink(self, sink: FrameSink) -> None:
        if sink in self._sinks:
            self._sinks.remove(sink)
        self._estimates.pop(id(sink), None)

    # -- bandwidth feedback ----------------------------------------------------------

    def bandwidth_cap(self) -> int | None:
        """The lowest fresh subscriber estimate (bit/s), None when nobody reported one."""
        now = time.monotonic()
        fresh = [b for b, at in self._estimates.values() if now - at <= REMB_TTL]
        return min(fresh) if fresh else None

    def report_bandwidth(self, sink: FrameSink, bitrate: int) -> None:
        """A subscriber's leg can carry ``bitrate`` bit/s: relay the lowest to the publisher."""
        if self._remb is None or self.ended or sink not in self._sinks:
            return
        before = self.bandwidth_cap()
        self._estimates[id(sink)] = (bitrate, time.monotonic())
        cap = self.bandwidth_cap()
        assert cap is not None
        now = time.monotonic()
        dropped = before is None or cap < before or (self._remb.last_sent is not None and cap < self._remb.last_sent)
        if not dropped and now - self._last_remb < REMB_RESEND_INTERVAL:
            return
        ssrcs = internals.media_ssrcs(self.receiver)
        if not ssrcs:
            return
        self._last_remb = now
        self.stats.rembs_relayed += 1
        task = self._loop.create_task(self._remb.send(cap, ssrcs))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def subscribe(self, *, max_queue: int | None = None) -> PassthroughTrack:
        """A new track of this source's frames, to hand to `pc.addTrack`."""
        track = PassthroughTrack(self.kind, max_queue=max_queue, end_with_source=True)
        track.attach(self)
        return track

    # -- upstream keyframe requests ------------------------------------------------

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe (PLI), at most once per interval."""
        if self.kind != "video" or self.ended:
            return
        self.stats.keyframe_requests += 1
        wait = self._last_pli + self._pli_min_interval - time.monotonic()
        if wait <= 0 and self._pli_timer is None:
            self._send_pli()
        elif self._pli_timer is None:
            self._pli_timer = self._loop.call_later(max(wait, 0.0), self._send_pli_later)

    def _send_pli_later(self) -> None:
        self._pli_timer = None
        self._send_pli()

    def _send_pli(self) -> None:
        if self.ended:
            return
        ssrcs = internals.media_ssrcs(self.receiver)
        if not ssrcs:
            # The publisher's SSRC is unknown until its first packet; its first
            # frame is a keyframe anyway, but retry in case packets were lost.
            if self._ssrc_retries < _SSRC_RETRIES:
                self._ssrc_retries += 1
                self._pli_timer = self._loop.call_later(_SSRC_RETRY_DELAY, self._send_pli_later)
            return
        self._ssrc_retries = 0
        self._last_pli = time.monotonic()
        self.stats.events.append((self._clock(), "pli"))
        for ssrc in ssrcs:
            self.stats.plis_sent += 1
            task = self._loop.create_task(internals.send_pli(self.receiver, ssrc))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    # -- fan-out -------------------------------------------------------------------

    def _on_encoded(self, codec: RTCRtpCodecParameters, data: bytes, timestamp: int) -> None:
        self.codec = codec.name
        key = is_keyframe(codec.name, data) if self.kind == "video" else True
        now = self._clock()
        if not self._releases.maxlen:
            arrived_at: float | None = now  # released with its own last packet
        else:
            arrived_at = self._releases[0] if len(self._releases) == self._releases.maxlen else None
        frame = EncodedFrame(
            codec=codec.name,
            kind=self.kind,
            data=data,
            timestamp=timestamp,
            clock_rate=codec.clockRate,
            keyframe=key,
            received_at=now,
            arrived_at=arrived_at,
        )
        if self._releases.maxlen:
            self._releases.append(now)
        self.stats.frames += 1
        self.stats.bytes += len(data)
        if key and self.kind == "video":
            self.stats.keyframes += 1
            self.stats.events.append((frame.received_at, "keyframe"))
        for sink in list(self._sinks):
            try:
                sink.on_frame(frame)
            except Exception:
                # One broken sink must not starve the others; drop it.
                logger.exception("sink %r failed; removing it from %s", sink, self)
                self.remove_sink(sink)

    def _on_receiver_end(self) -> None:
        self.close()

    def close(self) -> None:
        """Stop requesting keyframes and tell every sink the source ended."""
        if self.ended:
            return
        self.ended = True
        if self._pli_timer is not None:
            self._pli_timer.cancel()
            self._pli_timer = None
        for sink in list(self._sinks):
            self._sinks.remove(sink)
            try:
                sink.on_source_ended(self)
            except Exception:
                logger.exception("sink %r failed on source end", sink)

    def __repr__(self) -> str:
        return f"PassthroughSource({self.kind}, {self.codec}, track={self.track_id!r})"


@dataclass
class TrackStats:
    forwarded: int = 0
    dropped: int = 0
    overflows: int = 0
    keyframe_requests: int = 0


FrameConverter = Callable[["av.Packet[Any]"], "list[av.frame.Frame]"]


class PassthroughTrack(MediaStreamTrack):
    """A track that yields a source's encoded frames as `av.Packet` to a sender.

    It can be re-attached to another source (the hub keeps one per subscriber
    slot for the whole call): the keyframe gate closes again and timestamps are
    rebased so the sender's RTP timestamps keep increasing.  With a converter
    set (the transcoding fallback) it yields decoded frames instead, and the
    sender encodes them.
    """

    def __init__(
        self,
        kind: str,
        *,
        max_queue: int | None = None,
        end_with_source: bool = False,
    ) -> None:
        super().__init__()
        if kind not in ("audio", "video"):
            raise ValueError(f"kind must be audio or video, not {kind!r}")
        self.kind = kind
        self.stats = TrackStats()
        self._source: PassthroughSource | None = None
        self._max_queue = max_queue or (
            DEFAULT_VIDEO_QUEUE if kind == "video" else DEFAULT_AUDIO_QUEUE
        )
        self._end_with_source = end_with_source
        self._source_ended = False
        self._queue: collections.deque[av.Packet[Any]] = collections.deque()
        self._ready: collections.deque[av.frame.Frame | av.Packet[Any]] = collections.deque()
        self._wakeup = asyncio.Event()
        self._waiting_key = kind == "video"
        self._offset = 0
        self._last_out: int | None = None
        self._rebase = False
        self._converter: FrameConverter | None = None
        self._encoder_keyframe: Callable[[], None] | None = None
        self._sender_stopped = False

    @property
    def source(self) -> PassthroughSource | None:
        return self._source

    @property
    def transcoding(self) -> bool:
        return self._converter is not None

    def attach(self, source: PassthroughSource, converter: FrameConverter | None = None) -> None:
        """Start forwarding ``source`` (detaching any previous one)."""
        if source.kind != self.kind:
            raise ValueError(f"cannot attach a {source.kind} source to a {self.kind} track")
        self.detach()
        self._source = source
        self._converter = converter
        self._waiting_key = self.kind == "video"
        self._rebase = self._last_out is not None
        source.add_sink(self)

    def detach(self) -> None:
        """Stop forwarding; the sender simply sends nothing until the next attach."""
        if self._source is not None:
            self._source.remove_sink(self)
            self._source = None
        self._queue.clear()
        self._ready.clear()
        self._converter = None

    def bind_sender(self, sender: RTCRtpSender) -> None:
        """Forward the subscriber's PLI/FIR (arriving at ``sender``) to the publisher."""
        self._encoder_keyframe = internals.intercept_keyframe_requests(
            sender, self.request_keyframe
        )
        internals.intercept_remb(sender, self.report_bandwidth)

    def report_bandwidth(self, bitrate: int) -> None:
        """The subscriber estimated its leg at ``bitrate`` bit/s (a REMB at our sender)."""
        if self._converter is None and self._source is not None:
            self._source.report_bandwidth(self, bitrate)

    def request_keyframe(self) -> None:
        """The subscriber lost a picture: get a keyframe from the right place."""
        self.stats.keyframe_requests += 1
        if self._converter is not None and self._encoder_keyframe is not None:
            self._encoder_keyframe()  # transcoding: our own encoder makes one
        elif self._source is not None:
            self._source.request_keyframe()

    # -- FrameSink -------------------------------------------------------------------

    def on_frame(self, frame: EncodedFrame) -> None:
        if self.readyState != "live":
            return
        if self._waiting_key and not frame.keyframe:
            self.stats.dropped += 1
            return
        if len(self._queue) >= self._max_queue:
            self._overflow()
            if self._waiting_key and not frame.keyframe:
                self.stats.dropped += 1
                return
        self._waiting_key = False
        self._queue.append(self._packet(frame))
        self._wakeup.set()

    def on_source_ended(self, source: PassthroughSource) -> None:
        if source is self._source:
            self._source = None
            if self._end_with_source:
                self._source_ended = True  # recv ends the track once the queue drains
                self._wakeup.set()

    def _overflow(self) -> None:
        self.stats.overflows += 1
        if self.kind == "video":
            # Dropping the oldest frame breaks every later delta frame: drop the
            # backlog and resynchronise on a fresh keyframe.
            self.stats.dropped += len(self._queue)
            self._queue.clear()
            self._waiting_key = True
            if self._source is not None:
                self._source.request_keyframe()
        else:
            self._queue.popleft()
            self.stats.dropped += 1

    def _packet(self, frame: EncodedFrame) -> av.Packet[Any]:
        if self._rebase:
            step = frame.clock_rate // 30 if self.kind == "video" else frame.clock_rate // 50
            assert self._last_out is not None
            self._offset = self._last_out + step - frame.timestamp
            self._rebase = False
        pts = frame.timestamp + self._offset
        self._last_out = pts
        packet = av.Packet(frame.data)
        packet.pts = pts
        packet.dts = pts
        packet.time_base = frame.time_base
        packet.is_keyframe = frame.keyframe
        return packet

    # -- MediaStreamTrack ------------------------------------------------------------

    async def recv(self) -> av.Packet[Any] | av.frame.Frame:
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            if self._ready:
                item = self._ready.popleft()
                self.stats.forwarded += 1
                return item
            if not self._queue:
                if self._source_ended:
                    self.stop()
                    raise MediaStreamError
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            packet = self._queue.popleft()
            if self._converter is None:
                self.stats.forwarded += 1
                return packet
            self._ready.extend(await self._convert(packet))

    async def _convert(self, packet: av.Packet[Any]) -> list[av.frame.Frame]:
        converter = self._converter
        if converter is None:
            return []
        frames = await asyncio.get_running_loop().run_in_executor(None, converter, packet)
        return frames

    def stop(self) -> None:
        self.detach()
        super().stop()
        self._wakeup.set()
