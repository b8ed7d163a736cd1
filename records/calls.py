"""Call sessions: one call from a booth, from queueing to its end.

The live queue and the offer to exactly one clerk live in the signaling bus;
these rows are the durable record of each call, and every status change is
logged on the session's event chain in the same transaction.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timezone
from typing import Any

from sqlmodel import Session, col, select

from records.errors import ConflictError, InvalidTransitionError, NotFoundError, ValidationError
from records.events import append_event, lock_log
from records.models import Booth, CallSession, CallStatus, ServiceItem

logger = logging.getLogger(__name__)

# Which status may follow which.  OFFERED -> QUEUED is an offer that timed out or was
# declined; ACTIVE -> QUEUED is a transfer to another skill or clerk.
TRANSITIONS: dict[CallStatus, frozenset[CallStatus]] = {
    CallStatus.QUEUED: frozenset({CallStatus.OFFERED, CallStatus.ACTIVE, CallStatus.ABANDONED}),
    CallStatus.OFFERED: frozenset({CallStatus.QUEUED, CallStatus.ACTIVE, CallStatus.ABANDONED}),
    CallStatus.ACTIVE: frozenset({CallStatus.ENDED, CallStatus.QUEUED}),  # -> QUEUED: transferred
    CallStatus.ENDED: frozenset(),
    CallStatus.ABANDONED: frozenset(),
}


def create_call(
    session: Session,
    *,
    booth_id: int,
    item_code: str,
    priority: int = 0,
    session_id: str | None = None,
    actor: str | None = None,
) -> CallSession:
    """Record a booth joining the queue for `item_code`; event `call.queued`.

    The region is the booth's, fixed at queueing time, so later moves of a
    booth do not rewrite where past calls came from.
    """
    lock_log(session)
    booth = session.get(Booth, booth_id)
    if booth is None:
        raise NotFoundError("booth_not_found", f"no booth {booth_id}")
    if booth.revoked_at is not None:
        raise ValidationError("booth_revoked", f"booth {booth_id} is revoked")
    item = session.get(ServiceItem, item_code)
    if item is None or not item.active:
        raise NotFoundError("item_not_found", f"no active service item {item_code!r}")
    if session_id is not None and session.get(CallSession, session_id) is not None:
        raise ConflictError("call_exists", f"call session {session_id!r} already exists")
    call = CallSession(
        id=session_id or str(uuid.uuid4()),
        booth_id=booth_id,
        region_code=booth.region_code,
        item_code=item_code,
        priority=priority,
        status=CallStatus.QUEUED,
        queued_at=datetime.now(timezone.utc),
    )
    session.add(call)
    append_event(
        session,
        kind="call.queued",
        actor=actor or f"booth:{booth_id}",
        session_id=call.id,
        booth_id=booth_id,
        data={"item_code": item_code, "region_code": booth.region_code, "priority": priority},
        ts=call.queued_at,
    )
    return call


def get_call(session: Session, call_id: str) -> CallSession:
    """The call `call_id`, or NotFoundError `call_not_found`."""
    call = session.get(CallSession, call_id, populate_existing=True)
    if call is None:
        raise NotFoundError("call_not_found", f"no call session {call_id!r}")
    return call


def list_calls(
    session: Session,
    *,
    status: CallStatus | None = None,
    booth_id: int | None = None,
    clerk_id: int | None = None,
    region_code: str | None = None,
    item_code: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[CallSession]:
    """Calls matching every given filter, newest first (queued_at within [since, until))."""
    stmt = select(CallSession)
    if status is not None:
        stmt = stmt.where(CallSession.status == status)
    if booth_id is not None:
        stmt = stmt.where(CallSession.booth_id == booth_id)
    if clerk_id is not None:
        stmt = stmt.where(CallSession.clerk_id == clerk_id)
    if region_code is not None:
        stmt = stmt.where(CallSession.region_code == region_code)
    if item_code is not None:
        stmt = stmt.where(CallSession.item_code == item_code)
    if since is not None:
        stmt = stmt.where(CallSession.queued_at >= since)
    if until is not None:
        stmt = stmt.where(CallSession.queued_at < until)
    stmt = stmt.order_by(col(CallSession.queued_at).desc(), col(CallSession.id)).offset(offset).limit(limit)
    return list(session.exec(stmt))


def _transition(session: Session, call_id: str, to: CallStatus) -> CallSession:
    """Lock the log, re-read the call and check that `to` may follow its status."""
    lock_log(session)
    call = get_call(session, call_id)
    if to not in TRANSITIONS[call.status]:
        raise InvalidTransitionError(
            message=f"call {call_id}: {call.status.value} -> {to.value} not allowed"
        )
    return call


def mark_offered(
    session: Session, call_id: str, *, clerk_id: int, extra: dict[str, Any] | None = None
) -> CallSession:
    """The call was offered to `clerk_id`; event `call.offered`.

    Like a release, an offer is a fact the bus decided atomically before this is written, and
    nodes write their facts in their own order: the release of the previous clerk's offer
    (written by another node) may not be in yet, so the row can still say offered.  The event is
    appended all the same, and the row names the new clerk while the call still waits.  A call
    the log already shows answered or over keeps its row: the offer was made before that (the bus
    takes an answered call out of the queue atomically) and is only written late.
    """
    lock_log(session)
    call = get_call(session, call_id)
    if call.status in (CallStatus.QUEUED, CallStatus.OFFERED):
        call.status = CallStatus.OFFERED
        call.clerk_id = clerk_id
        session.add(call)
    append_event(session, kind="call.offered", session_id=call.id, booth_id=call.booth_id,
                 data={"clerk_id": clerk_id, **(extra or {})})
    return call


def mark_requeued(
    session: Session, call_id: str, *, reason: str = "offer_timeout", extra: dict[str, Any] | None = None
) -> CallSession:
    """An offer lapsed or was declined; the call waits again; event `call.requeued`.

    The release is a fact about one clerk's offer, decided by the bus before this is written; the
    log of another node may already hold what came next (another clerk's answer, the end of the
    call).  So the event is always appended, and the row goes back to queued only while it still
    says offered to that clerk.
    """
    lock_log(session)
    call = get_call(session, call_id)
    previous = call.clerk_id
    released = (extra or {}).get("clerk_id", previous)
    if call.status is CallStatus.OFFERED and released in (None, call.clerk_id):
        # (a row that names another clerk already holds a newer offer, written before this release)
        call.status = CallStatus.QUEUED
        call.clerk_id = None
        session.add(call)
    append_event(session, kind="call.requeued", session_id=call.id, booth_id=call.booth_id,
                 data={"clerk_id": previous, "reason": reason, **(extra or {})})
    return call


def mark_answered(
    session: Session, call_id: str, *, clerk_id: int, media_node: str | None = None,
    extra: dict[str, Any] | None = None,
) -> CallSession:
    """The clerk accepted; the call is live; event `call.answered`."""
    call = _transition(session, call_id, CallStatus.ACTIVE)
    call.status = CallStatus.ACTIVE
    call.clerk_id = clerk_id
    now = datetime.now(timezone.utc)
    call.answered_at = call.answered_at or now  # a transferred call keeps its first answer
    call.media_node = media_node
    session.add(call)
    append_event(session, kind="call.answered", actor=f"user:{clerk_id}", session_id=call.id,
                 booth_id=call.booth_id, data={"clerk_id": clerk_id, "media_node": media_node, **(extra or {})},
                 ts=now)
    return call


def mark_ended(session: Session, call_id: str, reason: str, *, actor: str = "system") -> CallSession:
    """A live call ended (`reason`: hangup_booth, hangup_clerk, media_failed ...); event `call.ended`."""
    if not reason or len(reason) > 64:
        raise ValidationError("invalid_end_reason", "end reason must be 1..64 chars")
    call = _transition(session, call_id, CallStatus.ENDED)
    call.status = CallStatus.ENDED
    call.ended_at = datetime.now(timezone.utc)
    call.end_reason = reason
    session.add(call)
    append_event(session, kind="call.ended", actor=actor, session_id=call.id,
                 booth_id=call.booth_id, data={"reason": reason}, ts=call.ended_at)
    return call


def mark_abandoned(
    session: Session, call_id: str, *, reason: str = "booth_left", actor: str = "system",
    extra: dict[str, Any] | None = None,
) -> CallSession:
    """The call ended before any clerk answered; event `call.abandoned`."""
    call = _transition(session, call_id, CallStatus.ABANDONED)
    call.status = CallStatus.ABANDONED
    call.ended_at = datetime.now(timezone.utc)
    call.end_reason = reason[:64]
    session.add(call)
    append_event(session, kind="call.abandoned", actor=actor, session_id=call.id,
                 booth_id=call.booth_id, data={"reason": call.end_reason, **(extra or {})}, ts=call.ended_at)
    return call


def mark_transferred(
    session: Session,
    call_id: str,
    *,
    actor: str,
    note: str = "",
    to_skill: str | None = None,
    to_clerk_id: int | None = None,
) -> CallSession:
    """A live call goes back to a queue (another skill, or a named clerk) with a note; event `call.transferred`."""
    if (to_skill is None) == (to_clerk_id is None):
        raise ValidationError("invalid_transfer", "give exactly one of to_skill and to_clerk_id")
    if len(note) > 500:
        raise ValidationError("invalid_transfer", "note is longer than 500 characters")
    call = _transition(session, call_id, CallStatus.QUEUED)
    previous = call.clerk_id
    call.status = CallStatus.QUEUED
    call.clerk_id = None
    session.add(call)
    append_event(session, kind="call.transferred", actor=actor, session_id=call.id, booth_id=call.booth_id,
                 data={"from_clerk_id": previous, "to_skill": to_skill, "to_clerk_id": to_clerk_id, "note": note})
    return call
