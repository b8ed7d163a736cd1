"""Calls meet the media hub: one room per live call, `rtc.offer`, silent monitors, recordings.

A room opens when a clerk accepts (the switchboard's `on_call_connected`) on
the node that accepted -- the call's media node -- and closes when the call
ends or is transferred (`on_call_ended`), or when a periodic check finds the
call no longer live (ended on another node).  Its recordings go to
``<files>/recordings/<call_id>/`` (``<call_id>.2/`` ... for the segment after
a transfer or a restart): inside the file store, because a Recording row
names its file by a store path and `cloudseat verify` hashes it there.

Who may offer: the booth of the call, the clerk serving it, and a supervisor
who sent `monitor.join` first (a supervisor scoped to regions sees only their
regions' calls).  The node holding the socket checks that; when the call's
media node is another one, it relays the request there (`signaling.media_rpc`)
and the client's media flows straight to that node's hub.  The media node
re-checks that the call is live and hosted here before it touches its hub.

What a track is (``face``, ``document``, ``camera``, ``audio``) comes from the
offer's ``tracks`` (mid -> name) or from the m-line order; it names the
recording (``booth-face`` ...) and the `rtc.slots` push, and is kept in
``room.json`` beside the files so a crash recovery can name them too.

On start, `recover` finishes the rooms a crashed process left open (no
manifest): files are remuxed by `media.recover_unclosed`, registered as
recovered, and the manifest's hash goes into the event `recording.recovered`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import av
from sqlmodel import Session

from media import MediaHub, OfferRejected, RecordedFile, Role, RoomClosed, SlotInfo, recover_unclosed, write_manifest
from media.hub import MANIFEST_NAME
from media.recorder import probe, sha256_file
from records.errors import RecordsError
from records.events import append_event
from records.models import CallSession, CallStatus
from records.recordings import add_recording
from records.storage import FileStore
from signaling.connection import Connection
from signaling.media_rpc import MediaNotice, MediaRequest, MediaRpc, new_request_id
from signaling.protocol import (
    ROLE_BOOTH,
    ROLE_SEAT,
    ROLE_SUPERVISOR,
    TRACKS_BY_ROLE,
    MonitorJoin,
    MonitorLeave,
    RtcOffer,
    push,
)
from signaling.switchboard import Refused, Switchboard

logger = logging.getLogger(__name__)

RECORDINGS_DIR = "recordings"
ROOM_FILE = "room.json"
RECONCILE_S = 5.0
BOOTH, CLERK, MONITOR_PREFIX = "booth", "clerk", "monitor-"
_HUB_ROLES = {ROLE_BOOTH: Role.BOOTH, ROLE_SEAT: Role.CLERK, ROLE_SUPERVISOR: Role.MONITOR}
_PROTOCOL_ROLES = {hub: protocol for protocol, hub in _HUB_ROLES.items()}
# Track names in m-line order when an offer does not name them.
_DEFAULT_TRACKS = {BOOTH: {"video": ("face", "document"), "audio": ("audio",)},
                   CLERK: {"video": ("camera",), "audio": ("audio",)}}
_MID_LINE = re.compile(r"^a=mid:(\S+)\s*$", re.MULTILINE)
_MEDIA_SUFFIXES = (".webm", ".mkv")


@dataclass(eq=False)
class CallRoom:
    """This node's media state of one live call."""

    call_id: str
    directory: Path
    booth_id: int
    clerk_id: int | None
    region: str
    mids: dict[str, dict[str, str]] = field(default_factory=dict)  # participant -> mid -> track name
    names: dict[str, dict[str, str]] = field(default_factory=dict)  # participant -> track id -> track name
    # supervisor user id -> its socket here, or the id of the node holding it
    monitors: dict[int, Connection | str] = field(default_factory=dict)
    offering: set[str] = field(default_factory=set)  # their `rtc.offer` ack carries the slots
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    closing: asyncio.Task[None] | None = None


@dataclass(frozen=True, eq=False)
class RemoteMonitor:
    """A supervisor socket here monitoring a call whose media lives on `node`."""

    conn: Connection
    node: str


def participant_of(conn: Connection) -> str:
    if conn.role == ROLE_BOOTH:
        return BOOTH
    if conn.role == ROLE_SEAT:
        return CLERK
    return f"{MONITOR_PREFIX}{conn.principal.user_id}"


