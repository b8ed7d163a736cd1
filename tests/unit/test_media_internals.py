"""Pins every aiortc / aioice internal that `media._aiortc_internals` relies on.

These names are private.  When an aiortc upgrade renames or reshapes one,
this file fails with the name in the message -- before any call in production
silently decodes, drops keyframe requests or gathers no candidate.
"""

from __future__ import annotations

import fractions
import inspect
import queue
from typing import Any

import av
import pytest
from aioice import Connection
from aiortc import RTCIceGatherer, RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpreceiver import decoder_worker

from media import _aiortc_internals as internals
from media.errors import PassthroughUnsupported
from media.ice import rtc_configuration


@pytest.fixture
async def pc():
    peer = RTCPeerConnection(rtc_configuration())
    yield peer
    await peer.close()


def test_versions_are_the_ones_pinned_here() -> None:
    # Re-read the internals below (and the module docstring) before bumping these.
    assert internals.AIORTC_VERSION.split(".")[:2] == ["1", "16"]
    assert internals.AIOICE_VERSION.split(".")[:2] == ["0", "13"]


async def test_receiver_private_attributes(pc: RTCPeerConnection) -> None:
    receiver = pc.addTransceiver("video").receiver
    assert isinstance(getattr(receiver, internals.RECEIVER_DECODER_QUEUE), queue.Queue)
    assert getattr(receiver, internals.RECEIVER_STARTED) is False
    assert getattr(receiver, internals.RECEIVER_RTX_SSRC) == {}
    send_pli = getattr(RTCRtpReceiver, internals.RECEIVER_SEND_PLI)
    assert inspect.iscoroutinefunction(send_pli)
    assert list(inspect.signature(send_pli).parameters) == ["self", "media_ssrc"]


def test_decoder_worker_exits_on_none_and_reads_codec_frame_pairs() -> None:
    source = inspect.getsource(decoder_worker)
    assert "input_q.get()" in source
    assert "if task is None" in source
    assert "codec, encoded_frame = task" in source
    assert list(inspect.signature(decoder_worker).parameters) == ["loop", "input_q", "output_q", "decode_error"]


def test_receiver_puts_codec_and_jitter_frame_on_the_decoder_queue() -> None:
    source = inspect.getsource(RTCRtpReceiver._handle_rtp_packet)
    assert "self.__decoder_queue.put((codec, encoded_frame))" in source
    assert "encoded_frame.timestamp = self.__timestamp_mapper.map(" in source
    receive = inspect.getsource(RTCRtpReceiver.receive)
    assert "self.__decoder_queue" in receive  # the thread gets the queue at receive()


def test_jitter_frame_shape() -> None:
    frame = JitterFrame(data=b"\x00", timestamp=3000)
    assert frame.data == b"\x00" and frame.timestamp == 3000


async def test_sender_keyframe_hook_and_packet_path(pc: RTCPeerConnection) -> None:
    sender = pc.addTransceiver("video").sender
    assert list(inspect.signature(getattr(sender, internals.SENDER_SEND_KEYFRAME)).parameters) == []
    handle = inspect.getsource(RTCRtpSender._handle_rtcp_packet)
    assert "self._send_keyframe()" in handle
    next_frame = inspect.getsource(RTCRtpSender._next_encoded_frame)
    assert "isinstance(data, Frame)" in next_frame
    assert "self.__encoder.pack(data)" in next_frame


@pytest.mark.parametrize("encoder", [Vp8Encoder, H264Encoder, OpusEncoder])
def test_encoders_pack_packets_with_pts_and_time_base(encoder: type) -> None:
    assert list(inspect.signature(encoder.pack).parameters) == ["self", "packet"]
    data = b"\x10\x02\x00\x9d\x01\x2a" + bytes(40) if encoder is Vp8Encoder else b"\x00\x00\x00\x01\x09\x10"
    packet = av.Packet(data)
    packet.pts = 3000
    packet.time_base = fractions.Fraction(1, 90000)
    payloads, timestamp = encoder().pack(packet)
    assert payloads
    assert timestamp == (3000 if encoder is not OpusEncoder else 1600)


