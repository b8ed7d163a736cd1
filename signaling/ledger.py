"""The signaling layer's view of the records: async, one transaction per operation.

Database work is blocking, so every operation runs in the thread pool.
Rows come back detached (expire_on_commit=False) and are only read.  The
catalogue and region hours change rarely and are cached for a minute.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

from sqlalchemy import bindparam, update
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from records import calls as call_records
from records.db import read_only
from records.events import append_event, append_event_rows
from records.models import Appointment, Booth, CallSession, CallStatus, Region, ServiceItem, User, as_utc
from signaling.batch_loader import BatchLoader

logger = logging.getLogger(__name__)

T = TypeVar("T")
V = TypeVar("V")
CACHE_TTL_S = 60.0
SEEN_BATCH_S = 0.2


@dataclass(frozen=True)
class ItemInfo:
    code: str
    name_zh: str
    name_en: str
    skill: str
    cross_region: bool


@dataclass(frozen=True)
class BoothInfo:
    id: int
    name: str
    region: str
    region_name_zh: str
    service_hours: dict[str, Any]


@dataclass(frozen=True)
class ClerkInfo:
    id: int
    username: str
    display_name: str
    skills: frozenset[str]
    regions: frozenset[str]


# The lookups every connecting booth makes, built once (each batch differs only in its ids).
_BOOTH = Booth.__table__
_REGION = Region.__table__
_CALL = CallSession.__table__
_BOOTHS_WITH_REGION = (
    sa_select(_BOOTH.c.id, _BOOTH.c.name, _BOOTH.c.region_code, _REGION.c.name_zh, _REGION.c.service_hours)
    .select_from(_BOOTH.outerjoin(_REGION, _REGION.c.code == _BOOTH.c.region_code))
    .where(_BOOTH.c.id.in_(bindparam("ids", expanding=True))))
_OPEN_CALLS_OF_BOOTHS = (
    sa_select(_CALL)
    .where(_CALL.c.booth_id.in_(bindparam("ids", expanding=True)),
           _CALL.c.status.in_((CallStatus.QUEUED, CallStatus.OFFERED, CallStatus.ACTIVE)))
    .order_by(_CALL.c.queued_at.desc()))


def _booth_infos(conn: Connection, booth_ids: list[int]) -> dict[int, BoothInfo]:
    """Booths with their region's name and service hours, in one Core read.

    The lookups a connecting booth makes are Core, not ORM: half the cost per batch, and in a
    reconnect storm the thread doing them competes with the event loop for the GIL.
    """
    rows = conn.execute(_BOOTHS_WITH_REGION, {"ids": booth_ids})
    return {booth_id: BoothInfo(booth_id, name, code, region_name or code, dict(hours or {}))
            for booth_id, name, code, region_name, hours in rows}


def _open_calls(conn: Connection, booth_ids: list[int]) -> dict[int, CallSession]:
    """The latest waiting or live call of each of these booths (detached objects, only to be read)."""
    latest: dict[int, CallSession] = {}
    for row in conn.execute(_OPEN_CALLS_OF_BOOTHS, {"ids": booth_ids}):
        if row.booth_id not in latest:
            latest[row.booth_id] = CallSession(**row._mapping)
    return latest


@dataclass(frozen=True)
class Arrival:
    """What the records say of a booth as it connects."""

    booth: BoothInfo | None
    open_call: CallSession | None


def _arrivals(conn: Connection, booth_ids: list[int]) -> dict[int, Arrival]:
    booths, calls = _booth_infos(conn, booth_ids), _open_calls(conn, booth_ids)
    return {booth_id: Arrival(booths.get(booth_id), calls.get(booth_id)) for booth_id in booth_ids}


class Ledger:
    """Records operations the switchboard needs, as coroutines."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._read_engine = read_only(engine)
        self._seen: list[tuple[int, bool, datetime]] = []
        self._seen_flush: asyncio.Task[None] | None = None
        self._items: tuple[float, dict[str, ItemInfo]] = (0.0, {})
        self._booths: dict[int, tuple[float, BoothInfo]] = {}
        # Batched, so that a reconnect storm is a few queries: every booth that connects asks for
        # its arrival; the wall and call requests ask for booth infos and open calls.
        self._arrivals: BatchLoader[int, Arrival] = BatchLoader(functools.partial(self._read_with, _arrivals))
        self._booth_infos: BatchLoader[int, BoothInfo] = BatchLoader(functools.partial(self._read_with, _booth_infos))
        self._open_calls: BatchLoader[int, CallSession] = BatchLoader(functools.partial(self._read_with, _open_calls))

    def _read_with(self, fetch: Callable[[Connection, list[int]], dict[int, V]], booth_ids: list[int]) -> dict[int, V]:
        """Run a batched Core `fetch` on a read-only connection (blocking: in the loader's thread)."""
        with self._read_engine.connect() as conn:
            return fetch(conn, booth_ids)

    async def run(self, work: Callable[[Session], T]) -> T:
        """Run `work(session)` in one committed transaction, off the event loop."""

        def job() -> T:
            with Session(self.engine, expire_on_commit=False) as session:
                result = work(session)
                session.commit()
                return result

        return await run_in_threadpool(job)

    async def read(self, work: Callable[[Session], T]) -> T:
        """Run read-only `work(session)` off the event loop, without taking SQLite's write lock."""

        def job() -> T:
            with Session(self._read_engine, expire_on_commit=False) as session:
                return work(session)

        return await run_in_threadpool(job)

    # -- catalogue and places ----------------------------------------------------------
    async def item(self, code: str) -> ItemInfo | None:
        return (await self.items(fresh_for=code)).get(code)

    async def items(self, *, fresh_for: str | None = None) -> dict[str, ItemInfo]:
        """Every active service item by code, cached; reread when stale or `fresh_for` is unknown."""
        loaded_at, items = self._items
        if time.monotonic() - loaded_at > CACHE_TTL_S or (fresh_for is not None and fresh_for not in items):
            rows = await self.read(lambda s: list(s.exec(select(ServiceItem).where(col(ServiceItem.active)))))
            items = {r.code: ItemInfo(r.code, r.name_zh, r.name_en, r.skill, r.cross_region) for r in rows}
            self._items = (time.monotonic(), items)
        return items

    async def booth(self, booth_id: int) -> BoothInfo | None:
        cached = self._booths.get(booth_id)
        if cached is not None and time.monotonic() - cached[0] < CACHE_TTL_S:
            return cached[1]

        info = await self._booth_infos.get(booth_id)
        if info is not None:
            self._booths[booth_id] = (time.monotonic(), info)
        return info

    async def clerk(self, user_id: int) -> ClerkInfo | None:
        def load(session: Session) -> ClerkInfo | None:
            user = session.get(User, user_id)
            if user is None or not user.active:
                return None
            return ClerkInfo(user.id or 0, user.username, user.display_name,
                             frozenset(user.skills), frozenset(user.regions))

        return await self.read(load)

    async def clerks_with_skill(self, skill: str) -> list[ClerkInfo]:
        def load(session: Session) -> list[ClerkInfo]:
            return [ClerkInfo(u.id or 0, u.username, u.display_name, frozenset(u.skills), frozenset(u.regions))
                    for u in session.exec(select(User).where(col(User.active))) if skill in u.skills]

        return await self.read(load)

    # -- booths ------------------------------------------------------------------------
    def note_booth_seen(self, booth_id: int, *, online: bool) -> None:
        """Log a booth going online/offline in the next batch.

        Connects and disconnects are the storm case (thousands of booths coming back at
        once): batching turns two write transactions per booth into one per batch, and
        attach no longer waits for the write before it says `welcome`.
        """
        self._seen.append((booth_id, online, datetime.now(timezone.utc)))
        if self._seen_flush is None or self._seen_flush.done():
            self._seen_flush = asyncio.get_running_loop().create_task(self._flush_seen_soon())

    async def _flush_seen_soon(self) -> None:
        await asyncio.sleep(SEEN_BATCH_S)  # the batching window
        await self.flush()

    async def flush(self) -> None:
        """Write the pending online/offline batch; a failed batch is kept for the next try."""
        batch, self._seen = self._seen, []
        if not batch:
            return

        def work(session: Session) -> None:
            ids = sorted({booth_id for booth_id, _, _ in batch})
            known = set(session.exec(select(Booth.id).where(col(Booth.id).in_(ids))))
            last_seen: dict[int, datetime] = {}
            entries = []
            for booth_id, online, at in batch:
                if booth_id not in known:
                    continue
                last_seen[booth_id] = at
                entries.append(dict(kind="booth.online" if online else "booth.offline",
                                    actor=f"booth:{booth_id}", booth_id=booth_id, data={}, ts=at))
            if last_seen:  # one executemany UPDATE; the ORM's per-row bookkeeping cost more than the writes
                booth_table = Booth.__table__
                session.execute(update(booth_table).where(booth_table.c.id == bindparam("b_id"))
                                .values(last_seen_at=bindparam("b_seen")),
                                [{"b_id": k, "b_seen": v} for k, v in last_seen.items()])
            append_event_rows(session, entries)  # one chain-head lock and one INSERT for the batch

        try:
            await self.run(work)
        except Exception:  # noqa: BLE001 - the database may be away; keep the batch
            logger.exception("could not write %d booth presence events; will retry", len(batch))
            self._seen = batch + self._seen

    async def booth_devices(self, booth_id: int, devices: dict[str, str]) -> None:
        """Store what the booth reports of its devices; a change is an event."""

        def work(session: Session) -> None:
            booth = session.get(Booth, booth_id)
            if booth is None:
                return
            booth.last_seen_at = datetime.now(timezone.utc)
            merged = {**booth.device_status, **devices}
            if merged != booth.device_status:
                booth.device_status = merged
                append_event(session, kind="booth.devices", actor=f"booth:{booth_id}", booth_id=booth_id,
                             data={"devices": devices})
            session.add(booth)

        await self.run(work)

    # -- calls -------------------------------------------------------------------------
    async def create_call(self, booth_id: int, item_code: str, priority: int) -> CallSession:
        return await self.run(lambda s: call_records.create_call(s, booth_id=booth_id, item_code=item_code,
                                                                  priority=priority))

    async def call(self, call_id: str) -> CallSession | None:
        return await self.read(lambda s: s.get(CallSession, call_id))

    async def open_call_of_booth(self, booth_id: int) -> CallSession | None:
        """The booth's call that is waiting or live, if any (batched with other booths' lookups)."""
        return await self._open_calls.get(booth_id)

    async def arrival(self, booth_id: int) -> Arrival:
        """What a connecting booth's welcome needs: its place and hours, and any call it may resume.

        One batched read for both (a reconnect storm costs one thread hop per batch of booths,
        not two); it refreshes the booth's cached info on the way.
        """
        arrival = await self._arrivals.get(booth_id) or Arrival(None, None)
        if arrival.booth is not None:
            self._booths[booth_id] = (time.monotonic(), arrival.booth)
        return arrival

    async def queued_calls(self) -> list[CallSession]:
        waiting = (CallStatus.QUEUED, CallStatus.OFFERED)
        return await self.read(lambda s: list(s.exec(
            select(CallSession).where(col(CallSession.status).in_(waiting)))))

    async def active_calls(self) -> list[CallSession]:
        return await self.read(lambda s: list(s.exec(
            select(CallSession).where(CallSession.status == CallStatus.ACTIVE))))

    async def offered(self, call_id: str, clerk_id: int, extra: dict[str, Any]) -> None:
        await self.run(lambda s: call_records.mark_offered(s, call_id, clerk_id=clerk_id, extra=extra))

    async def requeued(self, call_id: str, reason: str, extra: dict[str, Any]) -> None:
        await self.run(lambda s: call_records.mark_requeued(s, call_id, reason=reason, extra=extra))

    async def answered(self, call_id: str, clerk_id: int, media_node: str, extra: dict[str, Any]) -> CallSession:
        return await self.run(lambda s: call_records.mark_answered(s, call_id, clerk_id=clerk_id,
                                                                    media_node=media_node, extra=extra))

    async def abandoned(self, call_id: str, reason: str, actor: str, extra: dict[str, Any]) -> CallSession:
        return await self.run(lambda s: call_records.mark_abandoned(s, call_id, reason=reason, actor=actor,
                                                                     extra=extra))

    async def ended(self, call_id: str, reason: str, actor: str) -> CallSession:
        return await self.run(lambda s: call_records.mark_ended(s, call_id, reason, actor=actor))

    async def transferred(self, call_id: str, *, actor: str, note: str, to_skill: str | None,
                          to_clerk_id: int | None) -> CallSession:
        return await self.run(lambda s: call_records.mark_transferred(
            s, call_id, actor=actor, note=note, to_skill=to_skill, to_clerk_id=to_clerk_id))

    async def event(self, kind: str, *, actor: str, session_id: str | None = None, booth_id: int | None = None,
                    data: dict[str, Any] | None = None) -> None:
        await self.run(lambda s: append_event(s, kind=kind, actor=actor, session_id=session_id,
                                              booth_id=booth_id, data=data or {}))

    async def transfer_note(self, call_id: str) -> str | None:
        """The note of the call's latest transfer, or None if it was never transferred."""
        from records.models import Event

        def load(session: Session) -> str | None:
            ev = session.exec(select(Event).where(Event.session_id == call_id, Event.kind == "call.transferred")
                              .order_by(col(Event.seq).desc())).first()
            return str(ev.data.get("note", "")) if ev else None

        return await self.read(load)

    async def last_call_served_by(self, clerk_id: int) -> CallSession | None:
        """The clerk's most recently ended or transferred call: what a wrap-up note is about."""
        from records.models import Event

        def load(session: Session) -> CallSession | None:
            ev = session.exec(select(Event).where(Event.kind.in_(("call.ended", "call.transferred")),  # type: ignore[attr-defined]
                                                  Event.actor == f"user:{clerk_id}")
                              .order_by(col(Event.seq).desc())).first()
            if ev is None or ev.session_id is None:
                return None
            return session.get(CallSession, ev.session_id)

        return await self.read(load)

    async def has_declined(self, call_id: str, clerk_id: int) -> bool:
        from records.models import Event

        def load(session: Session) -> bool:
            rows = session.exec(select(Event).where(Event.session_id == call_id, Event.kind == "call.requeued"))
            return any(e.data.get("reason") == "declined" and e.data.get("clerk_id") == clerk_id for e in rows)

        return await self.read(load)

    async def recent_handle_times(self, limit: int = 50) -> list[float]:
        """Seconds from answer to end of the latest ended calls, for wait estimates."""

        def load(session: Session) -> list[float]:
            rows = session.exec(select(CallSession).where(CallSession.status == CallStatus.ENDED)
                                .order_by(col(CallSession.ended_at).desc()).limit(limit))
            return [(as_utc(r.ended_at) - as_utc(r.answered_at)).total_seconds()
                    for r in rows if r.ended_at and r.answered_at]

        return await self.read(load)

    # -- appointments ------------------------------------------------------------------
    async def appointment(self, appointment_id: int) -> Appointment | None:
        return await self.read(lambda s: s.get(Appointment, appointment_id))

    async def book_appointment(self, *, booth_id: int, item_code: str, slot_start: datetime, slot_minutes: int,
                               clerk_id: int | None, contact: str) -> Appointment:
        def work(session: Session) -> Appointment:
            appointment = Appointment(booth_id=booth_id, item_code=item_code, clerk_id=clerk_id,
                                      slot_start=slot_start, slot_end=slot_start + timedelta(minutes=slot_minutes),
                                      contact=contact)
            session.add(appointment)
            session.flush()
            append_event(session, kind="appointment.booked", actor=f"booth:{booth_id}", booth_id=booth_id,
                         data={"appointment_id": appointment.id, "item_code": item_code,
                               "slot_start": slot_start.isoformat(), "clerk_id": clerk_id})
            return appointment

        return await self.run(work)

    async def use_appointment(self, appointment_id: int) -> None:
        def work(session: Session) -> None:
            appointment = session.get(Appointment, appointment_id)
            if appointment is not None and appointment.status == "booked":
                appointment.status = "used"
                session.add(appointment)

        await self.run(work)