def offered_mids(sdp: str) -> list[str]:
    """The mids of an SDP's m-lines, in order (a plain scan; the hub parses it properly)."""
    return _MID_LINE.findall(sdp)


def named_mids(role: str, tracks: dict[str, str] | None, sdp: str) -> dict[str, str]:
    """The offer's mid -> track name, checked against what `role` publishes and the SDP's m-lines."""
    tracks = dict(tracks or {})
    allowed = TRACKS_BY_ROLE[role]
    for name in tracks.values():
        if name not in allowed:
            raise Refused("bad_track", f"{role} cannot publish a {name} track")
    unknown = set(tracks) - set(offered_mids(sdp))
    if unknown:
        raise Refused("bad_track", f"tracks names m-lines the offer lacks: {', '.join(sorted(unknown))}")
    if len(set(tracks.values())) != len(tracks):
        raise Refused("bad_track", "each track name may be used once")
    return tracks


def recording_track(participant: str, name: str) -> str:
    """The Recording row's track: ``booth-face``, ``clerk-camera`` ..."""
    return f"{participant}-{name}"


def segment_directory(root: Path, call_id: str) -> Path:
    """``<root>/<call_id>``, or ``<call_id>.2``, ``.3`` ... when earlier segments exist."""
    candidate = root / call_id
    number = 1
    while candidate.exists():
        number += 1
        candidate = root / f"{call_id}.{number}"
    return candidate


def _aware(dt: datetime | None) -> datetime:
    assert dt is not None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=timezone.utc)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1))
    os.replace(tmp, path)


