"""The supervisors' live wall over the socket: a snapshot on request, deltas as they happen."""

from __future__ import annotations

import time
from typing import Any

from signaling.booth_flow import Handler
from signaling.connection import Connection
from signaling import media_flow
from signaling.protocol import Message, MonitorJoin, MonitorLeave, RtcOffer, WallSnapshot, push
from signaling.switchboard import Switchboard


async def snapshot(sb: Switchboard) -> dict[str, Any]:
    """Booths, clerks, queue and offers as the bus sees them now (across every node)."""
    now = time.time()
    booths = await sb.bus.list_presence("booth")
    clerk_presence = await sb.bus.list_presence("clerk")
    clerks = await sb.bus.list_clerks()
    queue = await sb.bus.list_queue()
    offers = {o.call_id: o for o in await sb.bus.list_offers()}
    return {
        "booths": [{"booth_id": int(k), **v} for k, v in booths.items()],
        "clerks": [{"clerk_id": int(c.clerk_id), "status": c.status, "reason": c.not_ready_reason,
                    "skills": sorted(c.skills), "online": c.clerk_id in clerk_presence,
                    "name": clerk_presence.get(c.clerk_id, {}).get("name", "")}
                   for c in clerks if c.status != "offline"],
        "queue": [{"call_id": q.call_id, "booth_id": int(q.booth_id), "item_code": q.item_code, "skill": q.skill,
                   "priority": q.priority, "waiting_s": round(now - q.enqueued_at, 1),
                   "offered_to": int(offers[q.call_id].clerk_id) if q.call_id in offers else None}
                  for q in queue],
    }


async def attach(sb: Switchboard, conn: Connection) -> None:
    await sb.register(conn)
    conn.send(push("welcome", role="supervisor", node=sb.node_id, heartbeat_s=sb.config.limits.heartbeat_s,
                   user={"id": conn.principal.user_id, "name": conn.principal.display_name},
                   wall=await snapshot(sb)))


async def detach(sb: Switchboard, conn: Connection) -> None:
    sb.unregister(conn)
    media = getattr(conn.websocket.app.state, "media", None)
    if media is not None:
        await media.supervisor_gone(conn)  # its silent monitors end with the socket


async def wall_snapshot(sb: Switchboard, conn: Connection, msg: WallSnapshot) -> dict[str, Any]:
    return {"wall": await snapshot(sb)}


HANDLERS: dict[type[Message], Handler] = {
    WallSnapshot: wall_snapshot,
    MonitorJoin: media_flow.monitor_join,
    MonitorLeave: media_flow.monitor_leave,
    RtcOffer: media_flow.rtc_offer,
}
