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
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtptransceiver import RTCRtpTransceiver

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

    A frame is complete only when a packet of a later frame shows up, and the
    audio buffer also prefetches: so frame k is handed over when the first
    packet of frame k + lag arrives (lag 1 for video, 4 for audio in 1.16).
    """
    jitter_buffer = _require(receiver, RECEIVER_JITTER_BUFFER)
    return max(1, int(_require(jitter_buffer, JITTER_BUFFER_PREFETCH)))


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
