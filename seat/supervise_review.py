"""Supervision: session review (会话回看) -- the searchable list, one session's page, its recordings and materials.

Who may: supervisors and admins within their region scope (`seat.scope`), and
clerks for the sessions they served (answered, also before a transfer); booths
and anonymous visitors never (the route guard).  A session, recording or
material outside the caller's scope answers 404 exactly like a missing one.
The check runs on every request, every byte range of a recording included.

Access log (who looked at what, when; actor = the principal, session_id set):

- `recording.played` {recording_id, track}: once per playback.  A browser
  fetches a playing file in many range requests (first `bytes=0-`, then one
  per seek or buffer refill), so the event is written on the request that
  starts a playback -- no Range header, or a Range starting at byte 0 -- and
  not on the later chunks.  The review page sets a player's source only when
  the user plays or seeks, so opening the page logs nothing by itself.
- `material.viewed` {material_id}: on every request of a material's bytes
  (`Cache-Control: no-store`, so every view in the browser is a request).

Recordings are streamed from the file (Starlette's FileResponse: 206 with
Content-Range for one range, 416 with `bytes */size` when unsatisfiable,
Accept-Ranges always), typed `video/webm`, `audio/webm` or `video/x-matroska`.

Errors (the one JSON shape): 400 `invalid` for a malformed id or filter, 404
`call_not_found` / `recording_not_found` / `material_not_found`.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute

from records.db import read_only
from records.errors import NotFoundError, ValidationError
from records.events import append_event
from records.review import (
    MAX_PAGE_SIZE,
    NO_RATING,
    OUTCOMES,
    FilterOptions,
    SessionFilter,
    SessionPage,
    filter_options,
    recording_content_type,
    reviewable_material,
    reviewable_recording,
    search_sessions,
    session_review,
)
from seat.scope import visible_regions
from signaling.access import Kind, Principal, guarded_route
from signaling.json_api import ApiError, query_day, respond, transact, uuid_param

T = TypeVar("T")

REVIEWERS = frozenset({Kind.CLERK, Kind.SUPERVISOR, Kind.ADMIN})
PAGE_SIZE = 20
FILTER_PARAMS = frozenset({"from", "to", "booth", "region", "clerk", "item", "outcome", "rating", "has_alert",
                           "page", "per_page", "lang"})
_CODE = re.compile(r"[A-Za-z0-9_-]{1,32}")
_INT = re.compile(r"[0-9]{1,9}")
_FROM_ZERO = re.compile(r"^\s*bytes\s*=\s*0\s*-")
NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}

OUTCOME_LABELS: dict[str, tuple[str, str]] = {
    "queued": ("排队中", "Queued"), "offered": ("分配中", "Offered"), "active": ("通话中", "In call"),
    "ended": ("已结束", "Ended"), "abandoned": ("未接通", "Abandoned"),
    "accepted": ("受理", "Accepted"), "refused": ("不予受理", "Refused"),
    "needs_supplement": ("补正", "Needs more materials"), "completed": ("办结", "Completed"),
}
RATING_LABELS: dict[int, tuple[str, str]] = {
    5: ("非常满意", "Very satisfied"), 4: ("满意", "Satisfied"), 3: ("基本满意", "Basically satisfied"),
    2: ("不满意", "Dissatisfied"), 1: ("非常不满意", "Very dissatisfied"),
}
EVENT_LABELS: dict[str, tuple[str, str]] = {
    "call.queued": ("排队", "Queued"), "call.offered": ("分配给窗口", "Offered to a clerk"),
    "call.requeued": ("重新排队", "Back in the queue"), "call.answered": ("接听", "Answered"),
    "call.transferred": ("转接", "Transferred"), "call.ended": ("结束", "Ended"),
    "call.abandoned": ("未接通即挂断", "Abandoned"), "call.supervisor_invited": ("邀请监督", "Supervisor invited"),
    "capture.requested": ("请求拍摄材料", "Capture requested"), "material.added": ("材料上传", "Material added"),
    "material.ticked": ("材料核验勾选", "Checklist ticked"), "material.viewed": ("查看材料", "Material viewed"),
    "chat.message": ("文字消息", "Chat message"), "case.opened": ("办理决定", "Decision"),
    "case.status_changed": ("办件状态变更", "Case status changed"), "print.created": ("生成打印文书", "Print job"),
    "print.sent": ("文书已发送", "Print job sent"), "print.printed": ("打印成功", "Printed"),
    "print.failed": ("打印失败", "Print failed"),
    "print.browser": ("已交浏览器打印（未确认出纸）", "Sent to the browser's printer (not confirmed)"),
    "case.accepted_without_materials": ("未核验必要材料即受理（已确认）", "Accepted without mandatory materials (confirmed)"),
    "booth.disconnected": ("晓屋断线", "Booth disconnected"),
    "booth.rejoined": ("晓屋重连", "Booth reconnected"), "rating.given": ("好差评", "Rating"),
    "complaint.filed": ("投诉", "Complaint"), "recording.added": ("录像登记", "Recording registered"),
    "recording.finished": ("录像完成", "Recordings finished"), "recording.recovered": ("录像恢复", "Recordings recovered"),
    "recording.played": ("回放录像", "Recording played"), "recording.purged": ("录像清除", "Recording purged"),
    "monitor.joined": ("监督旁听开始", "Monitoring started"), "monitor.left": ("监督旁听结束", "Monitoring ended"),
    "alert.raised": ("预警", "Alert raised"), "alert.acknowledged": ("预警已签收", "Alert acknowledged"),
    "alert.resolved": ("预警已处理", "Alert resolved"), "media.transcoding": ("媒体转码", "Media transcoding"),
}
TRACK_LABELS: dict[str, tuple[str, str]] = {
    "booth-face": ("居民人像", "Resident camera"), "booth-document": ("高拍仪", "Document camera"),
    "booth-audio": ("居民声音", "Resident audio"), "clerk-camera": ("窗口人像", "Clerk camera"),
    "clerk-audio": ("窗口声音", "Clerk audio"),
}
MATERIAL_KIND_LABELS: dict[str, tuple[str, str]] = {
    "capture": ("高拍件", "Capture"), "signature": ("签名", "Signature"), "id_photo": ("证件照", "ID photo"),
    "still": ("截图", "Still"),
}
ALERT_LABELS: dict[str, tuple[str, str]] = {
    "yellow": ("黄牌 · 临近时限", "Yellow · near deadline"), "red": ("红牌 · 已超时", "Red · overdue"),
    "blue": ("蓝牌 · 投诉或差评", "Blue · complaint or bad rating"),
}


# --------------------------------------------------------------------------- scope and parameters


@dataclass(frozen=True)
class Scope:
    """Where a principal may look: regions (None: all) or, for a clerk, their own sessions."""

    regions: frozenset[str] | None
    served_by: int | None

    def kwargs(self) -> dict[str, Any]:
        return {"regions": self.regions, "served_by": self.served_by}


def scope_of(principal: Principal) -> Scope:
    if principal.kind is Kind.CLERK:
        return Scope(regions=None, served_by=principal.user_id)
    return Scope(regions=visible_regions(principal), served_by=None)


def _me(request: Request) -> Principal:
    principal = request.state.principal
    assert isinstance(principal, Principal) and principal.kind in REVIEWERS
    return principal


def _zone(request: Request) -> ZoneInfo:
    return ZoneInfo(request.app.state.settings.timezone)


def _int(name: str, raw: str, low: int, high: int) -> int:
    if not _INT.fullmatch(raw) or not low <= int(raw) <= high:
        raise ApiError(400, "invalid", f"{name} must be an integer between {low} and {high}")
    return int(raw)


def _day(name: str, raw: str) -> date:
    return query_day(raw, name)


@dataclass(frozen=True)
class ListQuery:
    """A parsed list request: the filter, the page, and the raw values to refill the form."""

    filters: SessionFilter
    page: int
    per_page: int
    values: dict[str, str]


def parse_list_query(request: Request) -> ListQuery:
    """Query parameters -> filter; empty values mean no filter; anything malformed is 400 `invalid`."""
    params = request.query_params
    unknown = set(params) - FILTER_PARAMS
    if unknown:
        raise ApiError(400, "invalid", f"unknown parameter(s): {', '.join(sorted(unknown))}")
    values = {k: params[k].strip() for k in FILTER_PARAMS - {"lang"} if params.get(k, "").strip()}
    zone = _zone(request)
    since = until = None
    if "from" in values:
        since = datetime.combine(_day("from", values["from"]), time(0), zone).astimezone(timezone.utc)
    if "to" in values:  # inclusive: up to the end of that local day
        until = datetime.combine(_day("to", values["to"]) + timedelta(days=1), time(0), zone).astimezone(timezone.utc)
    for name in ("region", "item"):
        if name in values and not _CODE.fullmatch(values[name]):
            raise ApiError(400, "invalid", f"{name} must be a code of letters, digits, - or _")
    outcome = values.get("outcome")
    if outcome is not None and outcome not in OUTCOMES:
        raise ApiError(400, "invalid", f"outcome must be one of {', '.join(sorted(OUTCOMES))}")
    rating: int | str | None = values.get("rating")
    if rating is not None and rating != NO_RATING:
        rating = _int("rating", str(rating), 1, 5)
    has_alert = values.get("has_alert")
    if has_alert is not None and has_alert not in ("yes", "no"):
        raise ApiError(400, "invalid", "has_alert must be yes or no")
    try:
        filters = SessionFilter(
            since=since, until=until,
            booth_id=_int("booth", values["booth"], 1, 10**9) if "booth" in values else None,
            region_code=values.get("region"),
            clerk_id=_int("clerk", values["clerk"], 1, 10**9) if "clerk" in values else None,
            item_code=values.get("item"), outcome=outcome, rating=rating,
            has_alert=None if has_alert is None else has_alert == "yes")
    except ValidationError as exc:
        raise ApiError(400, "invalid", exc.message) from None
    page = _int("page", values["page"], 1, 100_000) if "page" in values else 1
    per_page = _int("per_page", values["per_page"], 1, MAX_PAGE_SIZE) if "per_page" in values else PAGE_SIZE
    return ListQuery(filters, page, per_page, values)


async def _read(request: Request, work: Callable[[Session], T]) -> T:
    """`work(session)` on a read-only connection, off the event loop (no write lock taken)."""

    def job() -> T:
        with Session(read_only(request.app.state.engine)) as session:
            return work(session)

    return await run_in_threadpool(job)


# --------------------------------------------------------------------------- presentation helpers


def local_time(value: str | None, zone: ZoneInfo, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """An ISO timestamp as local wall time (the region's zone), or an empty string."""
    if not value:
        return ""
    return datetime.fromisoformat(value).astimezone(zone).strftime(fmt)


def clock(seconds: float | None) -> str:
    """Seconds as m:ss (h:mm:ss past an hour); empty for None."""
    if seconds is None:
        return ""
    whole = int(max(0.0, seconds))
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def event_detail(event: dict[str, Any]) -> tuple[str, str]:
    """A short (zh, en) line saying what an event's data means."""
    data, kind = event["data"], event["kind"]
    if kind == "chat.message":
        text = str(data.get("text", ""))
        return text, text
    if kind in ("material.added", "material.ticked"):
        code = data.get("checklist_code") or data.get("material_code") or ""
        return f"材料 #{data.get('material_id', '')} {code}".strip(), f"Material #{data.get('material_id', '')} {code}".strip()
    if kind == "capture.requested":
        code = data.get("material_code") or ""
        return f"请求拍摄 {code}".strip(), f"Asked for {code}".strip()
    if kind == "case.opened":
        label = OUTCOME_LABELS.get(str(data.get("status")), ("", ""))
        return f"{label[0]} · {data.get('number', '')}", f"{label[1]} · {data.get('number', '')}"
    if kind == "case.accepted_without_materials":
        names = "、".join(str(m.get("name_zh", m.get("code", ""))) for m in data.get("materials", []) if isinstance(m, dict))
        codes = ", ".join(str(m.get("code", "")) for m in data.get("materials", []) if isinstance(m, dict))
        return f"{data.get('case_number', '')} 未核验：{names}", f"{data.get('case_number', '')} not ticked: {codes}"
    if kind.startswith("print."):
        error = str(data.get("error") or "")
        return (f"文书 #{data.get('print_job_id', '')} {data.get('document', '')} {error}".strip(),
                f"Job #{data.get('print_job_id', '')} {data.get('document', '')} {error}".strip())
    if kind == "rating.given":
        zh, en = RATING_LABELS.get(int(data.get("level", 0) or 0), ("", ""))
        comment = str(data.get("comment") or "")
        return f"{zh} {comment}".strip(), f"{en} {comment}".strip()
    if kind == "call.ended":
        return str(data.get("reason", "")), str(data.get("reason", ""))
    if kind == "call.transferred":
        note = str(data.get("note") or "")
        return f"转至 {data.get('to_skill') or data.get('to_clerk_id')} {note}".strip(), \
            f"To {data.get('to_skill') or data.get('to_clerk_id')} {note}".strip()
    if kind == "recording.played":
        zh, en = TRACK_LABELS.get(str(data.get("track")), (str(data.get("track")), str(data.get("track"))))
        return zh, en
    if kind == "material.viewed":
        return f"材料 #{data.get('material_id', '')}", f"Material #{data.get('material_id', '')}"
    if kind in ("recording.finished", "recording.recovered"):
        count = len(data.get("files", []))
        return f"{count} 个文件", f"{count} file(s)"
    return "", ""


def _with_urls(review: dict[str, Any]) -> dict[str, Any]:
    for rec in review["recordings"]:
        rec["url"] = f"/api/supervise/recordings/{rec['recording_id']}"
    for material in review["materials"]:
        material["url"] = f"/api/supervise/materials/{material['material_id']}"
    return review


def _page_context(request: Request, principal: Principal) -> dict[str, Any]:
    zone = _zone(request)
    return {"principal": principal, "zone": zone.key, "clerk_view": principal.kind is Kind.CLERK,
            "local_time": lambda v, fmt="%Y-%m-%d %H:%M:%S": local_time(v, zone, fmt), "clock": clock,
            "outcome_labels": OUTCOME_LABELS, "rating_labels": RATING_LABELS, "event_labels": EVENT_LABELS,
            "track_labels": TRACK_LABELS, "material_kind_labels": MATERIAL_KIND_LABELS,
            "alert_labels": ALERT_LABELS, "event_detail": event_detail}


def _render(request: Request, template: str, context: dict[str, Any], status: int = 200) -> Response:
    return request.app.state.templates.TemplateResponse(request, template, context, status_code=status)


# --------------------------------------------------------------------------- list


def _search(query: ListQuery, scope: Scope) -> Callable[[Session], SessionPage]:
    return lambda s: search_sessions(s, query.filters, limit=query.per_page,
                                     offset=(query.page - 1) * query.per_page, **scope.kwargs())


async def _sessions_api(request: Request) -> Response:
    scope = scope_of(_me(request))
    query = parse_list_query(request)
    page = await _read(request, _search(query, scope))
    return JSONResponse({"sessions": page.rows, "total": page.total, "page": query.page,
                         "per_page": query.per_page, "pages": max(1, -(-page.total // query.per_page))})


async def sessions_api(request: Request) -> Response:
    """GET /api/supervise/sessions?from=&to=&booth=&region=&clerk=&item=&outcome=&rating=&has_alert=&page=&per_page="""
    return await respond(request, _sessions_api)


async def sessions_page(request: Request) -> Response:
    """GET /supervise/sessions: the searchable list (the form works without script; the script refreshes in place)."""
    principal = _me(request)
    scope = scope_of(principal)
    error: str | None = None
    try:
        query = parse_list_query(request)
    except ApiError as exc:
        error, query = exc.message, ListQuery(SessionFilter(), 1, PAGE_SIZE, {})

    def load(session: Session) -> tuple[SessionPage, FilterOptions]:
        return _search(query, scope)(session), filter_options(session, regions=scope.regions)

    page, options = await _read(request, load)
    if principal.kind is Kind.CLERK:  # a clerk's menus: only what their own sessions can hold
        options = FilterOptions(regions=[r for r in options.regions if r.code in principal.regions],
                                booths=[b for b in options.booths if b.region_code in principal.regions],
                                clerks=[], items=options.items)
    context = {**_page_context(request, principal), "page": page, "query": query, "options": options,
               "error": error, "pages": max(1, -(-page.total // query.per_page)),
               "outcomes": list(OUTCOME_LABELS.items()),
               "page_url": lambda n: "?" + urlencode({**{k: v for k, v in query.values.items() if k != "page"},
                                                      "page": n})}
    return _render(request, "supervise_sessions.html", context, status=400 if error else 200)


# --------------------------------------------------------------------------- one session


async def _load_review(request: Request) -> dict[str, Any]:
    scope = scope_of(_me(request))
    call_id = uuid_param(request)
    review = await _read(request, lambda s: session_review(s, call_id, **scope.kwargs()))
    if review is None:
        raise ApiError(404, "call_not_found", "no session with that id that you may review")
    return _with_urls(review)


async def _session_api(request: Request) -> Response:
    return JSONResponse(await _load_review(request))


async def session_api(request: Request) -> Response:
    """GET /api/supervise/sessions/{call_id}: the whole review of one session as JSON."""
    return await respond(request, _session_api)


async def session_page(request: Request) -> Response:
    """GET /supervise/sessions/{call_id}: time line, synchronised player, materials, case, rating."""
    principal = _me(request)
    context = _page_context(request, principal)
    try:
        review = await _load_review(request)
    except ApiError as exc:
        return _render(request, "supervise_session.html", {**context, "review": None, "error_code": exc.code},
                       status=exc.status)
    return _render(request, "supervise_session.html", {**context, "review": review, "error_code": None})


# --------------------------------------------------------------------------- files


async def _recording_file(request: Request) -> Response:
    me = _me(request)
    scope = scope_of(me)
    recording_id = int(request.path_params["recording_id"])
    store = request.app.state.store
    header = request.headers.get("range")
    starts_playback = request.method == "GET" and (header is None or _FROM_ZERO.match(header) is not None)

    def find(session: Session) -> tuple[Any, str]:
        found = reviewable_recording(session, recording_id, **scope.kwargs())
        if found is None or not store.exists(found[0].path):
            raise NotFoundError("recording_not_found", "no recording with that id that you may play")
        recording, call = found
        if starts_playback:
            append_event(session, kind="recording.played", actor=me.actor, session_id=call.id,
                         booth_id=call.booth_id, data={"recording_id": recording.id, "track": recording.track})
        return store.absolute(recording.path), recording_content_type(recording)

    # A playback start writes its access event; the chunks after it only read.
    path, content_type = await (transact(request, find) if starts_playback else _read(request, find))
    return FileResponse(path, media_type=content_type, headers=dict(NO_STORE), content_disposition_type="inline")


async def recording_file(request: Request) -> Response:
    """GET /api/supervise/recordings/{id}: the track file, with HTTP Range; a playback start is logged."""
    return await respond(request, _recording_file)


async def _material_file(request: Request) -> Response:
    me = _me(request)
    scope = scope_of(me)
    material_id = int(request.path_params["material_id"])
    store = request.app.state.store

    def find(session: Session) -> tuple[Any, str, str]:
        found = reviewable_material(session, material_id, **scope.kwargs())
        if found is None or not store.exists(found[0].path):
            raise NotFoundError("material_not_found", "no material with that id that you may view")
        material, call = found
        append_event(session, kind="material.viewed", actor=me.actor, session_id=call.id, booth_id=call.booth_id,
                     data={"material_id": material.id})
        return store.absolute(material.path), material.content_type, material.sha256

    path, content_type, sha256 = await transact(request, find)
    return FileResponse(path, media_type=content_type, headers={**NO_STORE, "X-Content-SHA256": sha256},
                        content_disposition_type="inline")


async def material_file(request: Request) -> Response:
    """GET /api/supervise/materials/{id}: the material's bytes; every view is logged."""
    return await respond(request, _material_file)


def routes() -> list[BaseRoute]:
    return [
        guarded_route("/supervise/sessions", sessions_page, allow=REVIEWERS),
        guarded_route("/supervise/sessions/{call_id}", session_page, allow=REVIEWERS),
        guarded_route("/api/supervise/sessions", sessions_api, allow=REVIEWERS),
        guarded_route("/api/supervise/sessions/{call_id}", session_api, allow=REVIEWERS),
        guarded_route("/api/supervise/recordings/{recording_id:int}", recording_file, allow=REVIEWERS),
        guarded_route("/api/supervise/materials/{material_id:int}", material_file, allow=REVIEWERS),
    ]
