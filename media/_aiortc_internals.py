"""Every aiortc / aioice private internal the media hub relies on, in one place.

aiortc has no public API for encoded-frame access, upstream keyframe requests
or choosing the host addresses ICE gathers on.  Encoded passthrough needs all
three, so this module reaches into private names -- and nothing else in
`media/` does.  Each internal is wrapped in one small function that checks the
name exists and raises `PassthroughUnsupported` (naming the attribute and the
installed aiortc version) when an upgrade moved it.  `tests/unit/
test_media_internals.py` pins every name listed here so such an upgrade fails
the test run loudly rather than the first live call.

Internals used (aiortc 1.16.0, aioice 0.13.0):

- ``RTCRtpReceiver._RTCRtpReceiver__decoder_queue``: the ``queue.Queue`` between
  ``_handle_rtp_packet`` (event-loop thread, ``put((codec, JitterFrame))``) and
  the ``decoder_worker`` thread (``get()``, exits on ``None``).  Replaced before
  ``receive()`` starts the thread, so frames come to us instead of the decoder.
- ``RTCRtpReceiver._RTCRtpReceiver__started``: to refuse hooking too late.
- ``RTCRtpReceiver._RTCRtpReceiver__rtx_ssrc``: RTX SSRC -> media SSRC, so a PLI
  names the media SSRC, never the retransmission one.
- ``RTCRtpReceiver._send_rtcp_pli(media_ssrc)``: sends an RTCP PLI upstream.
- ``JitterFrame.data`` / ``.timestamp``: the reassembled frame, timestamp already
  mapped to start at 0 by the receiver's ``TimestampMapper``.
- ``RTCRtpReceiver._RTCRtpReceiver__jitter_buffer._prefetch``: the jitter buffer
  releases frame k only when the first packet of frame k+max(1, prefetch)
  arrives (video: prefetch 0, the next frame; audio: 4 frames later), so the
  release time of frame k-lag is when frame k's first packet arrived.
- ``RTCRtpReceiver._RTCRtpReceiver__jitter_buffer`` is *replaced* (before
  the first packet) by a `CompleteFrameJitterBuffer`: a subclass of aiortc's
  ``JitterBuffer`` that also hands a frame over as soon as it is complete --
  contiguous packets from the buffer's origin through the one with the RTP
  marker bit (video), or the origin packet itself (audio: one packet, one
  frame).  It relies on ``JitterBuffer._origin`` / ``_packets`` /
  ``_capacity`` / ``remove()``, on ``add()`` returning ``(pli_flag, frame)``
  and on ``_handle_rtp_packet`` calling ``self.__jitter_buffer.add(packet)``
  with ``packet._data`` (the depayloaded bytes) set.
- ``RTCRtpReceiver._send_rtcp(packet)`` / ``_RTCRtpReceiver__rtcp_ssrc``:
  shadowed per instance to cap the receiver's own REMB with what the
  subscribers report, and used to send a relayed REMB upstream.
- ``RTCRtpSender._handle_rtcp_packet(packet)``: shadowed per instance to see
  the REMB a subscriber sends (routed to the sender by the SSRCs in its FCI),
  then handed on unchanged.  ``_RTCRtpSender__encoder.target_bitrate`` is read
  by tests and diagnostics only.
- ``RTCRtpSender._send_keyframe()``: called on an incoming PLI/FIR.  For a track
  that yields ``av.Packet`` the sender ignores it, so it is shadowed per
  instance to forward the request to the publisher.
- ``RTCRtpSender._next_encoded_frame``: a non-``Frame`` item from the track is
  handed to ``encoder.pack(packet)`` (needs ``pts`` and ``time_base``).
- ``RTCRtpTransceiver._codecs``: the negotiated codecs, first one is sent.
- ``RTCIceGatherer._connection`` (an ``aioice.Connection``) and its
  ``_local_candidates_start`` / ``_local_candidates_end`` / ``_local_candidates``
  / ``_components`` / ``_transport_policy``: to gather host candidates on the
  addresses we choose (aioice skips 127.0.0.1 unconditionally).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
import queue
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from aioice import Connection, TransportPolicy
from aiortc import RTCIceGatherer, RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtptransceiver import RTCRtpTransceiver
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, RtpPacket, pack_remb_fci, unpack_remb_fci

from media.errors import PassthroughUnsupported

logger = logging.getLogger(__name__)

AIORTC_VERSION = importlib.metadata.version("aiortc")
AIOICE_VERSION = importlib.metadata.version("aioice")

RECEIVER_DECODER_QUEUE = "_RTCRtpReceiver__decoder_queue"
RECEIVER_STARTED = "_RTCRtpReceiver__started"
RECEIVER_RTX_SSRC = "_RTCRtpReceiver__rtx_ssrc"
RECEIVER_SEND_PLI = "_send_rtcp_pli"
RECEIVER_JITTER_BUFFER = "_RTCRtpReceiver__jitter_buffer"
JITTER_BUFFER_PREFETCH = "_prefetch"
JITTER_BUFFER_STATE = ("_origin", "_packets", "_capacity", "_is_video")
RECEIVER_SEND_RTCP = "_send_rtcp"
RECEIVER_RTCP_SSRC = "_RTCRtpReceiver__rtcp_ssrc"
SENDER_HANDLE_RTCP = "_handle_rtcp_packet"
SENDER_ENCODER = "_RTCRtpSender__encoder"
SENDER_SEND_KEYFRAME = "_send_keyframe"
TRANSCEIVER_CODECS = "_codecs"
GATHERER_CONNECTION = "_connection"
CONNECTION_GATHER_STATE = (
    "_local_candidates_start",
    "_local_candidates_end",
    "_local_candidates",
    "_components",
    "_transport_policy",
)

FrameHandler = Callable[[RTCRtpCodecParameters, bytes, int], None]
"""Called on the event loop with (codec, encoded frame bytes, mapped RTP timestamp)."""


class _JitterFrameLike(Protocol):
    data: bytes
    timestamp: int


def unsupported(owner: object, attribute: str, library: str = "aiortc") -> PassthroughUnsupported:
    """The error for a private name that this aiortc/aioice no longer has."""
    version = AIORTC_VERSION if library == "aiortc" else AIOICE_VERSION
    owner_name = owner if isinstance(owner, str) else type(owner).__name__
    return PassthroughUnsupported(
        message=f"{owner_name}.{attribute} is missing in {library} {version}; "
        "media._aiortc_internals must be updated for this version"
    )


def _require(obj: object, attribute: str, library: str = "aiortc") -> Any:
    try:
        return getattr(obj, attribute)
    except AttributeError:
        raise unsupported(obj, attribute, library) from None


class _FrameHook:
    """Stands in for the receiver's decoder ``queue.Queue``.

    ``put`` runs on the event loop (from ``_handle_rtp_packet``) and hands the
    frame straight to us; ``get`` runs in the idle decoder thread and returns
    only the shutdown sentinel, so that thread exits cleanly on stop.
    """

    def __init__(self, on_frame: FrameHandler, on_end: Callable[[], None]) -> None:
        self._on_frame = on_frame
        self._on_end = on_end
        self._sentinel: queue.Queue[None] = queue.Queue()

    def put(self, item: tuple[RTCRtpCodecParameters, _JitterFrameLike] | None) -> None:
        if item is None:
            self._sentinel.put(None)
            self._on_end()
            return
        codec, frame = item
        self._on_frame(codec, frame.data, frame.timestamp)

    def get(self) -> None:
        return self._sentinel.get()


class _TeeQueue:
    """Wraps the original decoder queue: frames go to a tap *and* to the decoder."""

    def __init__(self, original: Any, on_frame: FrameHandler) -> None:
        self._original = original
        self._on_frame = on_frame

    def put(self, item: tuple[RTCRtpCodecParameters, _JitterFrameLike] | None) -> None:
        if item is not None:
            codec, frame = item
            self._on_frame(codec, frame.data, frame.timestamp)
        self._original.put(item)

    def get(self) -> Any:
        return self._original.get()


def receiver_started(receiver: RTCRtpReceiver) -> bool:
    """Whether ``receive()`` already ran (the decoder thread holds its queue)."""
    return bool(_require(receiver, RECEIVER_STARTED))


def _swap_decoder_queue(receiver: RTCRtpReceiver, build: Callable[[Any], Any]) -> None:
    original = _require(receiver, RECEIVER_DECODER_QUEUE)
    if receiver_started(receiver):
        raise PassthroughUnsupported(
            message="receiver already started: hook the decoder queue before "
            "setRemoteDescription connects it (e.g. on a pre-created transceiver)"
        )
    setattr(receiver, RECEIVER_DECODER_QUEUE, build(original))


def hook_decoder_queue(
    receiver: RTCRtpReceiver, on_frame: FrameHandler, on_end: Callable[[], None]
) -> None:
    """Route the receiver's reassembled encoded frames to ``on_frame``; never decode.

    ``on_end`` runs (on the event loop) when the receiver stops.  Must be called
    before the receiver starts.
    """
    _swap_decoder_queue(receiver, lambda _original: _FrameHook(on_frame, on_end))


def tap_decoder_queue(receiver: RTCRtpReceiver, on_frame: FrameHandler) -> None:
    """See every encoded frame the receiver reassembles, and still decode it.

    For tests and diagnostics (e.g. proving bit-exact forwarding at a client).
    """
    _swap_decoder_queue(receiver, lambda original: _TeeQueue(original, on_frame))


def media_ssrcs(receiver: RTCRtpReceiver) -> list[int]:
    """SSRCs of the media the receiver heard recently, RTX SSRCs excluded."""
    rtx: dict[int, int] = _require(receiver, RECEIVER_RTX_SSRC)
    return [s.source for s in receiver.getSynchronizationSources() if s.source not in rtx]


def release_lag_frames(receiver: RTCRtpReceiver) -> int:
    """How many frames later than its first packet the receiver releases a frame.

    With aiortc's own buffer a frame is complete only when a packet of a later
    frame shows up, and the audio buffer also prefetches: so frame k is handed
    over when the first packet of frame k + lag arrives (lag 1 for video, 4
    for audio in 1.16).  With `release_complete_frames` applied: 0, a frame
    leaves with its own last packet.
    """
    jitter_buffer = _require(receiver, RECEIVER_JITTER_BUFFER)
    if isinstance(jitter_buffer, CompleteFrameJitterBuffer):
        return 0
    return max(1, int(_require(jitter_buffer, JITTER_BUFFER_PREFETCH)))


class CompleteFrameJitterBuffer(JitterBuffer):
    """aiortc's jitter buffer, releasing a frame the moment it is complete.

    aiortc's `JitterBuffer.add` hands frame k over only when the first packet
    of a later frame arrives (and audio prefetches 4 more), which costs a
    whole frame interval per hop (66 ms at 15 fps).  A forwarding hub needs
    no playout buffer -- the far end has its own -- so this one also checks,
    after aiortc's logic, whether the frame at the buffer's origin is already
    whole: every packet from the origin through the one carrying the RTP
    marker bit (the last packet of a video frame, RFC 7741 / RFC 6184), with
    one timestamp and no hole; for audio the origin packet alone (one Opus or
    G.711 packet is one frame).  Loss handling is aiortc's: a hole before the
    marker holds the frame until a retransmission fills it or the buffer
    overflows.

    The scan runs only when a marker packet is buffered, so the common case
    (the marker arrives last, in order) costs one pass over one frame.
    """

    def __init__(self, capacity: int, prefetch: int = 0, is_video: bool = False) -> None:
        super().__init__(capacity=capacity, prefetch=prefetch, is_video=is_video)
        self._markers = 0  # marker packets buffered and not yet released
        self.released_on_marker = 0

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        complete = packet.marker or not self._is_video
        if complete:
            self._markers += 1
        pli_flag, frame = super().add(packet)
        if frame is None and self._markers:
            frame = self._complete_frame()
            if frame is not None:
                self.released_on_marker += 1
        return pli_flag, frame

    def _complete_frame(self) -> JitterFrame | None:
        origin = self._origin
        if origin is None:
            return None
        packets: list[RtpPacket] = []
        timestamp: int | None = None
        for count in range(self._capacity):
            packet = self._packets[(origin + count) % self._capacity]
            if packet is None:
                return None
            if timestamp is None:
                timestamp = packet.timestamp
            elif packet.timestamp != timestamp:
                return None  # a frame without a marker: aiortc's own logic releases it
            packets.append(packet)
            if packet.marker or not self._is_video:
                self.remove(count + 1)  # recounts the buffered markers
                return JitterFrame(data=b"".join(p._data for p in packets), timestamp=timestamp)  # type: ignore[attr-defined]
        return None

    def remove(self, count: int) -> None:
        # aiortc's own release / overflow paths drop packets too: keep the
        # marker count an upper bound by recounting when they drop markers
        super().remove(count)
        if self._markers:
            self._markers = sum(
                1 for p in self._packets if p is not None and (p.marker or not self._is_video)
            )


def release_complete_frames(receiver: RTCRtpReceiver) -> CompleteFrameJitterBuffer:
    """Make ``receiver`` hand each frame over when its last packet arrives.

    Replaces the receiver's jitter buffer with a `CompleteFrameJitterBuffer`
    of the same capacity, prefetch and kind; must run before the first packet
    (the hub does it on the transceiver it pre-creates).
    """
    current = _require(receiver, RECEIVER_JITTER_BUFFER)
    for name in JITTER_BUFFER_STATE + (JITTER_BUFFER_PREFETCH,):
        _require(current, name)
    if isinstance(current, CompleteFrameJitterBuffer):
        return current
    if current._origin is not None:
        raise PassthroughUnsupported(message="receiver already buffered packets: replace its jitter buffer earlier")
    replacement = CompleteFrameJitterBuffer(
        capacity=current.capacity, prefetch=current._prefetch, is_video=current._is_video
    )
    setattr(receiver, RECEIVER_JITTER_BUFFER, replacement)
    return replacement


# -- bandwidth feedback (REMB) ---------------------------------------------------------


def is_remb(packet: object) -> bool:
    return isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP


def intercept_remb(sender: RTCRtpSender, callback: Callable[[int], None]) -> None:
    """Call ``callback(bitrate)`` for every REMB the far end sends about ``sender``'s stream.

    The packet still reaches aiortc's own handler afterwards (for a forwarded
    track it only sets the unused packetiser's target bit-rate).
    """
    original = _require(sender, SENDER_HANDLE_RTCP)

    async def handle_rtcp_packet(packet: Any) -> None:
        if is_remb(packet):
            try:
                bitrate, ssrcs = unpack_remb_fci(packet.fci)
            except ValueError:
                bitrate, ssrcs = 0, []
            if sender._ssrc in ssrcs and bitrate > 0:
                try:
                    callback(bitrate)
                except Exception:
                    logger.exception("REMB callback failed")
        await original(packet)

    setattr(sender, SENDER_HANDLE_RTCP, handle_rtcp_packet)


class RembRelay:
    """The REMB a hub receiver sends its publisher, capped by its subscribers.

    aiortc's receiver sends its own REMB (its estimate of the publisher -> hub
    leg, about once a second).  Wrapping its ``_send_rtcp``, that estimate is
    lowered to ``cap()`` -- the lowest estimate the subscribers' legs reported
    -- and `send` pushes a REMB at once when a subscriber's estimate drops, so
    the publisher's encoder follows the slowest receiver.
    """

    def __init__(self, receiver: RTCRtpReceiver, cap: Callable[[], int | None]) -> None:
        self._receiver = receiver
        self._cap = cap
        self._send_rtcp = _require(receiver, RECEIVER_SEND_RTCP)
        _require(receiver, RECEIVER_RTCP_SSRC)
        self.own_estimate: int | None = None
        self.last_sent: int | None = None
        setattr(receiver, RECEIVER_SEND_RTCP, self._capped_send)

    async def _capped_send(self, packet: Any) -> None:
        if is_remb(packet):
            try:
                bitrate, ssrcs = unpack_remb_fci(packet.fci)
            except ValueError:
                await self._send_rtcp(packet)
                return
            self.own_estimate = bitrate
            cap = self._cap()
            if cap is not None and cap < bitrate:
                packet = RtcpPsfbPacket(
                    fmt=RTCP_PSFB_APP, ssrc=packet.ssrc, media_ssrc=0, fci=pack_remb_fci(cap, ssrcs)
                )
                bitrate = cap
            self.last_sent = bitrate
        await self._send_rtcp(packet)

    async def send(self, bitrate: int, media_ssrcs: list[int]) -> None:
        """Send a REMB of ``min(bitrate, own estimate)`` for ``media_ssrcs`` now."""
        rtcp_ssrc = getattr(self._receiver, RECEIVER_RTCP_SSRC)
        if rtcp_ssrc is None or not media_ssrcs:
            return
        if self.own_estimate is not None:
            bitrate = min(bitrate, self.own_estimate)
        self.last_sent = bitrate
        await self._send_rtcp(
            RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=pack_remb_fci(bitrate, media_ssrcs))
        )


def sender_target_bitrate(sender: RTCRtpSender) -> int | None:
    """The bit-rate aiortc's encoder behind ``sender`` aims at (None before it exists)."""
    encoder = _require(sender, SENDER_ENCODER)
    return getattr(encoder, "target_bitrate", None) if encoder is not None else None


