"""What a booth may do: connect, ask for a call, cancel it, report devices, book, chat.

Every handler takes the switchboard, the booth's connection and a validated
message, and returns the fields of its `ack` (or raises `Refused`).  A
booth only ever touches its own calls: every call id is checked against
the booth that sends it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from records.models import CallSession, CallStatus, as_utc
from signaling.connection import Connection
from signaling import media_flow
from signaling.protocol import (AppointmentBook, CallCancel, CallRequest, ChatSend, DeviceStatus, Message, RtcOffer,
                                ServiceStatusRequest, push)
from signaling.service_hours import ServiceHours, is_open, next_opening, parse_service_hours
from signaling.switchboard import LiveCall, Refused, Switchboard

logger = logging.getLogger(__name__)

APPOINTMENT_EARLY_S = 10 * 60  # an appointment call may come this early
PRIORITY_NORMAL, PRIORITY_RESIDENT, PRIORITY_APPOINTMENT = 0, 1, 2

Handler = Callable[[Switchboard, Connection, Any], Awaitable[dict[str, Any] | None]]


def _booth_id(conn: Connection) -> int:
    assert conn.principal.booth_id is not None
    return conn.principal.booth_id


def hours_of(raw: dict[str, Any]) -> ServiceHours | None:
    """The region's service hours, or None when the region has none configured (always open)."""
    if not raw:
        return None
    try:
        return parse_service_hours(raw)
    except ValueError as exc:
        logger.error("region service hours are invalid, treating as always open: %s", exc)
        return None


def service_status(raw_hours: dict[str, Any], at: datetime | None = None) -> dict[str, Any]:
    """`{"open": bool, "next_opening": iso | None}` for the kiosk's start screen."""
    hours = hours_of(raw_hours)
    at = at or datetime.now(timezone.utc)
    if hours is None or is_open(hours, at):
        return {"open": True, "next_opening": None}
    return {"open": False, "next_opening": next_opening(hours, at).isoformat()}


async def attach(sb: Switchboard, conn: Connection) -> None:
    """A booth connected: presence, last-seen, and a welcome with any call it may resume."""
    booth_id = _booth_id(conn)
    await sb.register(conn)
    arrival = await sb.ledger.arrival(booth_id)
    booth, open_call = arrival.booth, arrival.open_call
    # A live call carries on; a waiting one is offered back in `welcome` and resumes only when
    # the kiosk asks (call.request with resume_call_id), else the sweep abandons it after the grace.
    live = open_call is not None and open_call.status is CallStatus.ACTIVE
    if live and open_call is not None:
        sb.booth_calls[booth_id] = open_call.id
        if open_call.clerk_id is not None:
            sb.booth_live[booth_id] = LiveCall(open_call.id, booth_id, open_call.clerk_id)
    status = "in_call" if live else "idle"
    await sb.set_booth_presence(booth_id, status)
    sb.ledger.note_booth_seen(booth_id, online=True)
    conn.send(push(
        "welcome", role="booth", node=sb.node_id, heartbeat_s=sb.config.limits.heartbeat_s,
        booth={"id": booth_id, "name": conn.principal.booth_name, "region": conn.principal.region,
               "region_name": booth.region_name_zh if booth else ""},
        service=await _service_now(sb, conn.principal.region, booth.service_hours if booth else {}),
        call=None if open_call is None else {"call_id": open_call.id, "status": open_call.status.value,
                                              "item_code": open_call.item_code},
    ))


async def _service_now(sb: Switchboard, region: str, raw_hours: dict[str, Any]) -> dict[str, Any]:
    """Service hours now, and how many clerks who could serve a booth of `region` are signed in."""
    return {**service_status(raw_hours), "clerks_online": await sb.clerks_online(region)}


async def service_status_request(sb: Switchboard, conn: Connection, msg: ServiceStatusRequest) -> dict[str, Any]:
    booth = await sb.ledger.booth(_booth_id(conn))
    return {"service": await _service_now(sb, conn.principal.region, booth.service_hours if booth else {})}


