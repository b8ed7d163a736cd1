"""The clerk console's JSON APIs: an item's checklist, the transfer directory, the clerk's history.

Every route here is for clerks only (see `seat.routes`), reads the records in
the thread pool, and answers errors in the one shape of
`signaling.access.error_response` with a stable code:

| code | status | when |
|---|---|---|
| `invalid` | 400 | a path or query parameter is malformed or out of range |
| `unknown_item` | 404 | no active service item with that code |
| `call_not_found` | 404 | no call with that id served by this clerk (another clerk's call looks the same) |
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, TypeVar

from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from records.models import Booth, CallSession, CallStatus, Case, Event, Region, Role, ServiceItem, User, as_utc
from seat.console import skill_label
from signaling.access import error_response

logger = logging.getLogger(__name__)

T = TypeVar("T")

ITEM_CODE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
HISTORY_DEFAULT_LIMIT = 20
HISTORY_MAX_LIMIT = 100
HISTORY_MAX_OFFSET = 10_000


class BadParameter(ValueError):
    """A query or path parameter the API refuses with `invalid`."""


def _iso(value: datetime | None) -> str | None:
    """ISO-8601 in UTC with an offset; SQLite hands back naive datetimes that are UTC already."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat()


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    as_utc = [v.replace(tzinfo=timezone.utc) if v.tzinfo is None else v for v in (start, end)]
    return round((as_utc[1] - as_utc[0]).total_seconds(), 1)


def int_param(request: Request, name: str, *, default: int, low: int, high: int) -> int:
    """An integer query parameter within [low, high], or BadParameter."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"[0-9]{1,6}", raw):
        raise BadParameter(f"{name} must be an integer between {low} and {high}")
    value = int(raw)
    if not low <= value <= high:
        raise BadParameter(f"{name} must be an integer between {low} and {high}")
    return value


async def _read(request: Request, work: Callable[[Session], T]) -> T:
    def job() -> T:
        with Session(request.app.state.engine) as session:
            return work(session)

    return await run_in_threadpool(job)


def _user_id(request: Request) -> int:
    user_id = request.state.principal.user_id
    assert user_id is not None  # the route admits clerks only
    return int(user_id)


# --------------------------------------------------------------------------- items


def item_json(item: ServiceItem) -> dict[str, Any]:
    """An item with its checklist (一次性告知), as the console shows it during a call."""
    label = skill_label(item.skill)
    return {
        "code": item.code, "name_zh": item.name_zh, "name_en": item.name_en,
        "skill": item.skill, "skill_name_zh": label[0], "skill_name_en": label[1],
        "time_limit_days": item.time_limit_days, "cross_region": item.cross_region,
        "materials": [
            {"code": m.get("code", ""), "name_zh": m.get("name_zh", ""), "name_en": m.get("name_en", ""),
             "mandatory": bool(m.get("mandatory", False)),
             "note_zh": m.get("note_zh") or "", "note_en": m.get("note_en") or ""}
            for m in item.materials
        ],
    }


async def item_detail(request: Request) -> Response:
    """GET /api/seat/items/{code}: one active item and its materials checklist."""
    code = str(request.path_params["code"])
    if not ITEM_CODE_RE.fullmatch(code):
        return error_response(400, "invalid", "item code must be 1-32 characters of A-Z a-z 0-9 _ -")

    def load(session: Session) -> dict[str, Any] | None:
        item = session.get(ServiceItem, code)
        return item_json(item) if item is not None and item.active else None

    found = await _read(request, load)
    if found is None:
        return error_response(404, "unknown_item", f"no active service item {code!r}")
    return JSONResponse(found)


# --------------------------------------------------------------------------- directory


async def directory(request: Request) -> Response:
    """GET /api/seat/directory: every skill with its items and the clerks online who hold it.

    For the transfer dialog: a call goes to another skill's queue, or to a named
    clerk online who holds the item's skill.  The caller is left out of the
    clerk lists (a transfer to oneself is refused).
    """
    me = _user_id(request)
    bus = request.app.state.switchboard.bus
    online = await bus.list_presence("clerk")
    states = {c.clerk_id: c for c in await bus.list_clerks()}

    def load(session: Session) -> tuple[list[ServiceItem], list[User]]:
        items = list(session.exec(select(ServiceItem).where(col(ServiceItem.active).is_(True))
                                  .order_by(col(ServiceItem.code))))
        clerks = list(session.exec(select(User).where(User.role == Role.CLERK, col(User.active).is_(True))
                                   .order_by(col(User.id))))
        return items, clerks

    items, clerks = await _read(request, load)
    skills: dict[str, dict[str, Any]] = {}

    def entry(skill: str) -> dict[str, Any]:
        if skill not in skills:
            label = skill_label(skill)
            skills[skill] = {"skill": skill, "name_zh": label[0], "name_en": label[1], "items": [], "clerks": []}
        return skills[skill]

    for item in items:
        entry(item.skill)["items"].append({"code": item.code, "name_zh": item.name_zh, "name_en": item.name_en})
    for clerk in clerks:
        if clerk.id == me or str(clerk.id) not in online:
            continue
        state = states.get(str(clerk.id))
        for skill in clerk.skills:
            entry(skill)["clerks"].append({
                "id": clerk.id, "name": clerk.display_name or clerk.username,
                "status": state.status if state else "offline",
                "regions": sorted(clerk.regions),
            })
    for value in skills.values():
        value["online"] = len(value["clerks"])
        value["available"] = sum(1 for c in value["clerks"] if c["status"] == "available")
    return JSONResponse({"skills": sorted(skills.values(), key=lambda s: s["skill"])})


# --------------------------------------------------------------------------- history and calls


def _names(session: Session, calls: list[CallSession]) -> tuple[dict[str, ServiceItem], dict[int, Booth],
                                                                 dict[str, Region], dict[str, Case]]:
    item_codes = {c.item_code for c in calls}
    booth_ids = {c.booth_id for c in calls}
    region_codes = {c.region_code for c in calls}
    call_ids = [c.id for c in calls]
    items = {i.code: i for i in session.exec(select(ServiceItem).where(col(ServiceItem.code).in_(item_codes)))}
    booths = {b.id: b for b in session.exec(select(Booth).where(col(Booth.id).in_(booth_ids)))
              if b.id is not None}
    regions = {r.code: r for r in session.exec(select(Region).where(col(Region.code).in_(region_codes)))}
    cases: dict[str, Case] = {}
    for case in session.exec(select(Case).where(col(Case.session_id).in_(call_ids)).order_by(col(Case.id))):
        if case.session_id is not None:
            cases[case.session_id] = case  # the latest decision of the call wins
    return items, booths, regions, cases


def call_json(call: CallSession, items: dict[str, ServiceItem], booths: dict[int, Booth],
              regions: dict[str, Region], cases: dict[str, Case]) -> dict[str, Any]:
    """A call as the clerk's console shows it: nothing about other clerks."""
    item = items.get(call.item_code)
    booth = booths.get(call.booth_id)
    region = regions.get(call.region_code)
    case = cases.get(call.id)
    return {
        "call_id": call.id,
        "status": call.status.value,
        "item": {"code": call.item_code, "name_zh": item.name_zh if item else call.item_code,
                 "name_en": item.name_en if item else call.item_code},
        "booth": {"id": call.booth_id, "name": booth.name if booth else "", "region": call.region_code,
                  "region_name_zh": region.name_zh if region else call.region_code,
                  "region_name_en": region.name_en if region else call.region_code},
        "priority": call.priority,
        "queued_at": _iso(call.queued_at),
        "answered_at": _iso(call.answered_at),
        "ended_at": _iso(call.ended_at),
        "wait_s": _seconds(call.queued_at, call.answered_at),
        "duration_s": _seconds(call.answered_at, call.ended_at),
        "outcome": call.end_reason or "",
        "case": None if case is None else {"number": case.number, "status": case.status.value},
    }