class MediaFlow:
    """Binds this node's switchboard to its media hub and the records."""

    def __init__(self, sb: Switchboard, hub: MediaHub, store: FileStore) -> None:
        self.sb = sb
        self.hub = hub
        self.store = store
        self.root = store.root / RECORDINGS_DIR
        self.rooms: dict[str, CallRoom] = {}
        self._opening: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._reconciler: asyncio.Task[None] | None = None
        # (call id, supervisor user id) -> the socket here monitoring a call hosted elsewhere
        self.remote_monitors: dict[tuple[str, int], RemoteMonitor] = {}
        self.rpc = MediaRpc(sb.bus, sb.node_id, serve=self.serve_remote, notice=self.take_notice)
        hub.on_slots_changed = self._slots_changed
        hub.on_recording_finished = self._recording_finished
        hub.on_fallback_transcode = self._transcoding
        hub.on_participant_left = self._participant_left

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Recover what a crash left, hook into the switchboard, answer other nodes, start the live-call check."""
        self.root.mkdir(parents=True, exist_ok=True)
        await self.recover()
        self.sb.on_call_connected = self.call_connected
        self.sb.on_call_ended = self.call_ended
        await self.rpc.start()
        self._reconciler = asyncio.create_task(self._reconcile_loop(), name="media-reconcile")

    async def stop(self) -> None:
        """Stop answering other nodes, close every room (recordings finished and registered)."""
        await self.rpc.stop()
        if self._reconciler is not None:
            self._reconciler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconciler
        for call_id in list(self.rooms):
            self._close_soon(call_id, reason="shutdown")
        await self.settled()
        await self.hub.close()

    async def settled(self) -> None:
        """Wait until every room closing now has finished registering its recordings."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # ------------------------------------------------------------------ rooms
    async def call_connected(self, call_id: str) -> None:
        """A clerk accepted here: open the call's room (recording from the answer time)."""
        call = await self.sb.ledger.call(call_id)
        if call is not None and call.status is CallStatus.ACTIVE:
            await self._room_for(call)

    async def call_ended(self, call_id: str) -> None:
        """The call ended or was transferred: close its room in the background."""
        self._close_soon(call_id, reason="call_ended")

    async def _room_for(self, call: CallSession) -> CallRoom:
        lock = self._opening.setdefault(call.id, asyncio.Lock())
        async with lock:
            room = self.rooms.get(call.id)
            if room is not None and room.closing is not None:
                await asyncio.gather(room.closing, return_exceptions=True)  # a transfer's last segment
                room = self.rooms.get(call.id)
            if room is not None and room.clerk_id == call.clerk_id:
                return room
            if room is not None:  # answered again by another clerk: a new segment
                self._close_soon(call.id, reason="reanswered")
                await asyncio.gather(*[t for t in [room.closing] if t is not None], return_exceptions=True)
            directory = segment_directory(self.root, call.id)
            directory.mkdir(parents=True)
            room = CallRoom(call.id, directory, call.booth_id, call.clerk_id, call.region_code)
            self.rooms[call.id] = room
            self._save(room)
            answered = _aware(call.answered_at).timestamp() if call.answered_at else time.time()
            self.hub.open_room(call.id, recording_dir=directory, session_start=answered)
            logger.info("call %s: media room open in %s", call.id, directory)
            return room

    def _close_soon(self, call_id: str, *, reason: str) -> None:
        room = self.rooms.get(call_id)
        if room is None or room.closing is not None:
            return
        room.closing = self._spawn(self._close(room, reason))

    async def _close(self, room: CallRoom, reason: str) -> None:
        try:
            async with room.lock:
                for user_id in list(room.monitors):
                    await self._monitor_left(room, user_id, reason=reason)
                await self.hub.close_room(room.call_id)  # -> _recording_finished
        finally:
            if self.rooms.get(room.call_id) is room:
                del self.rooms[room.call_id]
                lock = self._opening.get(room.call_id)
                if lock is not None and not lock.locked():
                    del self._opening[room.call_id]

    async def _reconcile_loop(self) -> None:
        while True:
            await asyncio.sleep(RECONCILE_S)  # a periodic check, not a synchronisation
            try:
                for call_id, room in list(self.rooms.items()):
                    call = await self.sb.ledger.call(call_id)
                    if call is None or call.status is not CallStatus.ACTIVE or call.clerk_id != room.clerk_id:
                        self._close_soon(call_id, reason="call_not_live")
            except Exception:  # noqa: BLE001 - try again next period
                logger.exception("media room check failed")

    # ------------------------------------------------------------------ requests
    async def _live_call(self, call_id: str) -> CallSession:
        call = await self.sb.ledger.call(call_id)
        if call is None or call.status is not CallStatus.ACTIVE:
            raise Refused("call_not_found", "no live call with that id")
        return call

    def _remote_node(self, call: CallSession) -> str | None:
        """The call's media node when it is another one than this."""
        return call.media_node if call.media_node not in (None, self.sb.node_id) else None

    def _check_party(self, conn: Connection, call: CallSession) -> None:
        p = conn.principal
        if conn.role == ROLE_BOOTH and call.booth_id != p.booth_id:
            raise Refused("call_not_found", "no live call with that id for this booth")
        if conn.role == ROLE_SEAT and call.clerk_id != p.user_id:
            raise Refused("call_not_found", "no live call of yours with that id")
        if conn.role == ROLE_SUPERVISOR and p.regions and call.region_code not in p.regions:
            raise Refused("call_not_found", "no live call with that id in your regions")

    def _request(self, op: str, call: CallSession, conn: Connection, **fields: Any) -> MediaRequest:
        """What the media node needs to run `op` for this authorised socket, and nothing more."""
        role = _HUB_ROLES[conn.role]
        return MediaRequest(op=op, request_id=new_request_id(), origin=self.sb.node_id, call_id=call.id,
                            participant=participant_of(conn), role=role.value,
                            user_id=conn.principal.user_id if role is Role.MONITOR else None, **fields)

    async def rtc_offer(self, conn: Connection, msg: RtcOffer) -> dict[str, Any]:
        call = await self._live_call(msg.call_id)
        self._check_party(conn, call)
        mids = named_mids(conn.role, msg.tracks, msg.sdp)
        user_id = conn.principal.user_id or 0
        node = self._remote_node(call)
        if node is not None:
            if conn.role == ROLE_SUPERVISOR:
                remote = self.remote_monitors.get((call.id, user_id))
                if remote is None or remote.conn is not conn:
                    raise Refused("not_monitoring", "send monitor.join for this call first")
            return await self.rpc.request(node, self._request("rtc.offer", call, conn, sdp=msg.sdp, tracks=mids))
        if conn.role == ROLE_SUPERVISOR:
            room = self.rooms.get(call.id)
            if room is None or room.monitors.get(user_id) is not conn:
                raise Refused("not_monitoring", "send monitor.join for this call first")
        return await self._offer(call, participant_of(conn), _HUB_ROLES[conn.role], msg.sdp, mids)

    async def _offer(self, call: CallSession, participant: str, role: Role, sdp: str,
                     mids: dict[str, str]) -> dict[str, Any]:
        """Connect `participant`'s peer to this node's hub (the party is already authorised)."""
        room = await self._room_for(call)
        async with room.lock:
            if room.closing is not None:
                raise Refused("call_not_found", "the call is ending")
            previous_mids = room.mids.get(participant)
            room.mids[participant] = mids
            room.offering.add(participant)
            try:
                answer = await self.hub.handle_offer(call.id, participant, role, sdp)
            except OfferRejected as exc:
                if previous_mids is not None:  # a refused re-offer leaves the working peer as it was
                    room.mids[participant] = previous_mids
                raise Refused(exc.code, exc.message) from None
            except RoomClosed:
                raise Refused("call_not_found", "the call is ending") from None
            finally:
                room.offering.discard(participant)
            for publication in self.hub.publications(call.id):
                if publication.participant_id == participant:
                    room.names.setdefault(participant, {})[publication.track_id] = \
                        self._track_name(room, participant, publication.track_id)
            await asyncio.to_thread(self._save, room)
            slots = self.slots_payload(room, participant)
        logger.info("call %s: %s connected its media", call.id, participant)
        # The other party's offer may bind tracks (and push rtc.slots) between our lock release
        # and our ack, which then reaches the client after that push with an older list.  A push
        # of the current slots, queued behind the ack (this task runs after the ack is sent),
        # settles the client on the latest state.
        self._spawn(self._slots_changed(call.id, participant, self.hub.slots(call.id, participant)))
        return {"call_id": call.id, "sdp": answer, "slots": slots}

    async def monitor_join(self, conn: Connection, msg: MonitorJoin) -> dict[str, Any]:
        call = await self._live_call(msg.call_id)
        self._check_party(conn, call)
        user_id = conn.principal.user_id or 0
        node = self._remote_node(call)
        if node is not None:
            ack = await self.rpc.request(node, self._request("monitor.join", call, conn))
            self.remote_monitors[(call.id, user_id)] = RemoteMonitor(conn, node)
            return ack
        return await self._join(call, user_id, conn, actor=conn.principal.actor)

    async def _join(self, call: CallSession, user_id: int, where: Connection | str, *, actor: str) -> dict[str, Any]:
        """Make `user_id` a monitor of the call's room here; `where` is its socket or the node holding it."""
        room = await self._room_for(call)
        async with room.lock:
            if room.closing is not None:
                raise Refused("call_not_found", "the call is ending")
            known = room.monitors.get(user_id)
            room.monitors[user_id] = where
        if known is None:
            data: dict[str, Any] = {"user_id": user_id, "node": self.sb.node_id}
            if isinstance(where, str):
                data["via"] = where  # the node holding the supervisor's socket
            await self.sb.ledger.event("monitor.joined", actor=actor, session_id=call.id,
                                       booth_id=call.booth_id, data=data)
        return {"call_id": call.id, "media_node": self.sb.node_id, "tracks": self.publications_payload(room)}

    async def monitor_leave(self, conn: Connection, msg: MonitorLeave) -> dict[str, Any]:
        user_id = conn.principal.user_id or 0
        remote = self.remote_monitors.pop((msg.call_id, user_id), None)
        if remote is not None:
            await self._leave_remote(remote, msg.call_id, reason="left")
            return {"call_id": msg.call_id}
        room = self.rooms.get(msg.call_id)
        if room is None or user_id not in room.monitors:
            raise Refused("not_monitoring", "you are not monitoring that call")
        async with room.lock:
            await self._monitor_left(room, user_id, reason="left")
        return {"call_id": msg.call_id}

    async def _leave_remote(self, remote: RemoteMonitor, call_id: str, *, reason: str) -> None:
        user_id = remote.conn.principal.user_id or 0
        request = MediaRequest(op="monitor.leave", request_id=new_request_id(), origin=self.sb.node_id,
                               call_id=call_id, participant=f"{MONITOR_PREFIX}{user_id}", role=Role.MONITOR.value,
                               user_id=user_id, reason=reason)
        await self.rpc.request(remote.node, request)

    async def supervisor_gone(self, conn: Connection) -> None:
        """A supervisor's socket closed: end the monitors it held, here and on other media nodes."""
        user_id = conn.principal.user_id or 0
        for room in list(self.rooms.values()):
            if room.monitors.get(user_id) is conn and room.closing is None:
                async with room.lock:
                    await self._monitor_left(room, user_id, reason="disconnected")
        for key, remote in list(self.remote_monitors.items()):
            if remote.conn is conn:
                del self.remote_monitors[key]
                try:
                    await self._leave_remote(remote, key[0], reason="disconnected")
                except Refused as exc:  # the call ended meanwhile, or its node is gone with its monitor
                    logger.info("call %s: remote monitor of user %d not ended: %s", key[0], user_id, exc.code)

    # ------------------------------------------------------------------ requests from other nodes
    async def serve_remote(self, request: MediaRequest) -> dict[str, Any]:
        """Run a request another node authorised: only for a live call whose media is hosted here."""
        user_id = request.user_id or 0
        if request.op == "monitor.leave":
            room = self.rooms.get(request.call_id)
            if room is None or room.monitors.get(user_id) != request.origin:
                raise Refused("not_monitoring", "you are not monitoring that call")
            async with room.lock:
                await self._monitor_left(room, user_id, reason=request.reason or "left", tell=False)
            return {"call_id": request.call_id}
        call = await self._live_call(request.call_id)
        if call.media_node != self.sb.node_id:
            raise Refused("media_unavailable", f"node {self.sb.node_id} does not host this call's media",
                          node=self.sb.node_id)
        if request.op == "monitor.join":
            return await self._join(call, user_id, request.origin, actor=f"user:{user_id}")
        role = Role(request.role)
        if role is Role.MONITOR:
            room = self.rooms.get(call.id)
            if room is None or room.monitors.get(user_id) != request.origin:
                raise Refused("not_monitoring", "send monitor.join for this call first")
        assert request.sdp is not None  # MediaRequest checked it
        mids = named_mids(_PROTOCOL_ROLES[role], request.tracks, request.sdp)
        return await self._offer(call, request.participant, role, request.sdp, mids)

    async def take_notice(self, notice: MediaNotice) -> None:
        """A media node tells this node about one of its sockets' remote monitors."""
        key = (notice.call_id, notice.user_id)
        remote = self.remote_monitors.get(key)
        if remote is None or remote.node != notice.origin:
            return
        if notice.op == "monitor.slots":
            remote.conn.send(push("rtc.slots", call_id=notice.call_id, slots=notice.slots))
        else:
            del self.remote_monitors[key]

    async def _monitor_left(self, room: CallRoom, user_id: int, *, reason: str, tell: bool = True) -> None:
        where = room.monitors.pop(user_id, None)
        if where is None:
            return
        if isinstance(where, str) and tell:  # ended here (the call ended): its socket's node forgets it
            await self.rpc.notify(where, MediaNotice(op="monitor.ended", origin=self.sb.node_id,
                                                     call_id=room.call_id, user_id=user_id, reason=reason))
        await self.hub.remove_participant(room.call_id, f"{MONITOR_PREFIX}{user_id}", reason=reason)
        await self.sb.ledger.event("monitor.left", actor=f"user:{user_id}", session_id=room.call_id,
                                   booth_id=room.booth_id, data={"user_id": user_id, "reason": reason})

    # ------------------------------------------------------------------ track names and slots
    def _track_name(self, room: CallRoom, participant: str, track_id: str | None) -> str | None:
        if track_id is None:
            return None
        known = room.names.get(participant, {}).get(track_id)
        if known is not None:
            return known
        mine = [p for p in self.hub.publications(room.call_id) if p.participant_id == participant]
        publication = next((p for p in mine if p.track_id == track_id), None)
        if publication is None:
            return None
        named = room.mids.get(participant, {})
        if publication.mid in named:
            return named[publication.mid]
        same_kind = [p for p in mine if p.kind == publication.kind and p.mid not in named]
        defaults = [n for n in _DEFAULT_TRACKS.get(participant, {}).get(publication.kind, ())
                    if n not in named.values()]
        index = same_kind.index(publication)
        return defaults[index] if index < len(defaults) else f"{publication.kind}{index}"

    def _slot_entry(self, room: CallRoom, slot: SlotInfo) -> dict[str, Any]:
        publisher = slot.publisher
        return {"mid": slot.mid, "kind": slot.kind, "publisher": publisher,
                "track": self._track_name(room, publisher, slot.track_id) if publisher else None}

    def slots_payload(self, room: CallRoom, participant: str) -> list[dict[str, Any]]:
        return [self._slot_entry(room, s) for s in self.hub.slots(room.call_id, participant)]

    def publications_payload(self, room: CallRoom) -> list[dict[str, Any]]:
        return [{"publisher": p.participant_id, "kind": p.kind,
                 "track": self._track_name(room, p.participant_id, p.track_id)}
                for p in self.hub.publications(room.call_id)]

    async def _slots_changed(self, room_id: str, participant: str, slots: list[SlotInfo]) -> None:
        room = self.rooms.get(room_id)
        if room is None or participant in room.offering:
            return
        message = push("rtc.slots", call_id=room_id, slots=[self._slot_entry(room, s) for s in slots])
        if participant == BOOTH:
            await self.sb.deliver(f"booth:{room.booth_id}", message)
        elif participant == CLERK and room.clerk_id is not None:
            await self.sb.deliver(f"clerk:{room.clerk_id}", message)
        elif participant.startswith(MONITOR_PREFIX):
            user_id = int(participant[len(MONITOR_PREFIX):])
            where = room.monitors.get(user_id)
            if isinstance(where, str):  # the supervisor's socket is on another node
                try:
                    notice = MediaNotice(op="monitor.slots", origin=self.sb.node_id, call_id=room_id,
                                         user_id=user_id, slots=message["slots"])
                except ValueError as exc:
                    logger.error("call %s: slots of %s cannot be relayed: %s", room_id, participant, exc)
                    return
                await self.rpc.notify(where, notice)
            elif where is not None:
                where.send(message)

    def _save(self, room: CallRoom) -> None:
        """``room.json``: which call the directory belongs to and what each track is."""
        _write_json(room.directory / ROOM_FILE, {"call_id": room.call_id, "tracks": room.names})

    # ------------------------------------------------------------------ hub callbacks
    async def _transcoding(self, room_id: str, track_id: str, reason: str) -> None:
        room = self.rooms.get(room_id)
        await self.sb.ledger.event("media.transcoding", actor="system", session_id=room_id,
                                   booth_id=room.booth_id if room else None,
                                   data={"track_id": track_id, "reason": reason})

    async def _participant_left(self, room_id: str, participant: str, reason: str) -> None:
        if reason == "connection_failed":
            logger.warning("call %s: %s's media connection failed", room_id, participant)

    async def _recording_finished(self, room_id: str, files: list[RecordedFile], manifest: Path) -> None:
        room = self.rooms.get(room_id)
        if room is None:
            return
        if not files:  # a call without media (signaling only): leave nothing behind
            await asyncio.to_thread(_remove_empty, room.directory)
            return
        names = {(f.participant, f.track_id): room.names.get(f.participant, {}).get(f.track_id) for f in files}
        await self.register(room_id, files, manifest, names, kind="recording.finished")

    async def register(self, call_id: str, files: list[RecordedFile], manifest: Path,
                       names: dict[tuple[str, str], str | None], *, kind: str) -> None:
        """Recording rows for ``files`` and one event ``kind`` with the manifest's path and hash."""
        store = self.store
        manifest_path = store.relative(manifest)
        manifest_sha256 = await asyncio.to_thread(sha256_file, manifest)

        def work(session: Session) -> None:
            call = session.get(CallSession, call_id)
            listed = []
            for f in files:
                name = names.get((f.participant, f.track_id)) or f.kind
                track = recording_track(f.participant or "unknown", name)
                row = add_recording(session, store, session_id=call_id, track=track, path=store.relative(f.path),
                                    codec=f.codec, duration_s=f.duration_s, recovered=f.recovered)
                listed.append({"recording_id": row.id, "track": track, "path": row.path, "sha256": row.sha256,
                               "duration_s": round(f.duration_s, 3), "frames": f.frames, "start_s": f.start_s,
                               "recovered": f.recovered})
            append_event(session, kind=kind, actor="system", session_id=call_id,
                         booth_id=call.booth_id if call else None,
                         data={"manifest": manifest_path, "manifest_sha256": manifest_sha256, "files": listed})

        try:
            await self.sb.ledger.run(work)
        except RecordsError as exc:
            logger.error("call %s: recordings not registered: %s", call_id, exc)
            return
        logger.info("call %s: %d recordings registered (%s)", call_id, len(files), kind)

    # ------------------------------------------------------------------ crash recovery
    async def recover(self) -> int:
        """Finish and register the rooms a crashed process left (no manifest); returns how many."""
        found = await asyncio.to_thread(lambda: list(recover_rooms(self.root)))
        for call_id, files, manifest, names in found:
            await self.register(call_id, files, manifest, names, kind="recording.recovered")
        return len(found)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


