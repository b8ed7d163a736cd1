"""What a clerk may do: set their state, take or decline offers, end, transfer, invite, wrap up.

A clerk acts only on calls offered to them or served by them; every call id
is checked against the bus's offer or the call record.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from records.errors import RecordsError
from records.models import CallSession, CallStatus
from signaling import media_flow
from signaling.booth_flow import Handler
from signaling.connection import Connection
from signaling.protocol import (
    CallEnd,
    CallTransfer,
    ChatSend,
    InviteSupervisor,
    Message,
    OfferAccept,
    OfferDecline,
    PresenceSet,
    RtcOffer,
    WrapUpDone,
    push,
)
from signaling.routing import ClerkState
from signaling.switchboard import Refused, Switchboard

logger = logging.getLogger(__name__)

PRIORITY_TRANSFERRED = 1  # a transferred resident has waited once already


def _clerk_id(conn: Connection) -> int:
    assert conn.principal.user_id is not None
    return conn.principal.user_id


def _state(conn: Connection, status: str, *, reason: str | None = None, idle_since: float | None = None) -> ClerkState:
    p = conn.principal
    return ClerkState(clerk_id=str(p.user_id), status=status, skills=frozenset(p.skills),
                      regions=frozenset(p.regions), idle_since=time.time() if idle_since is None else idle_since,
                      not_ready_reason=reason)


async def attach(sb: Switchboard, conn: Connection) -> None:
    """A clerk connected. A reconnect keeps a live call or wrap-up; otherwise they start not ready."""
    clerk_id = _clerk_id(conn)
    await sb.register(conn)
    await sb.bus.set_presence("clerk", str(clerk_id), {"name": conn.principal.display_name}, sb.presence_ttl())
    current = await sb.bus.get_clerk(str(clerk_id))
    fresh = current is None or current.status not in ("in_call", "wrap_up", "ringing")
    if fresh:
        current = _state(conn, "not_ready", reason="signed_in")
    assert current is not None
    live = await _live_call_of(sb, clerk_id) if current.status == "in_call" else None
    conn.send(push(
        "welcome", role="seat", node=sb.node_id, heartbeat_s=sb.config.limits.heartbeat_s,
        clerk={"id": clerk_id, "name": conn.principal.display_name, "skills": sorted(conn.principal.skills),
               "regions": sorted(conn.principal.regions)},
        state={"status": current.status, "reason": current.not_ready_reason},
        call=None if live is None else {"call_id": live.id, "booth_id": live.booth_id, "item_code": live.item_code},
    ))
    if fresh:
        await sb.set_clerk_state(current, display_name=conn.principal.display_name)
    if live is not None:
        await sb.deliver(f"booth:{live.booth_id}", push("peer.rejoined", call_id=live.id, who="clerk"))


async def _live_call_of(sb: Switchboard, clerk_id: int) -> CallSession | None:
    from sqlmodel import col, select

    return await sb.ledger.run(lambda s: s.exec(select(CallSession).where(
        CallSession.clerk_id == clerk_id, CallSession.status == CallStatus.ACTIVE)
        .order_by(col(CallSession.answered_at).desc())).first())


async def detach(sb: Switchboard, conn: Connection) -> None:
    """The clerk's socket closed: a ringing offer goes to the next clerk at once; a live call
    waits for the clerk to come back (the sweep ends it after the grace period)."""
    if not sb.unregister(conn):
        return
    clerk_id = _clerk_id(conn)
    if not await sb.bus.release_presence("clerk", str(clerk_id)):
        return  # it reconnected on another node, which carries on
    current = await sb.bus.get_clerk(str(clerk_id))
    if current is None:
        return
    if current.status == "ringing":
        offers = [o for o in await sb.bus.list_offers() if o.clerk_id == str(clerk_id)]
        released_at = time.time()
        await sb.set_clerk_state(_state(conn, "offline"))  # withdraws the offer; the call keeps its place
        for offer in offers:
            await sb.ledger.requeued(offer.call_id, "clerk_disconnected", {"clerk_id": clerk_id, "at": released_at})
        sb.wake_router()
    elif current.status == "in_call":
        live = await _live_call_of(sb, clerk_id)
        if live is not None:
            await sb.deliver(f"booth:{live.booth_id}", push("peer.left", call_id=live.id, who="clerk"))
    elif current.status != "wrap_up":
        await sb.set_clerk_state(_state(conn, "offline"))


async def presence_set(sb: Switchboard, conn: Connection, msg: PresenceSet) -> dict[str, Any]:
    clerk_id = _clerk_id(conn)
    current = await sb.bus.get_clerk(str(clerk_id))
    if current is not None and current.status in ("ringing", "in_call"):
        raise Refused("busy", f"cannot change state while {current.status}")
    if current is not None and current.status == "available" and msg.status == "available":
        return {"status": "available"}
    if current is not None and current.status == "wrap_up" and msg.status == "available":
        raise Refused("in_wrap_up", "finish wrap-up with wrapup.done")
    await sb.set_clerk_state(_state(conn, msg.status, reason=msg.reason), display_name=conn.principal.display_name)
    await sb.ledger.event("clerk.state", actor=conn.principal.actor, data={"status": msg.status, "reason": msg.reason})
    return {"status": msg.status}


async def offer_accept(sb: Switchboard, conn: Connection, msg: OfferAccept) -> dict[str, Any]:
    clerk_id = _clerk_id(conn)
    released_at = time.time()
    queued = await sb.bus.accept_offer(msg.call_id, str(clerk_id), now=released_at)
    if queued is None:
        raise Refused("offer_gone", "the offer was withdrawn, expired or is not yours")
    try:
        call = await sb.ledger.answered(msg.call_id, clerk_id, sb.node_id,
                                        {"wait_s": round(released_at - queued.enqueued_at, 3), "at": released_at})
    except RecordsError:
        # The resident hung up in the same instant and the abandonment was recorded first: the
        # clerk, whom the bus already put in the call, is free again.
        await sb.set_clerk_state(_state(conn, "available"), display_name=conn.principal.display_name)
        raise Refused("offer_gone", "the resident hung up") from None
    await sb.bus.set_session_node(call.id, sb.node_id)
    conn.send(push("presence.state", status="in_call", reason=None))
    await sb.to_wall(push("wall.clerk", clerk_id=clerk_id, status="in_call", reason=None, since=time.time(),
                          name=conn.principal.display_name))
    await sb.to_wall(push("wall.call", call_id=call.id, status="active", booth_id=call.booth_id, clerk_id=clerk_id,
                          item_code=call.item_code))
    await sb.deliver(f"booth:{call.booth_id}", push(
        "call.connected", call_id=call.id, media_node=sb.node_id,
        clerk={"id": clerk_id, "name": conn.principal.display_name}))
    if sb.on_call_connected is not None:
        await sb.on_call_connected(call.id)
    return {"call_id": call.id, "booth_id": call.booth_id, "item_code": call.item_code, "media_node": sb.node_id}


async def offer_decline(sb: Switchboard, conn: Connection, msg: OfferDecline) -> dict[str, Any]:
    clerk_id = _clerk_id(conn)
    offer = await sb.bus.get_offer(msg.call_id)
    if offer is None or offer.clerk_id != str(clerk_id):
        raise Refused("offer_gone", "the offer was withdrawn, expired or is not yours")
    if await sb.ledger.has_declined(msg.call_id, clerk_id):
        raise Refused("decline_used", "you already declined this call once; accept it or let it pass")
    released_at = time.time()
    if not await sb.bus.decline_offer(msg.call_id, str(clerk_id), msg.reason, next_status="available",
                                      now=released_at):
        raise Refused("offer_gone", "the offer was withdrawn or expired")
    await sb.ledger.requeued(msg.call_id, "declined",
                             {"clerk_id": clerk_id, "decline_reason": msg.reason, "at": released_at})
    await sb.to_wall(push("wall.clerk", clerk_id=clerk_id, status="available", reason=None, since=time.time(),
                          name=conn.principal.display_name))
    conn.send(push("presence.state", status="available", reason=None))
    sb.wake_router()
    await sb.wall_queue(msg.call_id, None)  # the entry is no longer offered to this clerk
    return {"call_id": msg.call_id}


async def _own_live_call(sb: Switchboard, conn: Connection, call_id: str) -> CallSession:
    call = await sb.ledger.call(call_id)
    if call is None or call.clerk_id != _clerk_id(conn) or call.status is not CallStatus.ACTIVE:
        raise Refused("call_not_found", "no live call of yours with that id")
    return call


async def call_end(sb: Switchboard, conn: Connection, msg: CallEnd) -> dict[str, Any]:
    call = await _own_live_call(sb, conn, msg.call_id)
    await sb.end_call(call, reason="hangup_clerk", actor=conn.principal.actor)
    return {"call_id": call.id, "status": "ended"}


async def call_transfer(sb: Switchboard, conn: Connection, msg: CallTransfer) -> dict[str, Any]:
    call = await _own_live_call(sb, conn, msg.call_id)
    item = await sb.ledger.item(call.item_code)
    skill = msg.to_skill or (item.skill if item else "")
    if msg.to_clerk_id is not None:
        if msg.to_clerk_id == _clerk_id(conn):
            raise Refused("bad_transfer", "cannot transfer to yourself")
        target = await sb.ledger.clerk(msg.to_clerk_id)
        if target is None:
            raise Refused("unknown_clerk", "no such clerk")
        if skill not in target.skills:
            raise Refused("clerk_lacks_skill", "that clerk does not hold this item's skill")
    elif not await sb.ledger.clerks_with_skill(skill):
        raise Refused("unknown_skill", "no clerk holds that skill")
    await sb.ledger.transferred(call.id, actor=conn.principal.actor, note=msg.note, to_skill=msg.to_skill,
                                to_clerk_id=msg.to_clerk_id)
    await sb.enqueue(call, skill=skill, preferred_clerk=msg.to_clerk_id,
                     priority=max(call.priority, PRIORITY_TRANSFERRED))
    await sb.set_clerk_state(_state(conn, "wrap_up"), display_name=conn.principal.display_name)
    await sb.deliver(f"booth:{call.booth_id}", push("call.transferring", call_id=call.id, to_skill=msg.to_skill))
    await sb.to_wall(push("wall.call", call_id=call.id, status="ended", region=call.region_code,
                          booth_id=call.booth_id))  # live with this clerk no more; the queue shows it again
    await sb.bus.clear_session_node(call.id)
    if sb.on_call_ended is not None:  # this clerk's media session ends; the next accept opens a new one
        await sb.on_call_ended(call.id)
    return {"call_id": call.id, "status": "transferred"}


async def invite_supervisor(sb: Switchboard, conn: Connection, msg: InviteSupervisor) -> dict[str, Any]:
    call = await _own_live_call(sb, conn, msg.call_id)
    await sb.ledger.event("call.supervisor_invited", actor=conn.principal.actor, session_id=call.id,
                          booth_id=call.booth_id, data={"note": msg.note})
    await sb.to_wall(push("call.invite", call_id=call.id, clerk_id=_clerk_id(conn),
                          clerk_name=conn.principal.display_name, note=msg.note))
    return {"call_id": call.id}


async def wrapup_done(sb: Switchboard, conn: Connection, msg: WrapUpDone) -> dict[str, Any]:
    current = await sb.bus.get_clerk(str(_clerk_id(conn)))
    if current is None or current.status != "wrap_up":
        raise Refused("not_in_wrap_up", "you are not in wrap-up")
    last = await sb.ledger.last_call_served_by(_clerk_id(conn))
    await sb.ledger.event("clerk.wrapup_done", actor=conn.principal.actor,
                          session_id=last.id if last else None, booth_id=last.booth_id if last else None,
                          data={"note": msg.note})
    await sb.set_clerk_state(_state(conn, "available"), display_name=conn.principal.display_name)
    return {"status": "available"}


async def chat_send(sb: Switchboard, conn: Connection, msg: ChatSend) -> dict[str, Any]:
    call = await _own_live_call(sb, conn, msg.call_id)
    await sb.relay_chat(call, sender="clerk", actor=conn.principal.actor, text=msg.text)
    return {}

HANDLERS: dict[type[Message], Handler] = {
    PresenceSet: presence_set,
    OfferAccept: offer_accept,
    OfferDecline: offer_decline,
    CallEnd: call_end,
    CallTransfer: call_transfer,
    InviteSupervisor: invite_supervisor,
    WrapUpDone: wrapup_done,
    ChatSend: chat_send,
    RtcOffer: media_flow.rtc_offer,
}