async def send_pli(receiver: RTCRtpReceiver, media_ssrc: int) -> None:
    """Send an RTCP Picture Loss Indication to the publisher of ``media_ssrc``."""
    send = _require(receiver, RECEIVER_SEND_PLI)
    await send(media_ssrc)


def intercept_keyframe_requests(
    sender: RTCRtpSender, callback: Callable[[], None]
) -> Callable[[], None]:
    """Make PLI/FIR arriving at ``sender`` call ``callback``.

    Returns the sender's own handler (forces its encoder to emit a keyframe),
    for callers that send decoded frames and want the default behaviour.
    """
    original: Callable[[], None] = _require(sender, SENDER_SEND_KEYFRAME)
    setattr(sender, SENDER_SEND_KEYFRAME, callback)
    return original


def negotiated_codec(transceiver: RTCRtpTransceiver) -> RTCRtpCodecParameters | None:
    """The codec this transceiver sends with (the first negotiated one)."""
    codecs: list[RTCRtpCodecParameters] = _require(transceiver, TRANSCEIVER_CODECS)
    return codecs[0] if codecs else None


def ice_gatherers(pc: RTCPeerConnection) -> list[RTCIceGatherer]:
    """Every ICE gatherer the peer connection currently owns (public attributes)."""
    gatherers: list[RTCIceGatherer] = []
    for transceiver in pc.getTransceivers():
        gatherer = transceiver.receiver.transport.transport.iceGatherer
        if gatherer not in gatherers:
            gatherers.append(gatherer)
    if pc.sctp is not None:
        gatherer = pc.sctp.transport.transport.iceGatherer
        if gatherer not in gatherers:
            gatherers.append(gatherer)
    return gatherers