def recover_rooms(root: Path) -> Iterator[tuple[str, list[RecordedFile], Path, dict[tuple[str, str], str | None]]]:
    """Each room directory without a manifest: recover its files and write the manifest."""
    for directory in sorted(p for p in root.glob("*") if p.is_dir()):
        if (directory / MANIFEST_NAME).exists():
            continue
        try:
            meta = json.loads((directory / ROOM_FILE).read_text())
            call_id = str(meta["call_id"])
            tracks: dict[str, dict[str, str]] = meta.get("tracks", {})
        except (OSError, ValueError, KeyError) as exc:
            logger.error("%s: no readable %s, skipped: %s", directory, ROOM_FILE, exc)
            continue
        files = recover_unclosed(directory)
        seen = {f.path.name for f in files}
        files += [f for f in (_closed_file(p) for p in sorted(directory.iterdir())
                              if p.suffix in _MEDIA_SUFFIXES and p.name not in seen and ".recovering" not in p.name)
                  if f is not None]
        if not files:
            _remove_empty(directory)
            continue
        manifest = write_manifest(directory / MANIFEST_NAME, files, room=call_id)
        names = {(f.participant, f.track_id): tracks.get(f.participant, {}).get(f.track_id) for f in files}
        logger.warning("call %s: recovered %d recording(s) left by a crash in %s", call_id, len(files), directory)
        yield call_id, files, manifest, names


