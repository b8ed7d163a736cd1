"""The switchboard: this node's sockets, delivery across nodes, routing and sweeps.

One per server process.  It owns the sockets connected here and speaks to
the rest of the cluster only through the bus:

- delivery: a message for `booth:3` goes to the local socket, or is
  published on the channel of the node whose presence entry holds it;
- routing: every node runs the same loop (expire offers, route while
  possible, push queue positions); the bus makes each step atomic, so
  several nodes routing at once never double-offer;
- sweeps: heartbeats (silent sockets are closed), presence refresh, and
  reconciliation — this node re-asserts its own booths' queued calls and
  clerks' states into the bus (idempotently), which is how queued calls
  survive a Redis restart, and calls whose booth or clerk vanished for
  longer than the grace period are abandoned or ended.

Handlers for each role's messages live in `booth_flow`, `seat_flow` and
`wall`; they call back into this class.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from records.errors import RecordsError
from records.models import CallSession, CallStatus, as_utc
from signaling.bus import Bus, Offer
from signaling.connection import Connection, ConnectionLimits
from signaling.ledger import ItemInfo, Ledger
from signaling.protocol import CLOSE_HEARTBEAT, CLOSE_REPLACED, push
from signaling.routing import ClerkState, QueuedCall, estimate_wait
from signaling.turn_credentials import IceConfig, refresh_due

logger = logging.getLogger(__name__)

WALL_CHANNEL = "wall"


def node_channel(node_id: str) -> str:
    return f"node:{node_id}"


def wall_visible(scope: Collection[str], message: dict[str, Any]) -> bool:
    """Whether a supervisor scoped to `scope` (empty: every region) may get this wall push.

    A push names its region (`region`: a booth's, a call's, an alert's) or, for a clerk,
    the regions the clerk serves (`regions`).  A push that names neither concerns no region
    a scoped supervisor could be shown, so only unscoped supervisors get it.
    """
    if not scope:
        return True
    region = message.get("region")
    alert = message.get("alert")
    if region is None and isinstance(alert, dict):
        region = alert.get("region_code")
    if isinstance(region, str):
        return region in scope
    regions = message.get("regions")
    if isinstance(regions, list):
        return any(r in scope for r in regions)
    return False


def queue_entry(call: QueuedCall, *, offered_to: str | None, booth_name: str, item: ItemInfo | None,
                now: float) -> dict[str, Any]:
    """One waiting call as the wall shows it (snapshot and `wall.queue` alike)."""
    return {"call_id": call.call_id, "booth_id": int(call.booth_id), "booth_name": booth_name,
            "region": call.region, "item_code": call.item_code,
            "item_name_zh": item.name_zh if item else "", "item_name_en": item.name_en if item else "",
            "skill": call.skill, "priority": call.priority, "enqueued_at": call.enqueued_at,
            "waiting_s": round(now - call.enqueued_at, 1),
            "offered_to": int(offered_to) if offered_to is not None else None}


def live_call_entry(call: CallSession, *, booth_name: str, clerk_name: str,
                    item: ItemInfo | None) -> dict[str, Any]:
    """One live call as the wall shows it (snapshot and `wall.call` alike)."""
    started = call.answered_at or call.queued_at
    return {"call_id": call.id, "booth_id": call.booth_id, "booth_name": booth_name, "region": call.region_code,
            "clerk_id": call.clerk_id, "clerk_name": clerk_name, "item_code": call.item_code,
            "item_name_zh": item.name_zh if item else "", "item_name_en": item.name_en if item else "",
            "started_at": as_utc(started).timestamp(), "media_node": call.media_node}


class Refused(Exception):
    """A handler refuses a request; becomes an `error` reply with this stable code."""

    def __init__(self, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra


@dataclass(frozen=True)
class LiveCall:
    """What relaying a chat line needs of a live call: who is on each end."""

    id: str
    booth_id: int
    clerk_id: int


@dataclass
class SwitchboardStats:
    """Running totals of this node's routing, plain ints for metrics; never reset."""

    offers: int = 0  # offers this node made (each rings one clerk once)
    offers_expired: int = 0  # offers this node found unanswered at their deadline
    abandons: dict[str, int] = field(default_factory=dict)  # reason -> calls that ended unanswered here


@dataclass(frozen=True)
class SwitchboardConfig:
    node_id: str
    limits: ConnectionLimits = ConnectionLimits()
    offer_timeout_s: float = 20.0
    reconnect_grace_s: float = 30.0  # a booth or clerk that vanished this long loses its call
    tick_s: float = 1.0  # routing loop period when nothing wakes it
    sweep_s: float = 5.0
    timezone: str = "Asia/Shanghai"
    max_connections: int = 19_000  # below the process's open-file limit (20,000 here)
    slot_minutes: int = 30  # appointment slot length
    ice: IceConfig = IceConfig()  # ICE servers and policy every socket is sent (`ice.servers`)


class Switchboard:
    """This node's part of the signaling cluster."""

    def __init__(self, bus: Bus, ledger: Ledger, config: SwitchboardConfig) -> None:
        self.bus = bus
        self.ledger = ledger
        self.config = config
        self.node_id = config.node_id
        self.stats = SwitchboardStats()
        self.booths: dict[int, Connection] = {}
        self.clerks: dict[int, Connection] = {}
        self.supervisors: dict[int, set[Connection]] = {}
        self.booth_calls: dict[int, str] = {}  # local booth -> its open call
        # local booth -> its live call, as the booth was told (`call.connected` ... `call.ended`):
        # a booth's chat line is relayed without reading the call back from the database.
        self.booth_live: dict[int, LiveCall] = {}
        # clerk -> (status, since) from the `wall.clerk` pushes every node hears: time in state
        # for the wall's snapshot, without a bus write per state change.
        self.clerk_since: dict[int, tuple[str, float]] = {}
        self._last_position: dict[str, tuple[int, int | None, bool]] = {}
        self._lost_since: dict[str, float] = {}
        self._handle_times: tuple[float, list[float]] = (0.0, [])
        self._clerks_online: tuple[float, dict[str, int]] = (-1e9, {})  # region -> count, see clerks_online
        self._wake = asyncio.Event()
        self._wall_outbox: asyncio.Queue[Callable[[], Awaitable[dict[str, Any] | None]]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._subscriptions: list[Any] = []
        self.on_call_connected: Callable[[str], Awaitable[None]] | None = None
        self.on_call_ended: Callable[[str], Awaitable[None]] | None = None  # the media hub closes the room

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        node_sub = await self.bus.subscribe(node_channel(self.node_id))
        wall_sub = await self.bus.subscribe(WALL_CHANNEL)
        self._subscriptions = [node_sub, wall_sub]
        self._tasks = [
            asyncio.create_task(self._listen_node(node_sub), name="switchboard-node"),
            asyncio.create_task(self._listen_wall(wall_sub), name="switchboard-wall"),
            asyncio.create_task(self._wall_sender(), name="switchboard-wall-sender"),
            asyncio.create_task(self._router_loop(), name="switchboard-router"),
            asyncio.create_task(self._sweep_loop(), name="switchboard-sweep"),
        ]
        logger.info("switchboard %s started", self.node_id)

    async def stop(self) -> None:
        await self.ledger.flush()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for sub in self._subscriptions:
            with contextlib.suppress(Exception):
                await sub.close()
        for conn in [*self.booths.values(), *self.clerks.values(),
                     *(c for group in self.supervisors.values() for c in group)]:
            with contextlib.suppress(Exception):
                await conn.close_now(1001)

    @property
    def connection_count(self) -> int:
        return len(self.booths) + len(self.clerks) + sum(len(g) for g in self.supervisors.values())

    def wake_router(self) -> None:
        self._wake.set()

    def presence_ttl(self) -> float:
        return self.config.limits.silence_limit_s + self.config.sweep_s

    # ------------------------------------------------------------------ registry
    async def register(self, conn: Connection) -> None:
        """Make `conn` the socket of its booth or clerk on this node (replacing an older one)."""
        p = conn.principal
        if conn.role == "booth":
            assert p.booth_id is not None
            old = self.booths.get(p.booth_id)
            self.booths[p.booth_id] = conn
        elif conn.role == "seat":
            assert p.user_id is not None
            old = self.clerks.get(p.user_id)
            self.clerks[p.user_id] = conn
        else:
            assert p.user_id is not None
            self.supervisors.setdefault(p.user_id, set()).add(conn)
            old = None
        if old is not None and old is not conn:
            old.close_soon(CLOSE_REPLACED)
        if conn.role in ("booth", "seat"):
            kind = "booth" if conn.role == "booth" else "clerk"
            ident = str(p.booth_id if conn.role == "booth" else p.user_id)
            held = await self.bus.get_presence(kind, ident)  # type: ignore[arg-type]
            if held is not None and held.get("node") not in (None, self.node_id):
                await self.bus.publish(node_channel(held["node"]), {"kick": conn.key, "code": CLOSE_REPLACED})

    def unregister(self, conn: Connection) -> bool:
        """Forget `conn`; False when a newer socket of the same party already replaced it."""
        p = conn.principal
        if conn.role == "booth":
            if self.booths.get(p.booth_id or 0) is conn:
                del self.booths[p.booth_id or 0]
                return True
            return False
        if conn.role == "seat":
            if self.clerks.get(p.user_id or 0) is conn:
                del self.clerks[p.user_id or 0]
                return True
            return False
        group = self.supervisors.get(p.user_id or 0, set())
        group.discard(conn)
        if not group:
            self.supervisors.pop(p.user_id or 0, None)
        return True

    def local(self, key: str) -> Connection | None:
        kind, _, ident = key.partition(":")
        if not ident.isdigit():
            return None
        if kind == "booth":
            return self.booths.get(int(ident))
        if kind == "clerk":
            return self.clerks.get(int(ident))
        return None

    # ------------------------------------------------------------------ delivery
    async def deliver(self, key: str, message: dict[str, Any]) -> bool:
        """Send to a booth or clerk wherever it is connected; False when it is nowhere."""
        conn = self.local(key)
        if conn is not None:
            self._deliver_local(conn, message)
            return True
        kind, _, ident = key.partition(":")
        if kind not in ("booth", "clerk"):
            return False
        presence = await self.bus.get_presence(kind, ident)  # type: ignore[arg-type]
        if presence is None or presence.get("node") in (None, self.node_id):
            return False
        await self.bus.publish(node_channel(presence["node"]), {"to": key, "msg": message})
        return True

    def _deliver_local(self, conn: Connection, message: dict[str, Any]) -> None:
        if conn.role == "booth":
            self._track_booth_call(conn, message)
        conn.send(message)

    def _track_booth_call(self, conn: Connection, message: dict[str, Any]) -> None:
        """Keep `booth_calls` in step with what the booth is told, wherever it was decided."""
        booth_id = conn.principal.booth_id or 0
        mtype = message.get("type")
        if mtype in ("call.ended", "call.abandoned"):
            if self.booth_calls.get(booth_id) == message.get("call_id"):
                self.booth_calls.pop(booth_id, None)
            self.booth_live.pop(booth_id, None)
            asyncio.get_running_loop().create_task(self.set_booth_presence(booth_id, "idle"))
        elif mtype == "call.connected":
            call_id = str(message.get("call_id"))
            self.booth_calls[booth_id] = call_id
            clerk = message.get("clerk")
            clerk_id = clerk.get("id") if isinstance(clerk, dict) else None
            if isinstance(clerk_id, int):
                self.booth_live[booth_id] = LiveCall(call_id, booth_id, clerk_id)
            asyncio.get_running_loop().create_task(self.set_booth_presence(booth_id, "in_call"))
        elif mtype == "call.transferring":
            self.booth_live.pop(booth_id, None)
            asyncio.get_running_loop().create_task(self.set_booth_presence(booth_id, "queued"))

    async def to_wall(self, message: dict[str, Any]) -> None:
        """Tell every supervisor on every node who may see it (see `wall_visible`).

        Returns at once: the push is completed (names, the region fan-out filters on) and
        published by this node's wall sender, in order, so no call step waits for the wall.
        """
        at = time.time()

        async def ready() -> dict[str, Any]:
            try:
                return await self._wall_payload(message, at)
            except Exception:  # noqa: BLE001 - sent as it is: without a region only unscoped supervisors get it
                logger.exception("could not complete the wall push %s", message.get("type"))
                return message

        self._wall_soon(ready)

    def _wall_soon(self, build: Callable[[], Awaitable[dict[str, Any] | None]]) -> None:
        self._wall_outbox.put_nowait(build)

    async def _wall_sender(self) -> None:
        """Build and publish queued wall pushes one after the other (publication order is kept)."""
        while True:
            build = await self._wall_outbox.get()
            try:
                message = await build()
                if message is not None:
                    await self.bus.publish(WALL_CHANNEL, message)
            except Exception:  # noqa: BLE001 - the wall is told best-effort (Redis away, records busy)
                logger.exception("a wall push was dropped")

    async def _wall_payload(self, message: dict[str, Any], at: float) -> dict[str, Any]:
        out = dict(message)
        mtype = out.get("type")
        if mtype == "wall.booth" and out.get("state") is None:
            out["last_seen"] = at  # it went offline then
        if mtype in ("wall.booth", "wall.devices") and "region" not in out:
            state = out.get("state")
            if isinstance(state, dict) and state.get("region"):
                out["region"] = state["region"]
                out.setdefault("name", state.get("name", ""))
            else:
                booth = await self.ledger.booth(int(out["booth_id"]))
                if booth is not None:
                    out["region"] = booth.region
                    out.setdefault("name", booth.name)
        elif mtype == "wall.clerk" and "regions" not in out:
            clerk = await self.bus.get_clerk(str(out["clerk_id"]))
            out["regions"] = sorted(clerk.regions) if clerk else []
            out["skills"] = sorted(clerk.skills) if clerk else []
        elif mtype == "wall.call" and out.get("status") == "active" and "region" not in out:
            call = await self.ledger.call(str(out["call_id"]))
            if call is not None:
                out.update(await self.wall_call_entry(call))
        elif mtype == "call.invite" and "region" not in out:
            call = await self.ledger.call(str(out["call_id"]))
            if call is not None:
                out.update(region=call.region_code, booth_id=call.booth_id)
        elif mtype == "wall.alert" and "region" not in out:
            alert = out.get("alert")
            if isinstance(alert, dict) and isinstance(alert.get("region_code"), str):
                out["region"] = alert["region_code"]
        return out

    async def wall_call_entry(self, call: CallSession) -> dict[str, Any]:
        """`live_call_entry` with names from the (cached) records."""
        booth = await self.ledger.booth(call.booth_id)
        clerk = await self.ledger.clerk(call.clerk_id) if call.clerk_id is not None else None
        return live_call_entry(call, booth_name=booth.name if booth else "",
                               clerk_name=clerk.display_name if clerk else "",
                               item=await self.ledger.item(call.item_code))

    async def wall_queue(self, call_id: str, region: str | None, *, queued: QueuedCall | None = None,
                         gone: bool = False) -> None:
        """Tell the wall a waiting call changed: its entry, or `entry: null` once it left the queue.

        The entry (without `queued`: the call itself) and its offer are read from the bus when
        the push is sent, in order, so it says what holds then.  `region` None: the call's.
        """

        async def build() -> dict[str, Any] | None:
            where = region
            if where is None:
                call = await self.ledger.call(call_id)
                if call is None:
                    return None
                where = call.region_code
            found = queued
            if not gone and found is None:
                found = next((q for q in await self.bus.list_queue() if q.call_id == call_id), None)
            entry = None
            if found is not None and not gone:
                offer = await self.bus.get_offer(call_id)
                booth = await self.ledger.booth(int(found.booth_id))
                entry = queue_entry(found, offered_to=offer.clerk_id if offer else None,
                                    booth_name=booth.name if booth else "",
                                    item=await self.ledger.item(found.item_code), now=time.time())
            return push("wall.queue", call_id=call_id, region=where, entry=entry)

        self._wall_soon(build)

    async def wall_clerk(self, clerk_id: int | str) -> None:
        """Tell the wall a clerk's state as the bus holds it (after a release the bus decided)."""
        at = time.time()

        async def build() -> dict[str, Any] | None:
            clerk = await self.bus.get_clerk(str(clerk_id))
            if clerk is None:
                return None
            presence = await self.bus.get_presence("clerk", str(clerk_id)) or {}
            return push("wall.clerk", clerk_id=int(clerk_id), status=clerk.status, reason=clerk.not_ready_reason,
                        since=at, name=presence.get("name", ""), regions=sorted(clerk.regions),
                        skills=sorted(clerk.skills))

        self._wall_soon(build)

    async def _listen_node(self, sub: Any) -> None:
        async for envelope in sub:
            if "kick" in envelope:  # the party connected again on another node
                kicked = self.local(str(envelope["kick"]))
                if kicked is not None:
                    kicked.close_soon(int(envelope.get("code", CLOSE_REPLACED)))
                continue
            conn = self.local(str(envelope.get("to", "")))
            if conn is not None and isinstance(envelope.get("msg"), dict):
                self._deliver_local(conn, envelope["msg"])

    async def _listen_wall(self, sub: Any) -> None:
        async for message in sub:
            self._note_clerk_since(message)
            for group in list(self.supervisors.values()):
                for conn in list(group):
                    if wall_visible(conn.principal.regions, message):
                        conn.send(message)

    def _note_clerk_since(self, message: dict[str, Any]) -> None:
        if message.get("type") != "wall.clerk":
            return
        try:
            clerk_id, status, since = int(message["clerk_id"]), str(message["status"]), float(message["since"])
        except (KeyError, TypeError, ValueError):
            return
        if status == "offline":
            self.clerk_since.pop(clerk_id, None)
        else:
            self.clerk_since[clerk_id] = (status, since)

    # ------------------------------------------------------------------ presence
    async def set_booth_presence(self, booth_id: int, status: str, **extra: Any) -> None:
        conn = self.booths.get(booth_id)
        if conn is None:
            return
        state = {"status": status, "name": conn.principal.booth_name, "region": conn.principal.region,
                 "node": self.node_id, **extra}
        await self.bus.set_presence("booth", str(booth_id), state, self.presence_ttl())
        await self.to_wall(push("wall.booth", booth_id=booth_id, state=state))

    async def set_clerk_state(self, clerk: ClerkState, *, display_name: str = "") -> None:
        """Store a clerk's routing state, tell the clerk and the wall."""
        released_at = time.time()
        withdrawn = await self.bus.set_clerk(clerk)
        if withdrawn is not None:
            await self._offer_withdrawn(withdrawn, int(clerk.clerk_id), released_at)
        message = push("presence.state", status=clerk.status, reason=clerk.not_ready_reason)
        await self.deliver(f"clerk:{clerk.clerk_id}", message)
        await self.to_wall(push("wall.clerk", clerk_id=int(clerk.clerk_id), status=clerk.status,
                                reason=clerk.not_ready_reason, since=time.time(), name=display_name))
        if clerk.status == "available":
            self.wake_router()

    # ------------------------------------------------------------------ routing loop
    async def _router_loop(self) -> None:
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.config.tick_s)
            self._wake.clear()
            try:
                await self.route_now()
            except Exception:  # noqa: BLE001 - a bad pass must not stop routing (Redis away ...)
                logger.exception("routing pass failed")

    async def route_now(self) -> None:
        """One routing pass: expire lapsed offers, offer while possible, push positions."""
        released_at = time.time()
        for offer in await self.bus.expire_offers(now=released_at):
            self.stats.offers_expired += 1
            await self._offer_expired(offer, released_at)
        while True:
            offer = await self.bus.route_once(timeout_s=self.config.offer_timeout_s)
            if offer is None:
                break
            self.stats.offers += 1
            await self._offer_made(offer)
        await self.push_positions()

    async def _offer_made(self, offer: Offer) -> None:
        call = await self.ledger.call(offer.call_id)
        if call is None:
            return
        clerk_id = int(offer.clerk_id)
        try:
            await self.ledger.offered(call.id, clerk_id, {"offered_at": offer.offered_at, "deadline": offer.deadline})
        except RecordsError as exc:
            logger.warning("offer of %s: %s", call.id, exc)
        item = await self.ledger.item(call.item_code)
        booth = await self.ledger.booth(call.booth_id)
        note = await self.ledger.transfer_note(call.id)
        message = push(
            "offer", call_id=call.id,
            item={"code": call.item_code, "name_zh": item.name_zh if item else "", "name_en": item.name_en if item else ""},
            booth={"id": call.booth_id, "name": booth.name if booth else "", "region": call.region_code,
                   "region_name": booth.region_name_zh if booth else ""},
            priority=call.priority, waited_s=round(time.time() - as_utc(call.queued_at).timestamp(), 1),
            transferred=note is not None, transfer_note=note or "",
            expires_in_s=round(offer.deadline - offer.offered_at, 1),
        )
        delivered = await self.deliver(f"clerk:{clerk_id}", message)
        if delivered:
            await self.deliver(f"clerk:{clerk_id}", push("presence.state", status="ringing", reason=None))
            presence = await self.bus.get_presence("clerk", str(clerk_id)) or {}
            await self.to_wall(push("wall.clerk", clerk_id=clerk_id, status="ringing", reason=None,
                                    since=offer.offered_at, name=presence.get("name", "")))
            await self.wall_queue(call.id, call.region_code)
        else:
            # The clerk vanished between routing and delivery: release the call at once.
            released_at = time.time()
            await self.bus.decline_offer(call.id, offer.clerk_id, "unreachable", next_status="not_ready",
                                         now=released_at)
            await self.ledger.requeued(call.id, "clerk_unreachable", {"clerk_id": clerk_id, "at": released_at})
            await self.wall_clerk(clerk_id)
            await self.wall_queue(call.id, call.region_code)

    async def _offer_withdrawn(self, call_id: str, clerk_id: int, released_at: float) -> None:
        """A clerk's state changed while an offer rang: log the release; the call waits again."""
        try:
            await self.ledger.requeued(call_id, "clerk_state_changed", {"clerk_id": clerk_id, "at": released_at})
        except RecordsError as exc:
            logger.warning("withdrawn offer of %s: %s", call_id, exc)
        await self.deliver(f"clerk:{clerk_id}", push("offer.revoked", call_id=call_id, reason="clerk_state_changed"))
        await self.wall_queue(call_id, None)
        self.wake_router()

    async def _offer_expired(self, offer: Offer, released_at: float) -> None:
        clerk_id = int(offer.clerk_id)
        try:
            await self.ledger.requeued(offer.call_id, "offer_timeout",
                                       {"clerk_id": clerk_id, "offered_at": offer.offered_at, "at": released_at})
        except RecordsError as exc:
            logger.warning("expiry of %s: %s", offer.call_id, exc)
        await self.deliver(f"clerk:{clerk_id}", push("offer.revoked", call_id=offer.call_id, reason="timeout"))
        await self.deliver(f"clerk:{clerk_id}", push("presence.state", status="not_ready", reason="missed_offer"))
        await self.ledger.event("clerk.state", actor=f"user:{clerk_id}",
                                data={"status": "not_ready", "reason": "missed_offer"})
        presence = await self.bus.get_presence("clerk", str(clerk_id)) or {}
        await self.to_wall(push("wall.clerk", clerk_id=clerk_id, status="not_ready", reason="missed_offer",
                                since=time.time(), name=presence.get("name", "")))
        await self.wall_queue(offer.call_id, None)

    async def push_positions(self) -> None:
        """Tell each local booth with a waiting call its place and estimated wait, when they change."""
        waiting = {cid: bid for bid, cid in self.booth_calls.items() if bid in self.booths}
        for call_id in [c for c in self._last_position if c not in waiting]:
            del self._last_position[call_id]
        if not waiting:
            return
        queue = await self.bus.list_queue()
        clerks = await self.bus.list_clerks()
        # A call ringing a clerk is about to be answered: its wait is 0, not a queue estimate.
        ringing = {offer.call_id for offer in await self.bus.list_offers()}
        handle_times = await self._recent_handle_times()
        ahead_by_skill: dict[str, int] = {}
        for call in queue:
            ahead_by_skill[call.skill] = ahead_by_skill.get(call.skill, 0) + 1
            booth_id = waiting.get(call.call_id)
            if booth_id is None:
                continue
            position = ahead_by_skill[call.skill]
            able = sum(1 for c in clerks if c.status != "offline" and call.skill in c.skills
                       and (call.cross_region_allowed or call.region in c.regions))
            is_ringing = call.call_id in ringing
            estimate = 0.0 if is_ringing else estimate_wait(position, handle_times, able)
            # None: nobody signed in can serve it now; the kiosk offers an appointment instead.
            wait_s = None if estimate is None else int(estimate)
            if self._last_position.get(call.call_id) != (position, wait_s, is_ringing):
                self._last_position[call.call_id] = (position, wait_s, is_ringing)
                self.booths[booth_id].send(push("queue.position", call_id=call.call_id, position=position,
                                                estimated_wait_s=wait_s, ringing=is_ringing))

    async def clerks_online(self, region: str) -> int:
        """Signed-in clerks (any state but offline) who could take a call of some active item from
        a booth in `region` (their region, or a 跨镇街通办 item they hold the skill for): what a
        kiosk may honestly call "clerks online". Recounted at most every 2 s, so a reconnect storm
        of booths asking in their welcome costs one read, not one per booth."""
        counted_at, counts = self._clerks_online
        if time.monotonic() - counted_at > 2.0:
            counts = {}
            self._clerks_online = (time.monotonic(), counts)
        if region not in counts:
            clerks = [c for c in await self.bus.list_clerks() if c.status != "offline"]
            items = (await self.ledger.items()).values()
            counts[region] = sum(1 for c in clerks if any(
                i.skill in c.skills and (i.cross_region or region in c.regions) for i in items))
        return counts[region]

    async def _recent_handle_times(self) -> list[float]:
        loaded_at, times = self._handle_times
        if time.monotonic() - loaded_at > 30:
            times = await self.ledger.recent_handle_times()
            self._handle_times = (time.monotonic(), times)
        return times

    # ------------------------------------------------------------------ ICE
    def ice_fields(self, conn: Connection) -> dict[str, Any]:
        """Fresh ICE servers (a new TURN credential naming the party) and the policy for `conn`."""
        fields = self.config.ice.message_fields(conn.turn_principal)
        conn.ice_expires_at = fields["expires_at"]
        return fields

    def push_ice(self, conn: Connection) -> None:
        """Send `conn` its ICE servers: after `welcome`, and again before the credential expires."""
        conn.send(push("ice.servers", **self.ice_fields(conn)))

    def _refresh_ice(self) -> None:
        now = time.time()
        for conn in self.connections():
            if conn.ice_expires_at is not None and refresh_due(conn.ice_expires_at, self.config.ice.ttl_s, now):
                self.push_ice(conn)

    def connections(self) -> list[Connection]:
        """Every socket of this node."""
        return [*self.booths.values(), *self.clerks.values(), *(c for g in self.supervisors.values() for c in g)]

    # ------------------------------------------------------------------ sweeps
    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.sweep_s)  # a periodic timer, not a synchronisation
            try:
                await self.sweep()
            except Exception:  # noqa: BLE001 - e.g. Redis away; try again next period
                logger.exception("sweep failed")

    async def sweep(self) -> None:
        """Close silent sockets, renew TURN credentials, refresh presence, reconcile the bus, settle lost calls."""
        limit = self.config.limits.silence_limit_s
        for conn in self.connections():
            if conn.silent_for() > limit:
                logger.info("%s: no heartbeat for %.0f s, closing", conn.key, conn.silent_for())
                conn.close_soon(CLOSE_HEARTBEAT)
        self._refresh_ice()
        ttl = self.presence_ttl()
        booth_ids = list(self.booths)
        for booth_id, alive in zip(booth_ids, await self.bus.touch_many("booth", [str(b) for b in booth_ids], ttl)):
            if not alive:
                await self.set_booth_presence(booth_id, "queued" if booth_id in self.booth_calls else "idle")
        in_call: set[int] | None = None
        for clerk_id, conn in list(self.clerks.items()):
            if not await self.bus.touch("clerk", str(clerk_id), ttl):
                await self.bus.set_presence("clerk", str(clerk_id), {"name": conn.principal.display_name}, ttl)
            if await self.bus.get_clerk(str(clerk_id)) is None:  # the bus lost it (Redis restarted)
                if in_call is None:
                    in_call = {c.clerk_id for c in await self.ledger.active_calls() if c.clerk_id is not None}
                await self.set_clerk_state(self._reasserted_state(clerk_id, conn, serving=clerk_id in in_call))
        await self._reconcile_calls()
        await self._settle_live_calls()

    def _reasserted_state(self, clerk_id: int, conn: Connection, *, serving: bool) -> ClerkState:
        """The routing state of a local clerk the bus forgot (Redis restarted empty).

        A clerk in a live call (the records say so) is `in_call`: made `not_ready` they would not
        go to wrap-up when the call ends. Otherwise the last state the wall heard is kept
        (available, not ready, wrap-up); `ringing` is not, as the offer died with Redis and its
        call is queued again by its booth's node: the clerk is available for it (or another).
        """
        skills, regions = frozenset(conn.principal.skills), frozenset(conn.principal.regions)
        last, since = self.clerk_since.get(clerk_id, ("not_ready", time.time()))
        status = "in_call" if serving else ("available" if last == "ringing" else last)
        if status not in ("in_call", "available", "wrap_up"):
            return ClerkState(clerk_id=str(clerk_id), status="not_ready", skills=skills, regions=regions,
                              idle_since=time.time(), not_ready_reason="other")
        return ClerkState(clerk_id=str(clerk_id), status=status, skills=skills, regions=regions, idle_since=since)

    async def _settle_live_calls(self) -> None:
        """End live calls whose booth or clerk has been gone from every node for the grace period."""
        now = time.time()
        for call in await self.ledger.active_calls():
            for who, kind, ident in (("booth", "booth", call.booth_id), ("clerk", "clerk", call.clerk_id)):
                key = f"{call.id}:{who}"
                if ident is None or await self.bus.get_presence(kind, str(ident)) is not None:  # type: ignore[arg-type]
                    self._lost_since.pop(key, None)
                    continue
                lost = self._lost_since.setdefault(key, now)
                if now - lost < self.config.reconnect_grace_s:
                    continue
                self._lost_since.pop(key, None)
                try:
                    await self.end_call(call, reason=f"{who}_lost", actor="system")
                except Refused:
                    break  # another node settled it first
                if who == "clerk" and call.clerk_id is not None:
                    current = await self.bus.get_clerk(str(call.clerk_id))
                    if current is not None:
                        released_at = time.time()
                        withdrawn = await self.bus.set_clerk(ClerkState(
                            clerk_id=current.clerk_id, status="offline", skills=current.skills,
                            regions=current.regions, idle_since=now))
                        if withdrawn is not None:
                            await self._offer_withdrawn(withdrawn, int(current.clerk_id), released_at)
                break

    async def _reconcile_calls(self) -> None:
        """Waiting calls: keep local ones in the bus; settle those whose booth is gone."""
        queued = {c.call_id for c in await self.bus.list_queue()}
        now = time.time()
        for call in await self.ledger.queued_calls():
            if call.booth_id in self.booths and self.booth_calls.get(call.booth_id) == call.id:
                if call.id not in queued:  # (Redis lost it) original enqueued_at keeps the place;
                    await self.enqueue(call, restore=True)  # a call a clerk took meanwhile stays out
                self._lost_since.pop(call.id, None)
                continue
            if await self.bus.get_presence("booth", str(call.booth_id)) is not None:
                self._lost_since.pop(call.id, None)
                continue
            if call.id in queued:
                await self.withdraw(call, "booth_lost")  # no clerk should ring for a ghost
            lost = self._lost_since.setdefault(call.id, now)
            if now - lost >= self.config.reconnect_grace_s:
                await self.abandon(call, reason="booth_lost", actor="system")
                self._lost_since.pop(call.id, None)

    # ------------------------------------------------------------------ shared call steps
    async def withdraw(self, call: CallSession, reason: str) -> None:
        """Take a waiting call out of routing (its booth left); a ringing clerk is told, the release logged."""
        released_at = time.time()
        dequeued = await self.bus.dequeue(call.id, reason)
        offer = dequeued.offer if dequeued is not None else None  # withdrawn in the same atomic step
        await self.wall_queue(call.id, call.region_code, gone=True)
        if offer is not None:
            await self.ledger.requeued(call.id, reason, {"clerk_id": int(offer.clerk_id), "at": released_at})
            await self.deliver(f"clerk:{offer.clerk_id}", push("offer.revoked", call_id=call.id, reason=reason))
            await self.deliver(f"clerk:{offer.clerk_id}", push("presence.state", status="available", reason=None))
            await self.wall_clerk(offer.clerk_id)

    async def enqueue(self, call: CallSession, *, skill: str | None = None, preferred_clerk: int | None = None,
                      appointment_id: int | None = None, priority: int | None = None,
                      restore: bool = False) -> QueuedCall | None:
        """Put a call in the queue (`restore`: only if the bus has not handed it to a clerk; see
        `Bus.restore`); None when a restore was refused."""
        item = await self.ledger.item(call.item_code)
        if item is None:
            raise Refused("unknown_item", f"no active item {call.item_code}")
        queued = QueuedCall(
            call_id=call.id, booth_id=str(call.booth_id), item_code=call.item_code, skill=skill or item.skill,
            region=call.region_code, cross_region_allowed=item.cross_region,
            priority=call.priority if priority is None else priority,
            enqueued_at=as_utc(call.queued_at).timestamp(),
            preferred_clerk=str(preferred_clerk) if preferred_clerk else None,
            appointment_id=str(appointment_id) if appointment_id else None,
        )
        stored = await (self.bus.restore(queued) if restore else self.bus.enqueue(queued))
        if stored is None:
            logger.info("call %s not restored to the queue: a clerk has taken it", call.id)
            return None
        self.wake_router()
        await self.wall_queue(call.id, call.region_code, queued=stored)
        return stored

    async def abandon(self, call: CallSession, *, reason: str, actor: str) -> bool:
        """End a call that no clerk answered; False when someone else settled it first."""
        released_at = time.time()
        dequeued = await self.bus.dequeue(call.id, reason)
        offer = dequeued.offer if dequeued is not None else None  # withdrawn in the same atomic step
        waited = released_at - as_utc(call.queued_at).timestamp()
        extra: dict[str, Any] = {"wait_s": round(waited, 3), "at": released_at}
        if offer is not None:
            extra["released_clerk_id"] = int(offer.clerk_id)
        elif call.status is CallStatus.OFFERED and call.clerk_id is not None:
            # Gone from the bus already: the offered clerk took it an instant ago, and is told
            # `offer_gone` when the answer cannot be recorded after this abandonment.
            extra["released_clerk_id"] = call.clerk_id
        try:
            await self.ledger.abandoned(call.id, reason, actor, extra)
        except RecordsError:
            return False
        self.stats.abandons[reason] = self.stats.abandons.get(reason, 0) + 1
        if offer is not None:
            await self.deliver(f"clerk:{offer.clerk_id}", push("offer.revoked", call_id=call.id, reason=reason))
            await self.deliver(f"clerk:{offer.clerk_id}", push("presence.state", status="available", reason=None))
            await self.wall_clerk(offer.clerk_id)
        await self.deliver(f"booth:{call.booth_id}", push("call.abandoned", call_id=call.id, reason=reason))
        await self.wall_queue(call.id, call.region_code, gone=True)
        return True

    async def relay_chat(self, call: CallSession | LiveCall, *, sender: str, actor: str, text: str) -> None:
        """Log a chat line in the call's events and hand it to the other party."""
        # Deliver while the line is written; the sender's ack still waits for both.
        log = self.ledger.event("chat.message", actor=actor, session_id=call.id, booth_id=call.booth_id,
                                data={"from": sender, "text": text})
        other = f"booth:{call.booth_id}" if sender == "clerk" else f"clerk:{call.clerk_id}"
        if sender == "clerk" or call.clerk_id is not None:
            await asyncio.gather(log, self.deliver(other, push("chat.message", call_id=call.id, sender=sender,
                                                               text=text)))
        else:
            await log

    async def end_call(self, call: CallSession, *, reason: str, actor: str) -> None:
        """End a live call: record it, put the clerk into wrap-up, tell both ends and the wall."""
        if call.status is not CallStatus.ACTIVE:
            raise Refused("not_active", "the call is not live")
        try:
            await self.ledger.ended(call.id, reason, actor)
        except RecordsError as exc:
            raise Refused("not_active", exc.message) from None
        if call.clerk_id is not None:
            current = await self.bus.get_clerk(str(call.clerk_id))
            if current is not None and current.status == "in_call":
                await self.set_clerk_state(ClerkState(
                    clerk_id=current.clerk_id, status="wrap_up", skills=current.skills, regions=current.regions,
                    idle_since=current.idle_since))
            await self.deliver(f"clerk:{call.clerk_id}", push("call.ended", call_id=call.id, reason=reason))
        await self.deliver(f"booth:{call.booth_id}", push("call.ended", call_id=call.id, reason=reason))
        await self.bus.clear_session_node(call.id)
        await self.to_wall(push("wall.call", call_id=call.id, status="ended", region=call.region_code,
                                booth_id=call.booth_id))
        if self.on_call_ended is not None:
            await self.on_call_ended(call.id)
