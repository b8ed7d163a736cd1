"""The media hub: one server peer per participant, encoded forwarding within a room.

A room is one call session.  Every participant (a booth, a clerk, a silent
monitor) has one `RTCPeerConnection` to the hub, set up by `handle_offer`:
the participant offers, the hub answers.  Each m-line the participant *sends*
on is a publication (monitors publish nothing); each m-line it *receives* on
is a slot the hub may fill.  Every publication is forwarded, still encoded, to
a free slot of matching kind of every other participant in the room, and to a
recorder when the room records.

Why slots, not renegotiation: the hub is always the answerer, so it can only
send on m-lines the participant offered.  A participant therefore offers one
receive m-line per track it wants (the clerk: two video + one audio for the
booth's face camera, document camera and microphone; a monitor: one per
track of the call).  The hub pre-creates its transceivers in the offer's
order before `setRemoteDescription`, binds a long-lived `PassthroughTrack` to
each sending one, and attaches that track to a publication whenever one is
available -- whether the publisher joined before or after the subscriber.
The sender just sends nothing while its slot is empty.  `slots()` (and the
`on_slots_changed` callback) tell the signaling layer which publication each
slot carries, by the publisher's track id (its msid).

Latency and bandwidth: a publication's receiver hands each frame over as soon
as its last packet is in (``release_on_marker``, on by default; off gives
aiortc's stock one-frame delay, for comparison), and the REMB a subscriber
sends is relayed, lowest first, to the publisher (see `media.passthrough`).

Codecs: the hub prefers VP8, allows H.264 for video and Opus (then G.711) for
audio.  When a publication's codec differs from a slot's, the slot decodes and
aiortc re-encodes (the fallback), reported through `on_fallback_transcode`.

ICE: explicit ICE servers only (default none, never aiortc's public STUN; a
callable gives each new peer its own, e.g. a fresh TURN REST credential),
and the hub chooses its host addresses (see `media.ice`): pass
``host_addresses=["127.0.0.1"]`` on a loopback-only machine -- or leave it
None, and 127.0.0.1 is used when no other interface exists.

`media/` imports nothing else of ours; it reports through callbacks, plain
callables or coroutine functions set as attributes:

- ``on_track_published(room, participant, kind, codec)``
- ``on_recording_finished(room, files, manifest_path)``
- ``on_fallback_transcode(room, track, reason)``
- ``on_slots_changed(room, participant, slots)``
- ``on_participant_left(room, participant, reason)``
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiortc import RTCIceServer, RTCPeerConnection, RTCRtpSender, RTCSessionDescription, sdp
from aiortc.rtcrtpparameters import RTCRtpCodecCapability
from aiortc.rtcrtptransceiver import RTCRtpTransceiver

from media import _aiortc_internals as internals
from media.errors import OfferRejected, RoomClosed
from media.ice import advertise_host_addresses, choose_host_addresses, rtc_configuration
from media.passthrough import DEFAULT_PLI_MIN_INTERVAL, PassthroughSource, PassthroughTrack
from media.recorder import RecordedFile, RecordingTotals, TrackRecorder, write_manifest
from media.transcode import frame_decoder

logger = logging.getLogger(__name__)

Callback = Callable[..., Awaitable[None] | None]

VIDEO_CODEC_ORDER = ("VP8", "H264")
AUDIO_CODEC_ORDER = ("opus", "PCMU", "PCMA")
MANIFEST_NAME = "manifest.json"


class Role(str, enum.Enum):
    """What a participant does in a room."""

    BOOTH = "booth"
    CLERK = "clerk"
    MONITOR = "monitor"  # a supervisor's silent monitor: receives, never publishes

    @property
    def publishes(self) -> bool:
        return self is not Role.MONITOR


def codec_preferences(kind: str) -> list[RTCRtpCodecCapability]:
    """The hub's codec order for ``kind``: VP8, H.264 (+RTX) / Opus, PCMU, PCMA."""
    capabilities = RTCRtpSender.getCapabilities(kind).codecs
    order = VIDEO_CODEC_ORDER if kind == "video" else AUDIO_CODEC_ORDER
    preferred = [c for name in order for c in capabilities if c.name.lower() == name.lower()]
    return preferred + [c for c in capabilities if c.name == "rtx"]