def _closed_file(path: Path) -> RecordedFile | None:
    """A file that closed cleanly before the crash but was never registered (its participant had left)."""
    try:
        with av.open(str(path)) as container:
            stream = container.streams[0]
            kind = stream.type
            codec = {"vp8": "VP8", "opus": "opus", "h264": "H264"}.get(stream.codec_context.name, "")
        found = probe(path)
    except (av.FFmpegError, OSError, IndexError) as exc:
        logger.error("%s: unreadable, not registered: %s", path, exc)
        return None
    if not codec or kind not in ("audio", "video") or found.frames == 0:
        return None
    participant = path.stem.rsplit("-", 1)[0]
    return RecordedFile(path=path, codec=codec, kind=kind, duration_s=found.duration_s, size=path.stat().st_size,
                        sha256=sha256_file(path), frames=found.frames, closed_cleanly=True,
                        start_s=found.start_s, participant=participant)


def _remove_empty(directory: Path) -> None:
    for name in (MANIFEST_NAME, ROOM_FILE):
        (directory / name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        directory.rmdir()


def media_of(conn: Connection) -> MediaFlow:
    flow: MediaFlow | None = getattr(conn.websocket.app.state, "media", None)
    if flow is None:
        raise Refused("media_unavailable", "this node has no media hub")
    return flow


# ---------------------------------------------------------------- handlers (see booth_flow.Handler)
async def rtc_offer(sb: Switchboard, conn: Connection, msg: RtcOffer) -> dict[str, Any]:
    return await media_of(conn).rtc_offer(conn, msg)


async def monitor_join(sb: Switchboard, conn: Connection, msg: MonitorJoin) -> dict[str, Any]:
    return await media_of(conn).monitor_join(conn, msg)


async def monitor_leave(sb: Switchboard, conn: Connection, msg: MonitorLeave) -> dict[str, Any]:
    return await media_of(conn).monitor_leave(conn, msg)
