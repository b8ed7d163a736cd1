"""Media requests relayed between nodes over the bus, so a client never has to move its socket.

A call's media room lives on one node (`CallSession.media_node`).  A booth,
clerk or supervisor whose socket is on another node sends `rtc.offer` /
`monitor.*` as usual; its node authorises it (it knows the principal) and
relays only what the media node needs as a `MediaRequest` on the channel
``media:<media node>``.  The media node re-checks the call, runs the request
against its hub and answers on ``media-reply:<request id>``, a channel the
asking node subscribed to for this one request.  The client's media then flows
straight to the media node's hub: its ICE candidates are in the SDP answer.

While it works on a request the media node sends ``working`` every
`KEEPALIVE_S`, so the asker can tell "slow" from "gone": after `SILENCE_S`
without a word (the media node died, or never listened) the request fails
with `media_unavailable`, well before any overall deadline.

The media node also sends `MediaNotice`s to the node of a remote monitor's
socket: the `rtc.slots` of that monitor, and that the monitor ended (the call
ended).  Everything read from the bus is untrusted JSON: each message is a
small dataclass that validates itself and raises ValueError, and a reply
channel is derived from the request id, never taken from the message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from signaling.bus import Bus, Subscription
from signaling.protocol import MAX_SDP_BYTES, TRACKS_BY_ROLE, ROLE_BOOTH, ROLE_SEAT, ROLE_SUPERVISOR
from signaling.switchboard import Refused

logger = logging.getLogger(__name__)

KEEPALIVE_S = 0.5  # the media node says "working" this often (and at once on receipt)
SILENCE_S = 4.0  # no word for this long: the media node is gone (a live one speaks every 0.5 s)
DEADLINE_S = 30.0  # no answer within this long at all: give up

REQUEST_OPS = ("rtc.offer", "monitor.join", "monitor.leave")
NOTICE_OPS = ("monitor.slots", "monitor.ended")
HUB_ROLES = ("booth", "clerk", "monitor")  # media.Role values
PROTOCOL_ROLE = {"booth": ROLE_BOOTH, "clerk": ROLE_SEAT, "monitor": ROLE_SUPERVISOR}
LEAVE_REASONS = ("left", "disconnected")
MONITOR_PREFIX = "monitor-"
MAX_SLOTS = 16
MAX_ANSWER_BYTES = 64 * 1024
UNAVAILABLE = "media_unavailable"

_REQUEST_ID_RE = re.compile(r"^[0-9a-f]{32}$")
_NODE_RE = re.compile(r"^[^\x00-\x1f\x7f]{1,64}$")
_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_MID_RE = re.compile(r"^[A-Za-z0-9_-]{1,16}$")
_CODE_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_RESERVED_REPLY_KEYS = frozenset({"type", "re", "code", "message"})


def media_channel(node_id: str) -> str:
    """The channel a node listens on for media requests and notices."""
    return f"media:{node_id}"


def reply_channel(request_id: str) -> str:
    """The one-request channel the answer comes back on."""
    return f"media-reply:{request_id}"


def new_request_id() -> str:
    return uuid.uuid4().hex


# ---------------------------------------------------------------- field checks (ValueError)
def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_node(name: str, value: object) -> str:
    if not isinstance(value, str) or not _NODE_RE.match(value):
        raise ValueError(f"{name} must be a node id (1-64 printable characters)")
    return value


def check_call_id(value: object) -> str:
    if not isinstance(value, str) or not _UUID_RE.match(value):
        raise ValueError("call_id must be a lowercase UUID")
    return value


def check_request_id(value: object) -> str:
    if not isinstance(value, str) or not _REQUEST_ID_RE.match(value):
        raise ValueError("request_id must be 32 lowercase hex digits")
    return value


def check_user_id(value: object) -> int:
    if not _is_int(value) or int(value) < 1:  # type: ignore[call-overload]
        raise ValueError("user_id must be a positive integer")
    return int(value)  # type: ignore[call-overload]


def check_sdp(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("sdp must be a string")
    if len(value.encode("utf-8")) > MAX_SDP_BYTES:
        raise ValueError(f"sdp is larger than {MAX_SDP_BYTES} bytes")
    if not value.startswith("v=0") or "\x00" in value:
        raise ValueError("sdp must be a session description starting with v=0, without NUL")
    return value


def check_tracks(role: str, value: object) -> dict[str, str]:
    """mid -> track name, each name one this hub role may publish, each once."""
    if not isinstance(value, dict) or len(value) > 8:
        raise ValueError("tracks must be an object of at most 8 entries")
    allowed = TRACKS_BY_ROLE[PROTOCOL_ROLE[role]]
    for mid, name in value.items():
        if not isinstance(mid, str) or not _MID_RE.match(mid):
            raise ValueError("a tracks key must be an m-line mid")
        if not isinstance(name, str) or name not in allowed:
            raise ValueError(f"a {role} cannot publish a track named {name!r}")
    if len(set(value.values())) != len(value):
        raise ValueError("each track name may be used once")
    return dict(value)


def _optional_name(value: object, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise ValueError(f"{name} must be null or 1-32 letters, digits, _ or -")
    return value


def check_slots(value: object) -> list[dict[str, Any]]:
    """A participant's receive slots as `rtc.slots` carries them, rebuilt from known keys only."""
    if not isinstance(value, list) or len(value) > MAX_SLOTS:
        raise ValueError(f"slots must be a list of at most {MAX_SLOTS}")
    out = []
    for slot in value:
        if not isinstance(slot, dict):
            raise ValueError("a slot must be an object")
        mid = slot.get("mid")
        if mid is not None and (not isinstance(mid, str) or not _MID_RE.match(mid)):
            raise ValueError("a slot's mid must be null or an m-line mid")
        if slot.get("kind") not in ("audio", "video"):
            raise ValueError("a slot's kind must be audio or video")
        out.append({"mid": mid, "kind": slot["kind"], "publisher": _optional_name(slot.get("publisher"), "publisher"),
                    "track": _optional_name(slot.get("track"), "track")})
    return out