async def detach(sb: Switchboard, conn: Connection) -> None:
    """The booth's socket closed. Its waiting call leaves routing at once; the sweep settles it
    if the booth does not come back (to any node) within the grace period."""
    if not sb.unregister(conn):
        return
    booth_id = _booth_id(conn)
    sb.booth_live.pop(booth_id, None)
    if not await sb.bus.release_presence("booth", str(booth_id)):
        sb.booth_calls.pop(booth_id, None)
        return  # it reconnected on another node, which carries on
    sb.ledger.note_booth_seen(booth_id, online=False)
    call_id = sb.booth_calls.pop(booth_id, None)
    if call_id is not None:
        call = await sb.ledger.call(call_id)
        if call is not None and call.status in (CallStatus.QUEUED, CallStatus.OFFERED):
            await sb.withdraw(call, "booth_disconnected")
        elif call is not None and call.status is CallStatus.ACTIVE and call.clerk_id is not None:
            await sb.deliver(f"clerk:{call.clerk_id}", push("peer.left", call_id=call_id, who="booth"))
        await sb.ledger.event("booth.disconnected", actor=f"booth:{booth_id}", session_id=call_id,
                              booth_id=booth_id, data={})
    # Region and name from the socket's principal: no records lookup per booth in a storm.
    await sb.to_wall(push("wall.booth", booth_id=booth_id, state=None, region=conn.principal.region,
                          name=conn.principal.booth_name))


async def call_request(sb: Switchboard, conn: Connection, msg: CallRequest) -> dict[str, Any]:
    booth_id = _booth_id(conn)
    open_call = await sb.ledger.open_call_of_booth(booth_id)
    if open_call is not None:
        if msg.resume_call_id != open_call.id:
            raise Refused("call_in_progress", "this booth already has a call", call_id=open_call.id)
        return await _resume(sb, conn, open_call)
    if msg.resume_call_id is not None:
        raise Refused("call_not_found", "no such waiting call for this booth")
    item = await sb.ledger.item(msg.item_code)
    if item is None:
        raise Refused("unknown_item", f"no active service item {msg.item_code}")
    booth = await sb.ledger.booth(booth_id)
    priority = PRIORITY_RESIDENT if msg.priority else PRIORITY_NORMAL
    preferred_clerk = None
    if msg.appointment_id is not None:
        preferred_clerk = await _due_appointment(sb, booth_id, msg.appointment_id, msg.item_code)
        priority = PRIORITY_APPOINTMENT
    else:
        status = service_status(booth.service_hours if booth else {})
        if not status["open"]:
            raise Refused("closed", "outside service hours", next_opening=status["next_opening"])
    call = await sb.ledger.create_call(booth_id, msg.item_code, priority)
    sb.booth_calls[booth_id] = call.id
    await sb.enqueue(call, preferred_clerk=preferred_clerk, appointment_id=msg.appointment_id)
    if msg.appointment_id is not None:
        await sb.ledger.use_appointment(msg.appointment_id)
    await sb.set_booth_presence(booth_id, "queued")
    position = await sb.bus.position(call.id)
    return {"call_id": call.id, "position": position}


async def _resume(sb: Switchboard, conn: Connection, call: CallSession) -> dict[str, Any]:
    """A booth back after a drop (here or on another node) takes up its call where it was."""
    booth_id = _booth_id(conn)
    sb.booth_calls[booth_id] = call.id
    await sb.ledger.event("booth.rejoined", actor=f"booth:{booth_id}", session_id=call.id, booth_id=booth_id,
                          data={"status": call.status.value, "node": sb.node_id})
    if call.status is CallStatus.ACTIVE:
        await sb.set_booth_presence(booth_id, "in_call")
        if call.clerk_id is not None:
            await sb.deliver(f"clerk:{call.clerk_id}", push("peer.rejoined", call_id=call.id, who="booth"))
        return {"call_id": call.id, "status": "active", "resumed": True}
    if call.status is CallStatus.OFFERED and await sb.bus.get_offer(call.id) is None:
        await sb.ledger.requeued(call.id, "booth_rejoined", {})
    await sb.enqueue(call)
    await sb.set_booth_presence(booth_id, "queued")
    return {"call_id": call.id, "status": "queued", "resumed": True, "position": await sb.bus.position(call.id)}


async def _due_appointment(sb: Switchboard, booth_id: int, appointment_id: int, item_code: str) -> int | None:
    appointment = await sb.ledger.appointment(appointment_id)
    if appointment is None or appointment.booth_id != booth_id or appointment.item_code != item_code:
        raise Refused("appointment_not_found", "no such appointment for this booth and item")
    if appointment.status != "booked":
        raise Refused("appointment_used", "this appointment was already used or cancelled")
    now = time.time()
    start = as_utc(appointment.slot_start).timestamp()
    end = as_utc(appointment.slot_end).timestamp()
    if not start - APPOINTMENT_EARLY_S <= now <= end:
        raise Refused("appointment_not_due", "the appointment's slot is not now",
                      slot_start=as_utc(appointment.slot_start).isoformat())
    return appointment.clerk_id