async def test_transceiver_codecs_attribute(pc: RTCPeerConnection) -> None:
    transceiver = pc.addTransceiver("audio")
    assert getattr(transceiver, internals.TRANSCEIVER_CODECS) == []
    assert internals.negotiated_codec(transceiver) is None


async def test_ice_gatherer_connection_state(pc: RTCPeerConnection) -> None:
    pc.addTransceiver("audio")
    (gatherer,) = internals.ice_gatherers(pc)
    assert isinstance(gatherer, RTCIceGatherer)
    connection = getattr(gatherer, internals.GATHERER_CONNECTION)
    assert isinstance(connection, Connection)
    for name in internals.CONNECTION_GATHER_STATE:
        assert hasattr(connection, name), name
    assert inspect.iscoroutinefunction(Connection.get_component_candidates)
    assert "component" in inspect.signature(Connection.get_component_candidates).parameters
    assert "addresses" in inspect.signature(Connection.get_component_candidates).parameters


async def test_gather_on_addresses_binds_loopback(pc: RTCPeerConnection) -> None:
    pc.addTransceiver("audio")
    (gatherer,) = internals.ice_gatherers(pc)
    internals.gather_on_addresses(gatherer, ["127.0.0.1"])
    await gatherer.gather()
    candidates = gatherer.getLocalCandidates()
    assert [c.ip for c in candidates] == ["127.0.0.1"]
    assert candidates[0].type == "host"


async def test_hooking_a_started_receiver_is_refused(pc: RTCPeerConnection) -> None:
    receiver = pc.addTransceiver("video").receiver
    setattr(receiver, internals.RECEIVER_STARTED, True)
    with pytest.raises(PassthroughUnsupported, match="already started"):
        internals.hook_decoder_queue(receiver, lambda *a: None, lambda: None)
    setattr(receiver, internals.RECEIVER_STARTED, False)


def test_missing_attribute_names_it_and_the_version() -> None:
    class Stripped:
        pass

    with pytest.raises(PassthroughUnsupported) as caught:
        internals.media_ssrcs(Stripped())  # type: ignore[arg-type]
    assert internals.RECEIVER_RTX_SSRC in caught.value.message
    assert internals.AIORTC_VERSION in caught.value.message
    assert caught.value.code == "passthrough_unsupported"


async def test_jitter_buffer_release_lag(pc: RTCPeerConnection) -> None:
    """A frame is released only when the first packet of frame k+lag arrives."""
    from aiortc.jitterbuffer import JitterBuffer
    from aiortc.rtp import RtpPacket

    video = pc.addTransceiver("video").receiver
    audio = pc.addTransceiver("audio").receiver
    assert internals.release_lag_frames(video) == 1
    assert internals.release_lag_frames(audio) == 4
    jitter = getattr(audio, internals.RECEIVER_JITTER_BUFFER)
    assert isinstance(jitter, JitterBuffer)

    def packet(seq: int, ts: int) -> RtpPacket:
        p = RtpPacket(sequence_number=seq, timestamp=ts)
        p._data = bytes([seq])  # type: ignore[attr-defined]  # what the receiver attaches
        return p

    for buffer, lag in ((JitterBuffer(capacity=128, is_video=True), 1), (JitterBuffer(capacity=16, prefetch=4), 4)):
        released = [buffer.add(packet(seq, seq * 960))[1] for seq in range(8)]
        first = next(i for i, frame in enumerate(released) if frame is not None)
        assert first == lag  # frame 0 came out with frame `lag`'s first packet
        assert released[first].timestamp == 0  # type: ignore[union-attr]


# -- complete-frame release (hub latency) -------------------------------------------------


def _rtp(seq: int, ts: int, marker: bool = False) -> Any:
    from aiortc.rtp import RtpPacket

    p = RtpPacket(sequence_number=seq, timestamp=ts, marker=int(marker))
    p._data = bytes([seq & 0xFF])  # type: ignore[attr-defined]  # what the receiver attaches
    return p


