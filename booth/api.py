"""The booth-facing HTTP API: the catalogue, appointment slots, 好差评 ratings and complaints.

Every route admits only a booth device (its token as `Authorization: Bearer`), and every
object it touches is checked against that booth: another booth's call is "not found", never
"forbidden", so a kiosk learns nothing about calls that are not its own.

Errors use the app's one JSON shape `{"error": {"code", "message"}}`; the codes are stable and
the kiosk translates them:

| status | code | when |
|---|---|---|
| 400 | `bad_json` | the body is not a JSON object |
| 400 | `invalid` | a missing, unknown or ill-typed field (the message names it) |
| 400 | `invalid_rating_level`, `comment_too_long`, `invalid_category`, `text_too_long` | a rule failed |
| 404 | `call_not_found` | no such call of this booth |
| 404 | `unknown_item` | no active service item with that code |
| 409 | `call_not_ended` | the call is not over yet (a resident rates a finished call) |
| 409 | `already_rated` | the call has its rating already |
| 413 | `too_big` | a body over 16 KiB |
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from records.alerts import alert_view, blue_rating_level, raise_alert
from records.catalog import Catalog, categories, default_catalog_path, list_items, load_catalog_file
from records.errors import ConflictError, NotFoundError
from records.events import append_event
from records.models import AlertKind, Booth, CallSession, CallStatus, Rating, RatingLevel, Region, ServiceItem
from records.ratings import MAX_COMMENT, rate
from signaling.access import Principal
from signaling.protocol import first_bad_value, push
from signaling.service_hours import parse_service_hours
from signaling.json_api import ApiError
from signaling.json_api import respond as _respond

logger = logging.getLogger(__name__)
MAX_BODY = 16 * 1024
MAX_COMPLAINT_TEXT = 300
# 办不成事 reasons the kiosk offers; the supervisor's alert names the code.
COMPLAINT_CATEGORIES: Mapping[str, str] = {
    "waited_too_long": "等待时间过长",
    "could_not_hear": "听不清/看不清",
    "clerk_attitude": "工作人员态度",
    "missing_material": "材料要求不清楚",
    "other": "其他",
}
BAD_RATING_MAX = int(RatingLevel.DISSATISFIED)  # 不满意 and 非常不满意 raise a blue alert
RATING_LABELS_ZH = {5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"}
SLOT_DAYS = 3  # how many opening days the kiosk offers slots on
SLOT_HORIZON_DAYS = 30  # appointment.book refuses slots further ahead
# A region without hours takes calls at any time; its appointments still fall in office hours.
OFFICE_HOURS: tuple[tuple[time, time], ...] = ((time(9, 0), time(12, 0)), (time(13, 30), time(17, 30)))
_UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_ITEM_CODE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")

T = TypeVar("T")


# --------------------------------------------------------------------------- plumbing


def _principal(request: Request) -> Principal:
    principal = request.state.principal
    assert isinstance(principal, Principal) and principal.booth_id is not None
    return principal


async def _run(request: Request, work: Callable[[Session], T]) -> T:
    """Run `work(session)` in one committed transaction off the event loop."""
    engine = request.app.state.engine

    def job() -> T:
        with Session(engine, expire_on_commit=False) as session:
            result = work(session)
            session.commit()
            return result

    return await run_in_threadpool(job)


async def _json_body(request: Request, fields: Mapping[str, tuple[type, ...]], required: tuple[str, ...]
                     ) -> dict[str, Any]:
    """The body as a JSON object with exactly the known `fields` (name -> accepted types)."""
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise ApiError(413, "too_big", f"body larger than {MAX_BODY} bytes")
    try:
        body = json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "bad_json", "the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ApiError(400, "bad_json", "the body must be a JSON object")
    bad = first_bad_value(body)
    if bad is not None:
        raise ApiError(400, "invalid", bad)
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise ApiError(400, "invalid", f"unknown field(s): {', '.join(unknown)}")
    for name in required:
        if name not in body:
            raise ApiError(400, "invalid", f"field {name!r} is required")
    for name, value in body.items():
        types = fields[name]
        # bool is an int in Python: true is not a rating level.
        if value is None and type(None) in types:
            continue
        if isinstance(value, bool) and bool not in types or not isinstance(value, types):
            raise ApiError(400, "invalid", f"field {name!r} has the wrong type")
    return body


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _call_id(value: object) -> str:
    if not isinstance(value, str) or not _UUID_RE.fullmatch(value):
        raise ApiError(400, "invalid", "field 'call_id' must be a lowercase UUID")
    return value


def _own_call(session: Session, booth_id: int, call_id: str) -> CallSession:
    """This booth's call, or `call_not_found` (also for another booth's call)."""
    call = session.get(CallSession, call_id)
    if call is None or call.booth_id != booth_id:
        raise NotFoundError("call_not_found", "no such call for this booth")
    return call


# --------------------------------------------------------------------------- catalogue


def _catalog_file(request: Request) -> Catalog:
    """The shipped catalogue (categories, icons, pinyin initials), read once per app."""
    catalog = getattr(request.app.state, "booth_catalog", None)
    if not isinstance(catalog, Catalog):
        catalog = load_catalog_file(default_catalog_path())
        request.app.state.booth_catalog = catalog
    return catalog


def _item_json(row: ServiceItem, initials: str) -> dict[str, Any]:
    return {
        "code": row.code,
        "name_zh": row.name_zh,
        "name_en": row.name_en,
        "category": row.category,
        "initials": initials,
        "time_limit_days": row.time_limit_days,
        "cross_region": row.cross_region,
        "materials": [
            {"code": m["code"], "name_zh": m["name_zh"], "name_en": m["name_en"],
             "mandatory": bool(m["mandatory"]), "note_zh": m.get("note_zh"), "note_en": m.get("note_en")}
            for m in row.materials
        ],
    }


async def _catalog(request: Request) -> Response:
    """Categories that have an active item, and the active items with their materials."""
    catalog = await run_in_threadpool(_catalog_file, request)
    initials = {item.code: item.initials or "" for item in catalog.items}
    rows = await _run(request, lambda s: list_items(s))
    used = {row.category for row in rows}
    return JSONResponse({
        "categories": [
            {"code": c.code, "name_zh": c.name_zh, "name_en": c.name_en, "icon": c.icon,
             "count": sum(1 for row in rows if row.category == c.code)}
            for c in categories(catalog) if c.code in used
        ],
        "items": [_item_json(row, initials.get(row.code, "")) for row in rows],
    })


async def catalog(request: Request) -> Response:
    """GET /api/booth/catalog."""
    return await _respond(request, _catalog)


# --------------------------------------------------------------------------- appointment slots


@dataclass(frozen=True)
class _SlotPlan:
    zone: ZoneInfo
    intervals_on: Callable[[date], tuple[tuple[time, time], ...]]


def _slot_plan(raw_hours: Mapping[str, Any], default_zone: str) -> _SlotPlan:
    if raw_hours:
        try:
            hours = parse_service_hours(raw_hours)
            return _SlotPlan(hours.timezone, hours.intervals_on)
        except ValueError as exc:
            logger.error("region service hours are invalid, offering office hours: %s", exc)
    return _SlotPlan(ZoneInfo(default_zone), lambda day: OFFICE_HOURS)


def opening_slots(raw_hours: Mapping[str, Any], now: datetime, *, slot_minutes: int = 30, days: int = SLOT_DAYS,
                  default_zone: str = "Asia/Shanghai") -> list[dict[str, Any]]:
    """Whole slots on the next `days` opening days after `now`: `[{"date", "slots": [iso, ...]}]`.

    A slot lies wholly inside one open interval and starts after `now`; at most
    SLOT_HORIZON_DAYS ahead, which is as far as `appointment.book` accepts.
    """
    plan = _slot_plan(raw_hours, default_zone)
    local_now = now.astimezone(plan.zone)
    step = timedelta(minutes=slot_minutes)
    out: list[dict[str, Any]] = []
    for offset in range(SLOT_HORIZON_DAYS):
        day = local_now.date() + timedelta(days=offset)
        slots: list[str] = []
        for start, end in plan.intervals_on(day):
            slot = datetime.combine(day, start, tzinfo=plan.zone)
            close = datetime.combine(day, end, tzinfo=plan.zone)
            while slot + step <= close:
                if slot > local_now:
                    slots.append(slot.isoformat())
                slot += step
        if slots:
            out.append({"date": day.isoformat(), "weekday": day.isoweekday(), "slots": slots})
            if len(out) == days:
                break
    return out


async def _slots(request: Request) -> Response:
    principal = _principal(request)
    code = request.query_params.get("item_code", "")
    if not _ITEM_CODE_RE.fullmatch(code):
        raise ApiError(400, "invalid", "query parameter 'item_code' must be an item code")

    def load(session: Session) -> dict[str, Any]:
        item = session.get(ServiceItem, code)
        if item is None or not item.active:
            raise NotFoundError("unknown_item", f"no active service item {code}")
        booth = session.get(Booth, principal.booth_id)
        region = session.get(Region, booth.region_code) if booth else None
        return dict(region.service_hours) if region else {}

    raw_hours = await _run(request, load)
    switchboard = getattr(request.app.state, "switchboard", None)
    slot_minutes = int(switchboard.config.slot_minutes) if switchboard is not None else 30
    settings = request.app.state.settings
    days = opening_slots(raw_hours, datetime.now(timezone.utc), slot_minutes=slot_minutes,
                         default_zone=settings.timezone)
    return JSONResponse({"item_code": code, "slot_minutes": slot_minutes, "days": days})


async def slots(request: Request) -> Response:
    """GET /api/booth/slots?item_code=...: bookable half-hour slots of the next opening days."""
    return await _respond(request, _slots)


# --------------------------------------------------------------------------- ratings


async def _rating(request: Request) -> Response:
    principal = _principal(request)
    body = await _json_body(request, {"call_id": (str,), "level": (int,), "comment": (str,)}, ("call_id", "level"))
    call_id = _call_id(body["call_id"])
    level = body["level"]
    if not 1 <= level <= 5:
        raise ApiError(400, "invalid_rating_level", "field 'level' must be 1 (非常不满意) to 5 (非常满意)")
    comment = str(body.get("comment", "")).strip()
    if len(comment) > MAX_COMMENT:
        raise ApiError(400, "comment_too_long", f"field 'comment' is longer than {MAX_COMMENT} characters")
    booth_id = principal.booth_id
    assert booth_id is not None

    def store(session: Session) -> tuple[Rating, dict[str, Any] | None]:
        call = _own_call(session, booth_id, call_id)
        if call.status is not CallStatus.ENDED or call.answered_at is None:
            raise ConflictError("call_not_ended", f"call {call_id} is {call.status.value}, not a finished call")
        rating = rate(session, session_id=call_id, level=level, comment=comment, actor=principal.actor)
        wall_alert = None
        if level <= blue_rating_level(session, call.item_code):  # 电子监察 rules, default BAD_RATING_MAX
            text = f"好差评「{RATING_LABELS_ZH[level]}」({level}/5) · {principal.booth_name}"
            if comment:
                text += f"：{comment}"
            alert = raise_alert(session, kind=AlertKind.BLUE, message=text[:500], session_id=call_id,
                                booth_id=booth_id, actor=principal.actor)
            wall_alert = alert_view(session, int(alert.id or 0))
        return rating, wall_alert

    rating, wall_alert = await _run(request, store)
    alert_id = wall_alert["id"] if wall_alert else None
    if wall_alert:
        await request.app.state.switchboard.to_wall(push("wall.alert", alert=wall_alert))
    return JSONResponse({"rating_id": rating.id, "call_id": call_id, "level": level, "alert_id": alert_id},
                        status_code=201)


async def ratings(request: Request) -> Response:
    """POST /api/booth/ratings {call_id, level 1..5, comment?}: the resident's 好差评 of a finished call."""
    return await _respond(request, _rating)