def served_calls(session: Session, clerk_id: int, *, limit: int, offset: int) -> list[dict[str, Any]]:
    """The calls this clerk finished, newest first: ended by them, or transferred away by them.

    A transferred call belongs to the next clerk once answered (its `clerk_id` moves on), so the
    first clerk's part is found through their `call.transferred` events; for them its outcome is
    `transferred` and its duration runs to the transfer.
    """
    actor = f"user:{clerk_id}"
    transfers = select(Event.session_id).where(Event.kind == "call.transferred", Event.actor == actor)
    mine = (CallSession.clerk_id == clerk_id) & (CallSession.status == CallStatus.ENDED)
    calls = list(session.exec(
        select(CallSession).where(mine | col(CallSession.id).in_(transfers))
        .order_by(col(CallSession.queued_at).desc(), col(CallSession.id)).offset(offset).limit(limit)))
    handed_on = {c.id for c in calls if not (c.clerk_id == clerk_id and c.status is CallStatus.ENDED)}
    transferred_at: dict[str, datetime] = {}
    if handed_on:
        for event in session.exec(select(Event).where(Event.kind == "call.transferred", Event.actor == actor,
                                                      col(Event.session_id).in_(handed_on))
                                  .order_by(col(Event.seq))):
            if event.session_id is not None:
                transferred_at[event.session_id] = as_utc(event.ts)  # the latest transfer wins
    maps = _names(session, calls)
    out = []
    for call in calls:
        row = call_json(call, *maps)
        if call.id in handed_on:
            row["outcome"] = "transferred"
            row["ended_at"] = _iso(transferred_at.get(call.id))
            row["duration_s"] = _seconds(call.answered_at, transferred_at.get(call.id))
        out.append(row)
    return out


async def history(request: Request) -> Response:
    """GET /api/seat/history?limit=&offset=: the clerk's own ended or transferred calls, newest first."""
    try:
        limit = int_param(request, "limit", default=HISTORY_DEFAULT_LIMIT, low=1, high=HISTORY_MAX_LIMIT)
        offset = int_param(request, "offset", default=0, low=0, high=HISTORY_MAX_OFFSET)
    except BadParameter as exc:
        return error_response(400, "invalid", str(exc))
    me = _user_id(request)
    rows = await _read(request, lambda session: served_calls(session, me, limit=limit, offset=offset))
    return JSONResponse({"calls": rows, "limit": limit, "offset": offset})


async def call_detail(request: Request) -> Response:
    """GET /api/seat/calls/{call_id}: one call this clerk serves or served (to resume a console)."""
    raw = str(request.path_params["call_id"])
    try:
        call_id = str(uuid.UUID(raw))
    except ValueError:
        return error_response(400, "invalid", "call_id must be a UUID")
    if call_id != raw:
        return error_response(400, "invalid", "call_id must be a lowercase UUID")
    me = _user_id(request)

    def load(session: Session) -> dict[str, Any] | None:
        call = session.get(CallSession, call_id)
        if call is None or call.clerk_id != me:
            return None
        return call_json(call, *_names(session, [call]))

    found = await _read(request, load)
    if found is None:
        return error_response(404, "call_not_found", "no call of yours with that id")
    return JSONResponse(found)