def test_receiver_feeds_depayloaded_packets_to_its_jitter_buffer() -> None:
    from aiortc.jitterbuffer import JitterBuffer

    source = inspect.getsource(RTCRtpReceiver._handle_rtp_packet)
    assert "packet._data = depayload(codec, packet.payload)" in source
    assert "pli_flag, encoded_frame = self.__jitter_buffer.add(packet)" in source
    init = inspect.getsource(RTCRtpReceiver.__init__)
    assert "self.__jitter_buffer = JitterBuffer(capacity=512, is_video=True)" in init
    assert "self.__jitter_buffer = JitterBuffer(capacity=16, prefetch=4)" in init
    buffer = JitterBuffer(capacity=16, prefetch=4)
    for name in internals.JITTER_BUFFER_STATE + (internals.JITTER_BUFFER_PREFETCH,):
        assert hasattr(buffer, name), name
    assert list(inspect.signature(JitterBuffer.remove).parameters) == ["self", "count"]
    assert list(inspect.signature(JitterBuffer.__init__).parameters) == ["self", "capacity", "prefetch", "is_video"]


def test_complete_frame_buffer_releases_video_on_its_marker_packet() -> None:
    buffer = internals.CompleteFrameJitterBuffer(capacity=128, is_video=True)
    # frame 0: three packets, the last one marked -> out with that packet, not later
    assert buffer.add(_rtp(10, 0))[1] is None
    assert buffer.add(_rtp(11, 0))[1] is None
    frame = buffer.add(_rtp(12, 0, marker=True))[1]
    assert frame is not None and frame.data == bytes([10, 11, 12]) and frame.timestamp == 0
    # frame 1: a hole before the marker holds it until the retransmission fills it
    assert buffer.add(_rtp(13, 6000))[1] is None
    assert buffer.add(_rtp(15, 6000, marker=True))[1] is None
    frame = buffer.add(_rtp(14, 6000))[1]
    assert frame is not None and frame.data == bytes([13, 14, 15]) and frame.timestamp == 6000
    # frame 2: a single-packet frame leaves at once
    frame = buffer.add(_rtp(16, 12000, marker=True))[1]
    assert frame is not None and frame.data == bytes([16])
    assert buffer.released_on_marker == 3


def test_stock_buffer_would_have_held_the_same_frame_for_a_frame_interval() -> None:
    from aiortc.jitterbuffer import JitterBuffer

    buffer = JitterBuffer(capacity=128, is_video=True)
    assert buffer.add(_rtp(10, 0))[1] is None
    assert buffer.add(_rtp(11, 0, marker=True))[1] is None  # complete, yet held
    assert buffer.add(_rtp(12, 6000))[1] is not None  # released by the next frame


def test_complete_frame_buffer_releases_a_frame_without_marker_like_aiortc() -> None:
    buffer = internals.CompleteFrameJitterBuffer(capacity=128, is_video=True)
    assert buffer.add(_rtp(1, 0))[1] is None
    frame = buffer.add(_rtp(2, 3000))[1]  # a sender that never marks: aiortc's path still works
    assert frame is not None and frame.timestamp == 0


def test_complete_frame_buffer_releases_audio_packet_by_packet() -> None:
    buffer = internals.CompleteFrameJitterBuffer(capacity=16, prefetch=4)
    released = [buffer.add(_rtp(seq, seq * 960))[1] for seq in range(6)]
    assert [f.timestamp if f else None for f in released] == [seq * 960 for seq in range(6)]
    # a lost packet holds the later ones, as aiortc does (no audio NACK)
    assert buffer.add(_rtp(7, 7 * 960))[1] is None
    frame = buffer.add(_rtp(6, 6 * 960))[1]
    assert frame is not None and frame.timestamp == 6 * 960