# --------------------------------------------------------------------------- complaints


async def _complaint(request: Request) -> Response:
    principal = _principal(request)
    body = await _json_body(request, {"category": (str,), "text": (str,), "call_id": (str, type(None))},
                            ("category",))
    category = body["category"]
    if category not in COMPLAINT_CATEGORIES:
        raise ApiError(400, "invalid_category", f"field 'category' must be one of {', '.join(COMPLAINT_CATEGORIES)}")
    text = str(body.get("text", "")).strip()
    if len(text) > MAX_COMPLAINT_TEXT:
        raise ApiError(400, "text_too_long", f"field 'text' is longer than {MAX_COMPLAINT_TEXT} characters")
    call_id = _call_id(body["call_id"]) if body.get("call_id") is not None else None
    booth_id = principal.booth_id
    assert booth_id is not None

    def store(session: Session) -> dict[str, Any]:
        if call_id is not None:
            _own_call(session, booth_id, call_id)
        message = f"办不成事：{COMPLAINT_CATEGORIES[category]} · {principal.booth_name}"
        if text:
            message += f"：{text}"
        alert = raise_alert(session, kind=AlertKind.BLUE, message=message[:500], session_id=call_id,
                            booth_id=booth_id, actor=principal.actor)
        append_event(session, kind="complaint.filed", actor=principal.actor, session_id=call_id, booth_id=booth_id,
                     data={"category": category, "text": text, "alert_id": alert.id})
        return alert_view(session, int(alert.id or 0))

    wall_alert = await _run(request, store)
    alert_id = wall_alert["id"]
    await request.app.state.switchboard.to_wall(push("wall.alert", alert=wall_alert))
    return JSONResponse({"alert_id": alert_id, "category": category, "call_id": call_id}, status_code=201)


async def complaints(request: Request) -> Response:
    """POST /api/booth/complaints {category, text?, call_id?}: 办不成事 -> a blue alert for the supervisors."""
    return await _respond(request, _complaint)