def _hub_direction(sends: bool, receives: bool) -> str:
    if sends and receives:
        return "sendrecv"
    if sends:
        return "sendonly"
    if receives:
        return "recvonly"
    return "inactive"


def file_stem(text: str) -> str:
    """A participant id made safe for a file name."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:64] or "participant"


@dataclass(eq=False)
class Publication:
    """A track a participant publishes into the room."""

    participant_id: str
    kind: str
    codec: str
    track_id: str
    mid: str
    source: PassthroughSource


@dataclass(eq=False)
class Slot:
    """A receive m-line of a participant, which the hub fills with a publication."""

    participant_id: str
    kind: str
    codec: str
    mid: str
    track: PassthroughTrack
    publication: Publication | None = None


@dataclass(frozen=True)
class SlotInfo:
    """What a participant's receive m-line carries, for the signaling layer."""

    mid: str
    kind: str
    codec: str
    publisher: str | None
    track_id: str | None
    transcoding: bool


@dataclass(eq=False)
class Participant:
    id: str
    role: Role
    pc: RTCPeerConnection
    publications: list[Publication] = field(default_factory=list)
    slots: list[Slot] = field(default_factory=list)


@dataclass(eq=False)
class Room:
    id: str
    session_start: float
    recording_dir: Path | None = None
    participants: dict[str, Participant] = field(default_factory=dict)
    recorders: dict[int, TrackRecorder] = field(default_factory=dict)  # id(publication)
    finished: list[RecordedFile] = field(default_factory=list)
    file_counts: dict[str, int] = field(default_factory=dict)
    closed: bool = False

    def publications(self) -> list[Publication]:
        return [p for participant in self.participants.values() for p in participant.publications]


def parse_offer(offer_sdp: str) -> sdp.SessionDescription:
    """The offer as aiortc reads it, or OfferRejected for what aiortc would refuse later.

    aiortc's parser raises whatever its string handling meets (ValueError, KeyError, IndexError,
    AttributeError ...) on malformed input, so any exception here is `bad_sdp`.
    """
    try:
        description = sdp.SessionDescription.parse(offer_sdp)
    except Exception as exc:  # noqa: BLE001 - see the docstring
        raise OfferRejected("bad_sdp", f"unparseable offer: {type(exc).__name__}") from exc
    media = [m for m in description.media if m.kind in ("audio", "video")]
    if not media:
        raise OfferRejected("no_media", "the offer has no audio or video m-line")
    for m in description.media:  # the checks setRemoteDescription makes, before anything is torn down
        if not m.ice.usernameFragment or not m.ice.password:
            raise OfferRejected("bad_sdp", "an m-line has no ICE username fragment or password")
        if not m.dtls or not m.dtls.fingerprints:
            raise OfferRejected("bad_sdp", "an m-line has no DTLS fingerprint")
        if m.kind in ("audio", "video") and not m.rtcp_mux:
            raise OfferRejected("bad_sdp", "RTCP mux is not enabled")
    return description

@dataclass(frozen=True)
class HubLoad:
    """What the hub carries now, counted for metrics (cheap: no awaits, no aiortc calls)."""

    rooms: int
    participants: int
    published: dict[str, int]  # kind -> tracks coming into the hub
    forwarded: dict[str, int]  # kind -> slots carrying a publication out of the hub
    recording: int  # tracks being recorded


@dataclass(frozen=True)
class InboundRtp:
    """One incoming RTP stream's receive counters (aiortc's `inbound-rtp` stats).

    `key` stays the same for the stream's life, so a reader can turn these running
    per-stream totals into counters that survive streams coming and going.
    """

    key: str
    kind: str
    packets_received: int
    packets_lost: int