def _connection(gatherer: RTCIceGatherer) -> Connection:
    connection: Connection = _require(gatherer, GATHERER_CONNECTION)
    for name in CONNECTION_GATHER_STATE:
        _require(connection, name, library="aioice")
    return connection


def gather_on_addresses(gatherer: RTCIceGatherer, addresses: Sequence[str]) -> None:
    """Make the gatherer take host candidates on exactly ``addresses``.

    aioice's ``Connection.gather_candidates`` lists interfaces itself and always
    skips 127.0.0.1, so on a loopback-only machine it gathers nothing and
    aiortc never even starts ICE.  This replaces that method on this one
    connection (no process-wide patch) with one that binds the given addresses
    through aioice's own ``get_component_candidates``, which still adds
    server-reflexive and relayed candidates for any configured STUN/TURN
    server.
    """
    connection = _connection(gatherer)
    chosen = list(addresses)

    async def gather_candidates() -> None:
        if connection._local_candidates_start:
            return
        connection._local_candidates_start = True
        hosts = [] if connection._transport_policy == TransportPolicy.RELAY else chosen
        results = await asyncio.gather(
            *(
                connection.get_component_candidates(component=component, addresses=hosts)
                for component in sorted(connection._components)
            )
        )
        for candidates in results:
            connection._local_candidates += candidates
        connection._local_candidates_end = True
        logger.debug("gathered %d candidate(s) on %s", len(connection._local_candidates), hosts)

    setattr(connection, "gather_candidates", gather_candidates)
