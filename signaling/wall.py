"""The supervisors' live wall over the socket: a snapshot on request, deltas as they happen.

The snapshot joins what the bus knows now (presence, clerk states, the queue, offers) with
what only the records hold (every booth with its last-seen time and devices, region names,
the live calls).  A supervisor scoped to regions gets only those regions' booths, queue
entries and calls, and the clerks who serve one of them; the deltas are filtered the same
way on fan-out (`signaling.switchboard.wall_visible`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from records.models import Booth, CallSession, CallStatus, Region, User, as_utc
from signaling import media_flow
from signaling.access import Principal
from signaling.booth_flow import Handler
from signaling.connection import Connection
from signaling.protocol import Message, MonitorJoin, MonitorLeave, RtcOffer, WallSnapshot, push
from signaling.switchboard import Switchboard, live_call_entry, queue_entry, wall_visible


@dataclass(frozen=True)
class _Records:
    """What the snapshot reads from the records, in one transaction."""

    regions: list[dict[str, Any]]
    booths: list[dict[str, Any]]
    calls: list[CallSession]
    clerk_names: dict[int, str]


def scope_of(principal: Principal) -> frozenset[str] | None:
    """The regions a supervisor may see on the wall, or None for every region."""
    return frozenset(principal.regions) if principal.regions else None


def _read_records(session: Session, scope: frozenset[str] | None) -> _Records:
    regions_q = select(Region).order_by(col(Region.code))
    booths_q = select(Booth).where(col(Booth.revoked_at).is_(None)).order_by(col(Booth.region_code), col(Booth.name))
    calls_q = select(CallSession).where(CallSession.status == CallStatus.ACTIVE)
    if scope is not None:
        regions_q = regions_q.where(col(Region.code).in_(scope))
        booths_q = booths_q.where(col(Booth.region_code).in_(scope))
        calls_q = calls_q.where(col(CallSession.region_code).in_(scope))
    calls = list(session.exec(calls_q.order_by(col(CallSession.answered_at))))
    clerk_ids = {c.clerk_id for c in calls if c.clerk_id is not None}
    names = {u.id or 0: u.display_name for u in session.exec(select(User).where(col(User.id).in_(clerk_ids)))} \
        if clerk_ids else {}
    return _Records(
        regions=[{"code": r.code, "name_zh": r.name_zh, "name_en": r.name_en} for r in session.exec(regions_q)],
        booths=[{"booth_id": b.id, "name": b.name, "region": b.region_code,
                 "last_seen": as_utc(b.last_seen_at).timestamp() if b.last_seen_at else None,
                 "devices": dict(b.device_status or {})} for b in session.exec(booths_q)],
        calls=calls,
        clerk_names=names,
    )


async def snapshot(sb: Switchboard, principal: Principal) -> dict[str, Any]:
    """Booths, clerks, queue and live calls as the bus and the records see them now (every node)."""
    scope = scope_of(principal)
    seen = scope or ()
    presence = await sb.bus.list_presence("booth")
    clerk_presence = await sb.bus.list_presence("clerk")
    clerks = await sb.bus.list_clerks()
    queue = await sb.bus.list_queue()
    offers = {o.call_id: o for o in await sb.bus.list_offers()}
    records = await sb.ledger.read(lambda s: _read_records(s, scope))
    now = time.time()

    booths = []
    for booth in records.booths:
        live = presence.get(str(booth["booth_id"]))
        booths.append({**booth, "online": live is not None,
                       "status": live.get("status", "idle") if live else "offline",
                       "node": live.get("node") if live else None,
                       "last_seen": now if live else booth["last_seen"]})
    booth_names = {b["booth_id"]: b["name"] for b in records.booths}

    async def item(code: str) -> Any:
        return await sb.ledger.item(code)

    return {
        "now": now,
        "scope": sorted(scope) if scope is not None else None,
        "regions": records.regions,
        "booths": booths,
        "clerks": [_clerk_entry(sb, c, clerk_presence) for c in clerks
                   if c.status != "offline" and wall_visible(seen, {"regions": sorted(c.regions)})],
        "queue": [queue_entry(q, offered_to=offers[q.call_id].clerk_id if q.call_id in offers else None,
                              booth_name=booth_names.get(int(q.booth_id), ""), item=await item(q.item_code), now=now)
                  for q in queue if scope is None or q.region in scope],
        "calls": [live_call_entry(c, booth_name=booth_names.get(c.booth_id, ""),
                                  clerk_name=records.clerk_names.get(c.clerk_id or 0, ""), item=await item(c.item_code))
                  for c in records.calls],
    }


def _clerk_entry(sb: Switchboard, clerk: Any, presence: dict[str, dict[str, Any]]) -> dict[str, Any]:
    clerk_id = int(clerk.clerk_id)
    noted = sb.clerk_since.get(clerk_id)
    # The time of the last `wall.clerk` push for this state; a node that started since then
    # falls back to the bus's idle_since (exact for available and not_ready).
    since = noted[1] if noted is not None and noted[0] == clerk.status else clerk.idle_since
    return {"clerk_id": clerk_id, "status": clerk.status, "reason": clerk.not_ready_reason, "since": since,
            "skills": sorted(clerk.skills), "regions": sorted(clerk.regions),
            "online": clerk.clerk_id in presence, "name": presence.get(clerk.clerk_id, {}).get("name", "")}


async def attach(sb: Switchboard, conn: Connection) -> None:
    await sb.register(conn)
    conn.send(push("welcome", role="supervisor", node=sb.node_id, heartbeat_s=sb.config.limits.heartbeat_s,
                   user={"id": conn.principal.user_id, "name": conn.principal.display_name},
                   wall=await snapshot(sb, conn.principal)))


async def detach(sb: Switchboard, conn: Connection) -> None:
    sb.unregister(conn)
    media = getattr(conn.websocket.app.state, "media", None)
    if media is not None:
        await media.supervisor_gone(conn)  # its silent monitors end with the socket


async def wall_snapshot(sb: Switchboard, conn: Connection, msg: WallSnapshot) -> dict[str, Any]:
    return {"wall": await snapshot(sb, conn.principal)}


HANDLERS: dict[type[Message], Handler] = {
    WallSnapshot: wall_snapshot,
    MonitorJoin: media_flow.monitor_join,
    MonitorLeave: media_flow.monitor_leave,
    RtcOffer: media_flow.rtc_offer,
}