class MediaHub:
    """Rooms of participants whose media the hub forwards and records.

    Construct it in the application's lifespan (nothing happens at import),
    set the callbacks, and drive it from signaling with `handle_offer`,
    `remove_participant` and `close_room`.
    """

    def __init__(
        self,
        *,
        ice_servers: Sequence[RTCIceServer] | Callable[[], Sequence[RTCIceServer]] = (),
        host_addresses: Sequence[str] | None = None,
        pli_min_interval: float = DEFAULT_PLI_MIN_INTERVAL,
        release_on_marker: bool = True,
    ) -> None:
        self._release_on_marker = release_on_marker
        # A callable is asked once per peer connection: TURN REST credentials expire, so each
        # peer gets one minted when it is made.
        self._ice_servers = ice_servers
        self._host_addresses = choose_host_addresses(host_addresses)
        if not self._host_addresses:
            raise ValueError("the hub needs at least one host address to advertise")
        self._pli_min_interval = pli_min_interval
        self._rooms: dict[str, Room] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.recording_totals = RecordingTotals()
        self.on_track_published: Callback | None = None
        self.on_recording_finished: Callback | None = None
        self.on_fallback_transcode: Callback | None = None
        self.on_slots_changed: Callback | None = None
        self.on_participant_left: Callback | None = None

    @property
    def host_addresses(self) -> list[str]:
        return list(self._host_addresses)

    def _current_ice_servers(self) -> list[RTCIceServer]:
        servers = self._ice_servers
        return list(servers() if callable(servers) else servers)

    # -- rooms -----------------------------------------------------------------------

    def open_room(
        self,
        room_id: str,
        *,
        recording_dir: Path | None = None,
        session_start: float | None = None,
    ) -> Room:
        """Create the room (idempotent); with ``recording_dir`` every track is recorded.

        ``session_start`` (epoch seconds) is time zero of every recording of the
        room; by default, now.
        """
        room = self._rooms.get(room_id)
        if room is not None and room.closed:
            raise RoomClosed(message=f"room {room_id} is closed")
        if room is None:
            room = Room(id=room_id, session_start=session_start if session_start is not None else time.time())
            self._rooms[room_id] = room
        if recording_dir is not None and room.recording_dir is None:
            room.recording_dir = Path(recording_dir)
            for publication in room.publications():
                self._start_recorder(room, publication)
        return room

    def room(self, room_id: str) -> Room | None:
        return self._rooms.get(room_id)

    async def close_room(self, room_id: str) -> list[RecordedFile]:
        """Stop every peer, close the recorders, write the manifest; returns the files."""
        room = self._rooms.get(room_id)
        if room is None or room.closed:
            return []
        room.closed = True
        for participant_id in list(room.participants):
            await self._remove(room, participant_id, reason="room_closed", reassign=False)
        for recorder in list(room.recorders.values()):
            self._finish_recorder(room, recorder)
        room.recorders.clear()
        del self._rooms[room_id]
        if room.recording_dir is None:
            return []
        manifest = write_manifest(room.recording_dir / MANIFEST_NAME, room.finished, room=room_id)
        await self._notify(self.on_recording_finished, room_id, list(room.finished), manifest)
        return list(room.finished)

    async def close(self) -> None:
        """Close every room (at application shutdown)."""
        for room_id in list(self._rooms):
            await self.close_room(room_id)
        for task in list(self._tasks):
            task.cancel()

    # -- participants ----------------------------------------------------------------

    async def handle_offer(self, room_id: str, participant_id: str, role: Role | str, offer_sdp: str) -> str:
        """Answer a participant's offer; returns the answer SDP.

        A participant that offers again (a reconnect) replaces its old peer.
        Raises `OfferRejected` for SDP the hub cannot answer.
        """
        role = Role(role)
        # Everything that can refuse the offer by reading it comes first: a refused re-offer keeps
        # the participant's working peer.
        description = parse_offer(offer_sdp)
        room = self.open_room(room_id)
        if participant_id in room.participants:
            await self._remove(room, participant_id, reason="replaced")

        pc = RTCPeerConnection(rtc_configuration(self._current_ice_servers()))
        participant = Participant(participant_id, role, pc)
        try:
            transceivers = self._prepare(participant, description)
            await pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
            for transceiver, m in transceivers:
                if transceiver.mid != m.rtp.muxId:
                    raise OfferRejected("mline_mismatch", f"m-line {m.rtp.muxId} bound to {transceiver.mid}")
            advertise_host_addresses(pc, self._host_addresses)
            await pc.setLocalDescription(await pc.createAnswer())
        except OfferRejected:
            await self._discard(participant)
            raise
        except Exception as exc:
            await self._discard(participant)
            raise OfferRejected("negotiation_failed", f"{type(exc).__name__}: {exc}") from exc
        self._learn_codecs(participant, transceivers)

        room.participants[participant_id] = participant
        self._watch(room, participant)
        for publication in participant.publications:
            logger.info("room %s: %s publishes %s %s", room_id, participant_id, publication.kind, publication.codec)
            if room.recording_dir is not None:
                self._start_recorder(room, publication)
            await self._notify(self.on_track_published, room_id, participant_id, publication.kind, publication.codec)
        await self._assign(room)
        return str(pc.localDescription.sdp)

    async def remove_participant(self, room_id: str, participant_id: str, reason: str = "left") -> None:
        """Disconnect a participant; its slots elsewhere fall free, its files finish."""
        room = self._rooms.get(room_id)
        if room is not None and participant_id in room.participants:
            await self._remove(room, participant_id, reason=reason)

    def slots(self, room_id: str, participant_id: str) -> list[SlotInfo]:
        """What each receive m-line of the participant currently carries."""
        room = self._rooms.get(room_id)
        if room is None or participant_id not in room.participants:
            return []
        return [self._slot_info(slot) for slot in room.participants[participant_id].slots]

    def publications(self, room_id: str) -> list[Publication]:
        room = self._rooms.get(room_id)
        return room.publications() if room is not None else []

    def stats(self, room_id: str) -> dict[str, Any]:
        """Counters per publication and per slot (frames, keyframes, PLIs, drops)."""
        room = self._rooms.get(room_id)
        if room is None:
            return {}
        return {
            "publications": [
                {
                    "participant": p.participant_id,
                    "kind": p.kind,
                    "codec": p.codec,
                    "track_id": p.track_id,
                    "frames": p.source.stats.frames,
                    "keyframes": p.source.stats.keyframes,
                    "keyframe_requests": p.source.stats.keyframe_requests,
                    "plis_sent": p.source.stats.plis_sent,
                    "rembs_relayed": p.source.stats.rembs_relayed,
                    "bandwidth_cap": p.source.bandwidth_cap(),
                }
                for p in room.publications()
            ],
            "slots": [
                {
                    "participant": s.participant_id,
                    "mid": s.mid,
                    "kind": s.kind,
                    "publisher": s.publication.participant_id if s.publication else None,
                    "forwarded": s.track.stats.forwarded,
                    "dropped": s.track.stats.dropped,
                    "overflows": s.track.stats.overflows,
                }
                for participant in room.participants.values()
                for s in participant.slots
            ],
        }

    def load(self) -> HubLoad:
        """Rooms, participants and tracks in and out right now, over every room."""
        published = {"audio": 0, "video": 0}
        forwarded = {"audio": 0, "video": 0}
        participants = recording = 0
        for room in self._rooms.values():
            recording += len(room.recorders)
            for participant in room.participants.values():
                participants += 1
                for publication in participant.publications:
                    if not publication.source.ended:
                        published[publication.kind] = published.get(publication.kind, 0) + 1
                for slot in participant.slots:
                    if slot.publication is not None:
                        forwarded[slot.kind] = forwarded.get(slot.kind, 0) + 1
        return HubLoad(len(self._rooms), participants, published, forwarded, recording)

    async def inbound_rtp(self) -> list[InboundRtp]:
        """Receive counters of every incoming stream (packets received and lost on the way in).

        aiortc computes them from the RTP sequence numbers it sees (RFC 3550 A.3); a stream
        reports nothing until its first packet.
        """
        out: list[InboundRtp] = []
        for room in list(self._rooms.values()):
            for participant in list(room.participants.values()):
                for publication in participant.publications:
                    report = await publication.source.receiver.getStats()
                    for stats in report.values():
                        if getattr(stats, "type", None) != "inbound-rtp":
                            continue
                        out.append(InboundRtp(
                            key=f"{room.id}/{participant.id}/{id(participant.pc)}/{stats.ssrc}",
                            kind=publication.kind, packets_received=int(stats.packetsReceived),
                            packets_lost=int(stats.packetsLost)))
        return out

    # -- negotiation -----------------------------------------------------------------

    def _prepare(
        self, participant: Participant, description: sdp.SessionDescription
    ) -> list[tuple[RTCRtpTransceiver, sdp.MediaDescription]]:
        """One transceiver per offered m-line, in order, hooked before the receivers start."""
        pc = participant.pc
        prepared = []
        for m in description.media:
            if m.kind not in ("audio", "video"):
                continue
            offered = m.direction or "sendrecv"
            hub_receives = offered in ("sendonly", "sendrecv") and participant.role.publishes
            hub_sends = offered in ("recvonly", "sendrecv")
            transceiver = pc.addTransceiver(m.kind, direction=_hub_direction(hub_sends, hub_receives))
            transceiver.setCodecPreferences(codec_preferences(m.kind))
            mid = str(m.rtp.muxId)
            if hub_receives:
                source = PassthroughSource(
                    transceiver.receiver,
                    m.kind,
                    track_id=description.webrtc_track_id(m) or mid,
                    pli_min_interval=self._pli_min_interval,
                    release_on_marker=self._release_on_marker,
                )
                participant.publications.append(
                    Publication(participant.id, m.kind, "", source.track_id, mid, source)
                )
            if hub_sends:
                track = PassthroughTrack(m.kind)
                transceiver.sender.replaceTrack(track)
                track.bind_sender(transceiver.sender)
                participant.slots.append(Slot(participant.id, m.kind, "", mid, track))
            prepared.append((transceiver, m))
        return prepared

    def _learn_codecs(
        self, participant: Participant, transceivers: list[tuple[RTCRtpTransceiver, sdp.MediaDescription]]
    ) -> None:
        by_mid = {t.mid: internals.negotiated_codec(t) for t, _m in transceivers}
        for publication in participant.publications:
            codec = by_mid.get(publication.mid)
            publication.codec = codec.name if codec else ""
            publication.source.codec = publication.codec
        for slot in participant.slots:
            codec = by_mid.get(slot.mid)
            slot.codec = codec.name if codec else ""

    def _watch(self, room: Room, participant: Participant) -> None:
        pc = participant.pc

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc.connectionState == "failed" and room.participants.get(participant.id) is participant:
                logger.warning("room %s: %s connection failed", room.id, participant.id)
                self._spawn(self._remove(room, participant.id, reason="connection_failed"))

    # -- forwarding ------------------------------------------------------------------

    async def _assign(self, room: Room) -> None:
        """Fill free slots with publications they do not carry yet (idempotent)."""
        publications = [p for p in room.publications() if not p.source.ended]
        for subscriber in room.participants.values():
            changed = False
            carried = {id(s.publication) for s in subscriber.slots if s.publication is not None}
            for publication in publications:
                if publication.participant_id == subscriber.id or id(publication) in carried:
                    continue
                slot = next(
                    (s for s in subscriber.slots if s.publication is None and s.kind == publication.kind), None
                )
                if slot is None:
                    logger.info(
                        "room %s: %s has no free %s slot for %s/%s",
                        room.id, subscriber.id, publication.kind, publication.participant_id, publication.track_id,
                    )
                    continue
                await self._bind(room, slot, publication)
                carried.add(id(publication))
                changed = True
            if changed:
                await self._notify(self.on_slots_changed, room.id, subscriber.id, self.slots(room.id, subscriber.id))

    async def _bind(self, room: Room, slot: Slot, publication: Publication) -> None:
        slot.publication = publication
        if slot.codec.lower() == publication.codec.lower():
            slot.track.attach(publication.source)
            return
        reason = f"{publication.codec} -> {slot.codec} for {slot.participant_id}"
        logger.warning("room %s: transcoding %s/%s: %s", room.id, publication.participant_id, publication.track_id, reason)
        slot.track.attach(publication.source, converter=frame_decoder(publication.codec))
        await self._notify(self.on_fallback_transcode, room.id, publication.track_id, reason)

    def _slot_info(self, slot: Slot) -> SlotInfo:
        publication = slot.publication
        return SlotInfo(
            mid=slot.mid,
            kind=slot.kind,
            codec=slot.codec,
            publisher=publication.participant_id if publication else None,
            track_id=publication.track_id if publication else None,
            transcoding=slot.track.transcoding,
        )

    # -- recording -------------------------------------------------------------------

    def _start_recorder(self, room: Room, publication: Publication) -> None:
        assert room.recording_dir is not None
        if id(publication) in room.recorders:
            return
        prefix = f"{file_stem(publication.participant_id)}-{publication.kind}"
        number = room.file_counts.get(prefix, 0)
        room.file_counts[prefix] = number + 1
        try:
            recorder = TrackRecorder(
                room.recording_dir / f"{prefix}{number}",
                kind=publication.kind,
                codec=publication.codec,
                session_start=room.session_start,
                participant=publication.participant_id,
                track_id=publication.track_id,
                totals=self.recording_totals,
            )
        except Exception:
            logger.exception("room %s: cannot record %s", room.id, publication.track_id)
            return
        room.recorders[id(publication)] = recorder
        recorder.record(publication.source)

    def _finish_recorder(self, room: Room, recorder: TrackRecorder) -> None:
        recorded = recorder.close()
        if recorded is not None:
            room.finished.append(recorded)

    # -- teardown --------------------------------------------------------------------

    async def _remove(self, room: Room, participant_id: str, *, reason: str, reassign: bool = True) -> None:
        participant = room.participants.pop(participant_id, None)
        if participant is None:
            return
        emptied: list[Participant] = []
        for other in room.participants.values():
            for slot in other.slots:
                if slot.publication is not None and slot.publication.participant_id == participant_id:
                    slot.track.detach()
                    slot.publication = None
                    if other not in emptied:
                        emptied.append(other)
        for publication in participant.publications:
            recorder = room.recorders.pop(id(publication), None)
            if recorder is not None:
                self._finish_recorder(room, recorder)
        await self._discard(participant)
        logger.info("room %s: %s left (%s)", room.id, participant_id, reason)
        await self._notify(self.on_participant_left, room.id, participant_id, reason)
        if reassign:
            # Subscribers whose slots fell empty learn it now, not only when the slots refill.
            for other in emptied:
                await self._notify(self.on_slots_changed, room.id, other.id, self.slots(room.id, other.id))
            await self._assign(room)

    async def _discard(self, participant: Participant) -> None:
        for publication in participant.publications:
            publication.source.close()
        for slot in participant.slots:
            slot.track.stop()
        await participant.pc.close()

    # -- callbacks -------------------------------------------------------------------

    async def _notify(self, callback: Callback | None, *args: Any) -> None:
        """Run a callback; a failing callback is logged, never breaks the media."""
        if callback is None:
            return
        try:
            result = callback(*args)
            if inspect.isawaitable(result):
                await result
        except Exception:
            logger.exception("media hub callback %r failed", callback)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
