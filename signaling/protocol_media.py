"""The client side of the protocol's media messages: one aiortc peer to the call's media hub.

The booth and seat simulators, benchmarks and tests use it (a real kiosk or
console does the same in `protocol.js`).  A `MediaPeer` publishes named tracks
send-only, offers one receive-only m-line per remote track it wants, sends
`rtc.offer` over an open `ProtocolClient` and applies the answer; `rtc.slots`
pushes (and the ack's ``slots``) tell it which remote track each receive
m-line carries.  Every received video frame's burnt-in code (see
`media.synthetic`) is read, so a caller can check order, loss and latency
from the pixels alone.

ICE: explicit servers (none by default), never aiortc's default public STUN;
host addresses as the hub chooses them (127.0.0.1 on a loopback-only host).

It needs aiortc, so the light booth install imports it only when asked for
media (`run_booth(..., media=True)`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import av
from aiortc import RTCIceServer, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtptransceiver import RTCRtpTransceiver

from media.ice import advertise_host_addresses, choose_host_addresses, rtc_configuration
from media.synthetic import CameraTrack, DocumentCameraTrack, PreEncodedVideoTrack, ToneTrack, read_burnt_in
from signaling.protocol_client import ProtocolClient, ReplyError

logger = logging.getLogger(__name__)

LATENCY_SAMPLES = 5000  # per receive m-line, enough for a median over a few minutes


@dataclass
class Outgoing:
    """A track to publish: its protocol name, what aiortc sends, and the frame source (for counts)."""

    name: str
    track: MediaStreamTrack
    source: MediaStreamTrack

    @property
    def frames(self) -> int:
        return int(getattr(self.source, "count", 0))

    @property
    def keyframes(self) -> int | None:
        return getattr(self.track, "keyframes", None)


def _video(name: str, source: MediaStreamTrack, bitrate: int) -> Outgoing:
    # Pre-encoded: keyframes only at start and when the hub asks (a PLI), never on a whim of
    # aiortc's encoder, so a late monitor's first picture proves the keyframe request works.
    return Outgoing(name, PreEncodedVideoTrack(source, bitrate=bitrate), source)


def booth_tracks(*, document_size: tuple[int, int] = (1280, 720), document_fps: float = 3.0) -> list[Outgoing]:
    """A booth's synthetic face camera (640x480, 15 fps), document camera and microphone."""
    tone = ToneTrack(440.0)
    return [_video("face", CameraTrack(), 500_000),
            _video("document", DocumentCameraTrack(*document_size, fps=document_fps), 800_000),
            Outgoing("audio", tone, tone)]


def clerk_tracks() -> list[Outgoing]:
    """A clerk's synthetic camera (640x480, 15 fps) and microphone."""
    tone = ToneTrack(660.0)
    return [_video("camera", CameraTrack(), 500_000), Outgoing("audio", tone, tone)]


@dataclass
class TrackReceipt:
    """What one receive m-line got: frames, burnt-in counters in order, latency."""

    mid: str
    kind: str
    track: str | None = None  # e.g. "clerk-camera", from rtc.slots
    frames: int = 0
    readable: int = 0
    unreadable: int = 0
    out_of_order: int = 0
    gaps: int = 0  # counters skipped
    last_counter: int | None = None
    first_frame_at: float | None = None  # wall clock
    first_readable_at: float | None = None
    latencies_ms: list[float] = field(default_factory=list)  # arrival - burnt-in clock

    def on_video(self, counter: int, clock_ms: int, now: float) -> None:
        self.readable += 1
        if self.first_readable_at is None:
            self.first_readable_at = now
        if self.last_counter is not None:
            if counter <= self.last_counter:
                self.out_of_order += 1
            else:
                self.gaps += counter - self.last_counter - 1
        self.last_counter = counter if self.last_counter is None else max(counter, self.last_counter)
        if len(self.latencies_ms) < LATENCY_SAMPLES:
            self.latencies_ms.append(now * 1000.0 - clock_ms)

    @property
    def in_order(self) -> bool:
        return self.out_of_order == 0

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mid": self.mid, "kind": self.kind, "frames": self.frames}
        if self.kind == "video":
            out.update(readable=self.readable, unreadable=self.unreadable, in_order=self.in_order, gaps=self.gaps)
        return out