async def test_release_complete_frames_replaces_the_receivers_buffer(pc: RTCPeerConnection) -> None:
    video = pc.addTransceiver("video").receiver
    audio = pc.addTransceiver("audio").receiver
    for receiver, capacity, prefetch in ((video, 512, 0), (audio, 16, 4)):
        buffer = internals.release_complete_frames(receiver)
        assert getattr(receiver, internals.RECEIVER_JITTER_BUFFER) is buffer
        assert (buffer.capacity, buffer._prefetch) == (capacity, prefetch)
        assert internals.release_lag_frames(receiver) == 0
        assert internals.release_complete_frames(receiver) is buffer  # idempotent


# -- REMB relay ---------------------------------------------------------------------------


def test_sender_routes_remb_through_its_rtcp_handler() -> None:
    from aiortc.rtcdtlstransport import RtpRouter

    handle = inspect.getsource(RTCRtpSender._handle_rtcp_packet)
    assert "packet.fmt == RTCP_PSFB_APP" in handle
    assert "bitrate, ssrcs = unpack_remb_fci(packet.fci)" in handle
    assert "self.__encoder.target_bitrate = bitrate" in handle
    route = inspect.getsource(RtpRouter.route_rtcp)
    assert "rtp.unpack_remb_fci(packet.fci)[1]" in route  # REMB reaches the sender named in its FCI
    dtls = inspect.getsource(__import__("aiortc.rtcdtlstransport", fromlist=["x"]).RTCDtlsTransport._handle_rtcp_data)
    assert "await recipient._handle_rtcp_packet(packet)" in dtls  # looked up per instance


async def test_receiver_sends_remb_through_send_rtcp(pc: RTCPeerConnection) -> None:
    source = inspect.getsource(RTCRtpReceiver._handle_rtp_packet)
    assert "fci=pack_remb_fci(*remb)" in source
    assert "await self._send_rtcp(rtcp_packet)" in source
    send = getattr(RTCRtpReceiver, internals.RECEIVER_SEND_RTCP)
    assert inspect.iscoroutinefunction(send)
    assert list(inspect.signature(send).parameters) == ["self", "packet"]
    receiver = pc.addTransceiver("video").receiver
    sender = pc.getTransceivers()[0].sender
    assert getattr(receiver, internals.RECEIVER_RTCP_SSRC) == sender._ssrc  # set by addTransceiver
    assert getattr(sender, internals.SENDER_ENCODER) is None
    assert internals.sender_target_bitrate(sender) is None


async def test_remb_relay_caps_the_receivers_own_estimate_and_sends_relayed_ones(pc: RTCPeerConnection) -> None:
    from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, pack_remb_fci, unpack_remb_fci

    receiver = pc.addTransceiver("video").receiver
    sent: list[tuple[int, list[int]]] = []

    async def capture(packet: RtcpPsfbPacket) -> None:
        sent.append(unpack_remb_fci(packet.fci))

    receiver._send_rtcp = capture  # type: ignore[method-assign]  # stands in for the transport
    receiver._set_rtcp_ssrc(1234)
    cap: list[int | None] = [None]
    relay = internals.RembRelay(receiver, lambda: cap[0])
    own = RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=1234, media_ssrc=0, fci=pack_remb_fci(2_000_000, [42]))
    await receiver._send_rtcp(own)  # what _handle_rtp_packet does with its estimate
    cap[0] = 300_000
    await receiver._send_rtcp(own)
    await relay.send(250_000, [42])
    assert sent == [(2_000_000, [42]), (300_000, [42]), (250_000, [42])]
    assert relay.own_estimate == 2_000_000 and relay.last_sent == 250_000


async def test_intercept_remb_sees_only_reports_about_this_sender(pc: RTCPeerConnection) -> None:
    from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, pack_remb_fci

    sender = pc.addTransceiver("video").sender
    seen: list[int] = []
    internals.intercept_remb(sender, seen.append)
    for ssrcs in ([sender._ssrc], [sender._ssrc + 1]):
        packet = RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=pack_remb_fci(400_000, ssrcs))
        await sender._handle_rtcp_packet(packet)
    assert seen == [400_000]