def check_publications(value: object) -> list[dict[str, Any]]:
    """The call's published tracks as the `monitor.join` ack carries them."""
    if not isinstance(value, list) or len(value) > MAX_SLOTS:
        raise ValueError(f"tracks must be a list of at most {MAX_SLOTS}")
    out = []
    for item in value:
        if not isinstance(item, dict) or item.get("kind") not in ("audio", "video"):
            raise ValueError("a track must be an object with kind audio or video")
        out.append({"publisher": _optional_name(item.get("publisher"), "publisher"), "kind": item["kind"],
                    "track": _optional_name(item.get("track"), "track")})
    return out


def _require_object(data: object, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValueError(f"a {what} must be a JSON object")
    return data


# ---------------------------------------------------------------- messages
@dataclass(frozen=True)
class MediaRequest:
    """What the client's node asks the media node to do for an authorised participant."""

    KIND: ClassVar[str] = "request"
    op: str
    request_id: str
    origin: str  # the node holding the client's socket
    call_id: str
    participant: str  # "booth", "clerk" or "monitor-<user id>"
    role: str  # the hub role: booth, clerk or monitor
    user_id: int | None = None  # a monitor's supervisor
    sdp: str | None = None  # rtc.offer only
    tracks: dict[str, str] = field(default_factory=dict)  # rtc.offer only: mid -> track name
    reason: str | None = None  # monitor.leave only

    def __post_init__(self) -> None:
        if self.op not in REQUEST_OPS:
            raise ValueError(f"op must be one of {', '.join(REQUEST_OPS)}")
        check_request_id(self.request_id)
        check_node("origin", self.origin)
        check_call_id(self.call_id)
        if self.role not in HUB_ROLES:
            raise ValueError(f"role must be one of {', '.join(HUB_ROLES)}")
        if self.role == "monitor":
            expected = f"{MONITOR_PREFIX}{check_user_id(self.user_id)}"
        elif self.user_id is not None:
            raise ValueError("only a monitor names a user_id")
        else:
            expected = self.role
        if self.participant != expected:
            raise ValueError(f"participant must be {expected!r} for role {self.role}")
        check_tracks(self.role, self.tracks)
        if self.op == "rtc.offer":
            check_sdp(self.sdp)
        elif self.sdp is not None or self.tracks:
            raise ValueError(f"{self.op} carries no sdp or tracks")
        if self.op != "rtc.offer" and self.role != "monitor":
            raise ValueError(f"{self.op} is for monitors only")
        if self.op == "monitor.leave":
            if self.reason not in LEAVE_REASONS:
                raise ValueError(f"reason must be one of {', '.join(LEAVE_REASONS)}")
        elif self.reason is not None:
            raise ValueError(f"{self.op} carries no reason")

    @classmethod
    def from_message(cls, data: object) -> MediaRequest:
        """Parse a bus message; ValueError on anything malformed (unknown keys are ignored)."""
        data = _require_object(data, "request")
        if data.get("kind") != cls.KIND:
            raise ValueError("not a media request")
        tracks = data.get("tracks")
        return cls(op=data.get("op"), request_id=data.get("request_id"), origin=data.get("origin"),  # type: ignore[arg-type]
                   call_id=data.get("call_id"), participant=data.get("participant"),  # type: ignore[arg-type]
                   role=data.get("role"), user_id=data.get("user_id"), sdp=data.get("sdp"),  # type: ignore[arg-type]
                   tracks={} if tracks is None else tracks, reason=data.get("reason"))

    def to_message(self) -> dict[str, Any]:
        return {"kind": self.KIND, "op": self.op, "request_id": self.request_id, "origin": self.origin,
                "call_id": self.call_id, "participant": self.participant, "role": self.role,
                "user_id": self.user_id, "sdp": self.sdp, "tracks": dict(self.tracks), "reason": self.reason}


@dataclass(frozen=True)
class MediaReply:
    """The media node's word on a request: still ``working``, ``ok`` with a result, or an ``error``."""

    kind: str
    request_id: str
    result: dict[str, Any] = field(default_factory=dict)
    code: str = ""
    message: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in ("working", "ok", "error"):
            raise ValueError("kind must be working, ok or error")
        check_request_id(self.request_id)
        if not isinstance(self.result, dict):
            raise ValueError("result must be an object")
        if self.kind == "error":
            if not isinstance(self.code, str) or not _CODE_RE.match(self.code):
                raise ValueError("code must be 1-32 lowercase letters, digits or _")
            if not isinstance(self.message, str) or len(self.message) > 500:
                raise ValueError("message must be a string of at most 500 characters")
        if not isinstance(self.extra, dict) or len(self.extra) > 8:
            raise ValueError("extra must be an object of at most 8 entries")
        for key, value in self.extra.items():
            if not isinstance(key, str) or not _NAME_RE.match(key) or key in _RESERVED_REPLY_KEYS:
                raise ValueError(f"extra key {key!r} is not allowed")
            if value is not None and not isinstance(value, (str, int, float, bool)):
                raise ValueError(f"extra {key} must be a scalar")
            if isinstance(value, str) and len(value) > 200:
                raise ValueError(f"extra {key} is too long")

    @classmethod
    def from_message(cls, data: object) -> MediaReply:
        data = _require_object(data, "reply")
        return cls(kind=data.get("kind"), request_id=data.get("request_id"),  # type: ignore[arg-type]
                   result=data.get("result", {}), code=data.get("code", ""),
                   message=data.get("message", ""), extra=data.get("extra", {}))

    def to_message(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "request_id": self.request_id}
        if self.kind == "ok":
            out["result"] = self.result
        elif self.kind == "error":
            out.update(code=self.code, message=self.message, extra=self.extra)
        return out


@dataclass(frozen=True)
class MediaNotice:
    """The media node tells a remote monitor's node: its ``rtc.slots``, or that the monitor ended."""

    KIND: ClassVar[str] = "notice"
    op: str
    origin: str  # the media node
    call_id: str
    user_id: int
    slots: list[dict[str, Any]] = field(default_factory=list)  # monitor.slots only
    reason: str | None = None  # monitor.ended only

    def __post_init__(self) -> None:
        if self.op not in NOTICE_OPS:
            raise ValueError(f"op must be one of {', '.join(NOTICE_OPS)}")
        check_node("origin", self.origin)
        check_call_id(self.call_id)
        check_user_id(self.user_id)
        check_slots(self.slots)
        if self.op == "monitor.ended":
            _optional_name(self.reason, "reason")
            if self.reason is None or self.slots:
                raise ValueError("monitor.ended carries a reason and no slots")
        elif self.reason is not None:
            raise ValueError("monitor.slots carries no reason")

    @classmethod
    def from_message(cls, data: object) -> MediaNotice:
        data = _require_object(data, "notice")
        if data.get("kind") != cls.KIND:
            raise ValueError("not a media notice")
        slots = data.get("slots")
        return cls(op=data.get("op"), origin=data.get("origin"), call_id=data.get("call_id"),  # type: ignore[arg-type]
                   user_id=data.get("user_id"), slots=[] if slots is None else check_slots(slots),  # type: ignore[arg-type]
                   reason=data.get("reason"))

    def to_message(self) -> dict[str, Any]:
        return {"kind": self.KIND, "op": self.op, "origin": self.origin, "call_id": self.call_id,
                "user_id": self.user_id, "slots": check_slots(self.slots), "reason": self.reason}


def check_result(request: MediaRequest, result: dict[str, Any]) -> dict[str, Any]:
    """The ack a client gets for `request`, rebuilt from the media node's result (ValueError if malformed)."""
    if request.op == "rtc.offer":
        sdp = result.get("sdp")
        if not isinstance(sdp, str) or not sdp.startswith("v=0") or len(sdp.encode("utf-8")) > MAX_ANSWER_BYTES:
            raise ValueError("the answer must be a session description")
        return {"call_id": request.call_id, "sdp": sdp, "slots": check_slots(result.get("slots"))}
    if request.op == "monitor.join":
        return {"call_id": request.call_id, "media_node": check_node("media_node", result.get("media_node")),
                "tracks": check_publications(result.get("tracks"))}
    return {"call_id": request.call_id}


def unavailable(node: str, why: str) -> Refused:
    return Refused(UNAVAILABLE, f"the media node {node} {why}", node=node)


# ---------------------------------------------------------------- transport
Serve = Callable[[MediaRequest], Awaitable[dict[str, Any]]]
Notice = Callable[[MediaNotice], Awaitable[None]]


class MediaRpc:
    """Request/response between nodes over the bus: asks other nodes, answers for this one."""

    def __init__(self, bus: Bus, node_id: str, *, serve: Serve, notice: Notice, keepalive_s: float = KEEPALIVE_S,
                 silence_s: float = SILENCE_S, deadline_s: float = DEADLINE_S) -> None:
        self.bus = bus
        self.node_id = node_id
        self._serve = serve
        self._notice = notice
        self.keepalive_s = keepalive_s
        self.silence_s = silence_s
        self.deadline_s = deadline_s
        self._sub: Subscription | None = None
        self._listener: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Answer requests sent to this node from now on."""
        self._sub = await self.bus.subscribe(media_channel(self.node_id))
        self._listener = asyncio.create_task(self._listen(self._sub), name=f"media-rpc-{self.node_id}")

    async def stop(self) -> None:
        """Stop answering; requests being handled are cancelled (their askers time out)."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.close()
            self._sub = None

    # ------------------------------------------------------------------ asking
    async def request(self, node: str, request: MediaRequest) -> dict[str, Any]:
        """Run `request` on `node` and return the client's ack; `Refused` with the media node's
        code, or `media_unavailable` when it does not answer."""
        try:
            sub = await self.bus.subscribe(reply_channel(request.request_id))
        except Exception as exc:  # noqa: BLE001 - e.g. Redis away: the media node is out of reach
            logger.warning("media request %s to %s: bus unavailable: %s", request.op, node, exc)
            raise unavailable(node, "cannot be reached") from None
        try:
            try:
                await self.bus.publish(media_channel(node), request.to_message())
            except Exception as exc:  # noqa: BLE001
                logger.warning("media request %s to %s: bus unavailable: %s", request.op, node, exc)
                raise unavailable(node, "cannot be reached") from None
            return await self._await_answer(node, request, sub)
        finally:
            await sub.close()

    async def _await_answer(self, node: str, request: MediaRequest, sub: Subscription) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.deadline_s
        while True:
            wait = min(self.silence_s, deadline - loop.time())
            if wait <= 0:
                raise unavailable(node, f"did not answer within {self.deadline_s:.0f} s")
            try:
                raw = await asyncio.wait_for(anext(sub), wait)
            except (TimeoutError, StopAsyncIteration):
                logger.warning("media request %s for call %s: node %s is silent", request.op, request.call_id, node)
                raise unavailable(node, "does not answer") from None
            try:
                reply = MediaReply.from_message(raw)
            except ValueError as exc:
                logger.warning("media request %s: malformed reply from %s ignored: %s", request.op, node, exc)
                continue
            if reply.request_id != request.request_id or reply.kind == "working":
                continue
            if reply.kind == "error":
                raise Refused(reply.code, reply.message, **reply.extra)
            try:
                return check_result(request, reply.result)
            except ValueError as exc:
                logger.error("media request %s: malformed result from %s: %s", request.op, node, exc)
                raise unavailable(node, "answered nonsense") from None

    async def notify(self, node: str, notice: MediaNotice) -> None:
        """Send a notice; it is lost (logged) if the bus is away, as a push to a gone socket is."""
        try:
            await self.bus.publish(media_channel(node), notice.to_message())
        except Exception as exc:  # noqa: BLE001
            logger.warning("media notice %s to %s lost: %s", notice.op, node, exc)

    # ------------------------------------------------------------------ answering
    async def _listen(self, sub: Subscription) -> None:
        async for raw in sub:
            kind = raw.get("kind") if isinstance(raw, dict) else None
            if kind == MediaRequest.KIND:
                self._spawn(self._answer(raw))
            elif kind == MediaNotice.KIND:
                self._spawn(self._take_notice(raw))
            else:
                logger.warning("media channel: a message of unknown kind %r dropped", kind)

    async def _take_notice(self, raw: dict[str, Any]) -> None:
        try:
            notice = MediaNotice.from_message(raw)
        except ValueError as exc:
            logger.warning("media channel: malformed notice dropped: %s", exc)
            return
        try:
            await self._notice(notice)
        except Exception:  # noqa: BLE001 - one notice must not stop the listener
            logger.exception("media notice %s failed", notice.op)

    async def _answer(self, raw: dict[str, Any]) -> None:
        request_id = raw.get("request_id")
        if not isinstance(request_id, str) or not _REQUEST_ID_RE.match(request_id):
            logger.warning("media channel: a request without a valid request_id dropped")
            return
        try:
            request = MediaRequest.from_message(raw)
        except ValueError as exc:
            logger.warning("media channel: malformed request %s refused: %s", request_id, exc)
            await self._reply(MediaReply("error", request_id, code="bad_request", message=str(exc)[:500]))
            return
        keepalive = asyncio.create_task(self._keepalive(request_id))
        try:
            reply = MediaReply("ok", request_id, result=await self._serve(request))
        except Refused as exc:
            reply = _error_reply(request_id, exc)
        except Exception:  # noqa: BLE001 - the asker gets an error, the node goes on
            logger.exception("media request %s for call %s failed", request.op, request.call_id)
            reply = MediaReply("error", request_id, code=UNAVAILABLE, message="the media node could not handle it",
                               extra={"node": self.node_id})
        finally:
            keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keepalive
        await self._reply(reply)

    async def _keepalive(self, request_id: str) -> None:
        while True:
            await self._reply(MediaReply("working", request_id))
            await asyncio.sleep(self.keepalive_s)  # the keepalive period itself

    async def _reply(self, reply: MediaReply) -> None:
        try:
            await self.bus.publish(reply_channel(reply.request_id), reply.to_message())
        except Exception as exc:  # noqa: BLE001 - the asker will time out
            logger.warning("media reply %s lost: %s", reply.request_id, exc)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _error_reply(request_id: str, exc: Refused) -> MediaReply:
    try:
        return MediaReply("error", request_id, code=exc.code, message=exc.message[:500], extra=dict(exc.extra))
    except ValueError:  # an extra that cannot travel: the code and message still do
        return MediaReply("error", request_id, code=exc.code, message=exc.message[:500])