class MediaPeer:
    """One participant's peer connection to the hub of one call."""

    def __init__(
        self,
        client: ProtocolClient,
        call_id: str,
        *,
        publish: Sequence[Outgoing] = (),
        receive: Sequence[str] = (),
        ice_servers: Sequence[RTCIceServer] = (),
        host_addresses: Sequence[str] | None = None,
        relay_only: bool = False,
    ) -> None:
        self.client = client
        self.call_id = call_id
        self.outgoing = list(publish)
        self.pc = RTCPeerConnection(rtc_configuration(ice_servers, relay_only=relay_only))
        self._addresses = choose_host_addresses(host_addresses)
        self._published: list[tuple[Outgoing, RTCRtpTransceiver]] = []
        self._receiving: list[RTCRtpTransceiver] = []
        self.receipts: dict[str, TrackReceipt] = {}  # by mid
        self._tasks: list[asyncio.Task[None]] = []
        self._changed = asyncio.Condition()
        self.connected_at: float | None = None
        for out in self.outgoing:
            transceiver = self.pc.addTransceiver(out.track, direction="sendonly")
            _prefer_vp8(transceiver)
            if isinstance(out.track, PreEncodedVideoTrack):
                out.track.bind_sender(transceiver.sender)
            self._published.append((out, transceiver))
        for kind in receive:
            transceiver = self.pc.addTransceiver(kind, direction="recvonly")
            _prefer_vp8(transceiver)
            self._receiving.append(transceiver)

    async def connect(self, timeout_s: float = 20.0) -> dict[str, Any]:
        """Offer, send `rtc.offer`, apply the answer; returns the ack."""
        self._tasks.append(asyncio.create_task(self._watch_slots()))
        offer = await self.pc.createOffer()
        advertise_host_addresses(self.pc, self._addresses)
        await self.pc.setLocalDescription(offer)
        for transceiver in self._receiving:
            mid = str(transceiver.mid)
            self.receipts[mid] = TrackReceipt(mid, transceiver.kind)
        tracks = {str(t.mid): out.name for out, t in self._published}
        ack = await self.client.request("rtc.offer", timeout_s=timeout_s, call_id=self.call_id,
                                        sdp=self.pc.localDescription.sdp, **({"tracks": tracks} if tracks else {}))
        self.apply_slots(ack.get("slots", []))
        await self.pc.setRemoteDescription(RTCSessionDescription(ack["sdp"], "answer"))
        self.connected_at = time.time()
        for transceiver in self._receiving:
            receipt = self.receipts[str(transceiver.mid)]
            self._tasks.append(asyncio.create_task(self._consume(transceiver.receiver.track, receipt)))
        return ack

    def apply_slots(self, slots: list[dict[str, Any]]) -> None:
        for slot in slots:
            receipt = self.receipts.get(str(slot.get("mid")))
            if receipt is not None:
                publisher, track = slot.get("publisher"), slot.get("track")
                receipt.track = f"{publisher}-{track}" if publisher and track else None

    async def _watch_slots(self) -> None:
        with contextlib.suppress(asyncio.CancelledError, ConnectionError, asyncio.TimeoutError):
            while True:
                message = await self.client.wait_for("rtc.slots", lambda m: m.get("call_id") == self.call_id,
                                                     timeout_s=24 * 3600)
                self.apply_slots(message.get("slots", []))

    async def _consume(self, track: MediaStreamTrack, receipt: TrackReceipt) -> None:
        try:
            while True:
                frame = await track.recv()
                now = time.time()
                receipt.frames += 1
                if receipt.first_frame_at is None:
                    receipt.first_frame_at = now
                if isinstance(frame, av.VideoFrame):
                    try:
                        counter, clock_ms = read_burnt_in(frame)
                    except ValueError:
                        receipt.unreadable += 1
                    else:
                        receipt.on_video(counter, clock_ms, now)
                async with self._changed:
                    self._changed.notify_all()
        except MediaStreamError:
            return

    def receipt(self, track: str) -> TrackReceipt | None:
        """The receive m-line carrying ``track`` (e.g. ``"booth-face"``) now, if any."""
        return next((r for r in self.receipts.values() if r.track == track), None)

    async def wait_until(self, predicate: Callable[[], bool], timeout_s: float) -> None:
        """Wait until ``predicate()`` holds, re-checked at every received frame."""

        async def wait() -> None:
            async with self._changed:
                await self._changed.wait_for(predicate)

        await asyncio.wait_for(wait(), timeout_s)

    async def wait_frames(self, track: str, count: int, timeout_s: float) -> TrackReceipt:
        """Wait until ``track`` delivered ``count`` readable (video) or any (audio) frames."""

        def enough() -> bool:
            r = self.receipt(track)
            return r is not None and (r.readable if r.kind == "video" else r.frames) >= count

        await self.wait_until(enough, timeout_s)
        found = self.receipt(track)
        assert found is not None
        return found

    def report(self) -> dict[str, Any]:
        """Frames sent per own track and received per remote track (by name)."""
        return {
            "sent": {out.name: out.frames for out in self.outgoing},
            "received": {(r.track or f"mid-{r.mid}"): r.summary() for r in self.receipts.values()},
        }

    @property
    def ok(self) -> bool:
        """Every remote video arrived readable and in order (and some audio, if asked for)."""
        named = [r for r in self.receipts.values() if r.track is not None]
        return bool(named) and all(r.frames > 0 and (r.kind == "audio" or (r.readable > 0 and r.in_order))
                                   for r in named)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.pc.close()
        for out in self.outgoing:
            out.track.stop()


def ice_from_message(message: dict[str, Any]) -> tuple[list[RTCIceServer], bool]:
    """The RTCIceServers and relay-only flag an `ice.servers` push (or `ice.refresh` ack) carries."""
    servers = [RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
               for s in message.get("ice_servers", [])]
    return servers, message.get("ice_transport_policy") == "relay"


async def open_peer(client: ProtocolClient, call_id: str, *, publish: list[Outgoing],
                    receive: Sequence[str]) -> MediaPeer | None:
    """Connect a peer for the call, or None (logged, peer closed) when the hub did not answer."""
    peer = MediaPeer(client, call_id, publish=publish, receive=receive)
    try:
        await peer.connect()
    except (ReplyError, ConnectionError, asyncio.TimeoutError) as exc:
        logger.warning("call %s: media not connected: %s", call_id, exc)
        await peer.close()
        return None
    return peer


def _prefer_vp8(transceiver: RTCRtpTransceiver) -> None:
    codecs = RTCRtpSender.getCapabilities(transceiver.kind).codecs
    if transceiver.kind == "video":
        transceiver.setCodecPreferences([c for c in codecs if c.name == "VP8"] + [c for c in codecs if c.name == "rtx"])
