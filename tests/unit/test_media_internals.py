"""Pins every aiortc / aioice internal that `media._aiortc_internals` relies on.

These names are private.  When an aiortc upgrade renames or reshapes one,
this file fails with the name in the message -- before any call in production
silently decodes, drops keyframe requests or gathers no candidate.
"""

from __future__ import annotations

import fractions
import inspect
import queue

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