async def call_cancel(sb: Switchboard, conn: Connection, msg: CallCancel) -> dict[str, Any]:
    booth_id = _booth_id(conn)
    call = await sb.ledger.call(msg.call_id)
    if call is None or call.booth_id != booth_id:
        raise Refused("call_not_found", "no such call for this booth")
    if call.status in (CallStatus.QUEUED, CallStatus.OFFERED):
        # Forget it first: the reconcile loop puts a local booth's waiting call back in the queue
        # when it finds it missing there, which it is for an instant while being abandoned.
        sb.booth_calls.pop(booth_id, None)
        if not await sb.abandon(call, reason="cancelled", actor=conn.principal.actor):
            raise Refused("not_waiting", "the call is no longer waiting")
        await sb.set_booth_presence(booth_id, "idle")
        return {"call_id": call.id, "status": "abandoned"}
    if call.status is CallStatus.ACTIVE:
        await sb.end_call(call, reason="hangup_booth", actor=conn.principal.actor)
        return {"call_id": call.id, "status": "ended"}
    raise Refused("not_open", "the call has already ended")


async def device_status(sb: Switchboard, conn: Connection, msg: DeviceStatus) -> dict[str, Any]:
    booth_id = _booth_id(conn)
    await sb.ledger.booth_devices(booth_id, dict(msg.devices))
    await sb.to_wall(push("wall.devices", booth_id=booth_id, devices=dict(msg.devices)))
    return {}


async def appointment_book(sb: Switchboard, conn: Connection, msg: AppointmentBook) -> dict[str, Any]:
    booth_id = _booth_id(conn)
    item = await sb.ledger.item(msg.item_code)
    if item is None:
        raise Refused("unknown_item", f"no active service item {msg.item_code}")
    start = datetime.fromisoformat(msg.slot_start.replace("Z", "+00:00")).astimezone(timezone.utc)
    now = datetime.now(timezone.utc)
    if start <= now or start > now + timedelta(days=30):
        raise Refused("bad_slot", "choose a slot within the next 30 days")
    booth = await sb.ledger.booth(booth_id)
    hours = hours_of(booth.service_hours if booth else {})
    if hours is not None and not is_open(hours, start):
        raise Refused("bad_slot", "the slot is outside service hours",
                      next_opening=next_opening(hours, start).isoformat())
    if msg.clerk_id is not None:
        clerk = await sb.ledger.clerk(msg.clerk_id)
        if clerk is None or item.skill not in clerk.skills:
            raise Refused("unknown_clerk", "no such clerk for this item")
    appointment = await sb.ledger.book_appointment(
        booth_id=booth_id, item_code=msg.item_code, slot_start=start, slot_minutes=sb.config.slot_minutes,
        clerk_id=msg.clerk_id, contact=msg.contact)
    local = ZoneInfo(sb.config.timezone)
    return {"appointment_id": appointment.id,
            "slot_start": as_utc(appointment.slot_start).astimezone(local).isoformat(),
            "slot_end": as_utc(appointment.slot_end).astimezone(local).isoformat()}


async def chat_send(sb: Switchboard, conn: Connection, msg: ChatSend) -> dict[str, Any]:
    booth_id = _booth_id(conn)
    live = sb.booth_live.get(booth_id)
    if live is not None and live.id == msg.call_id:  # the live call the booth was told of
        await sb.relay_chat(live, sender="booth", actor=conn.principal.actor, text=msg.text)
        return {}
    call = await sb.ledger.call(msg.call_id)
    if call is None or call.booth_id != booth_id or call.status is not CallStatus.ACTIVE:
        raise Refused("call_not_found", "no live call with that id for this booth")
    await sb.relay_chat(call, sender="booth", actor=conn.principal.actor, text=msg.text)
    return {}

HANDLERS: dict[type[Message], Handler] = {
    ServiceStatusRequest: service_status_request,
    CallRequest: call_request,
    CallCancel: call_cancel,
    DeviceStatus: device_status,
    AppointmentBook: appointment_book,
    ChatSend: chat_send,
    RtcOffer: media_flow.rtc_offer,
}
