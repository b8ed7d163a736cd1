"""Session review (会话回看): find past call sessions and gather everything one of them left behind.

Two jobs, both read-only over a SQLModel session:

- `search_sessions`: the calls matching a `SessionFilter`, newest first, a page
  at a time, within a scope the caller computes (a supervisor's regions, or
  the one clerk whose own sessions they are);
- `session_review`: one call with its booth, clerk, item, every event in chain
  order, recordings (with where each sits on the session's time line),
  materials, case, print jobs, rating and alerts.

Scope is a parameter, not a policy: `regions=None` means every region,
`served_by=<user id>` limits to calls that clerk answered (the last clerk on
`CallSession.clerk_id`, or an earlier one of a transferred call, by its
`call.answered` event).  A call outside the scope is answered exactly like a
missing one (None), so nobody learns which ids exist.

Everything returned is JSON-ready: timestamps as ISO-8601 UTC strings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import exists, func, or_
from sqlalchemy import select as sa_select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from records.errors import ValidationError
from records.events import list_events
from records.materials import list_materials
from records.models import (
    Alert,
    Booth,
    CallSession,
    CallStatus,
    Case,
    CaseStatus,
    Event,
    Material,
    PrintJob,
    Rating,
    RatingLevel,
    Recording,
    Region,
    Role,
    ServiceItem,
    User,
    as_utc,
)
from records.recordings import list_recordings

CALL_OUTCOMES = frozenset(s.value for s in CallStatus)
CASE_OUTCOMES = frozenset(s.value for s in CaseStatus)
OUTCOMES = CALL_OUTCOMES | CASE_OUTCOMES
NO_RATING = "none"
MAX_PAGE_SIZE = 100
MAX_TIMELINE_EVENTS = 5000
# Events that record someone looking at the session afterwards, not the call itself.
ACCESS_KINDS = frozenset({"recording.played", "material.viewed"})
RECORDING_EVENTS = ("recording.finished", "recording.recovered")
_SEGMENT = re.compile(r"^recordings/[^/]+?(?:\.(\d+))?/[^/]+$")


@dataclass(frozen=True)
class SessionFilter:
    """What the review list filters on; every field optional (None: no filter).

    `since`/`until` bound the queueing time, [since, until).  `outcome` is a
    call status (queued ... abandoned) or a case status (accepted, refused,
    needs_supplement, completed).  `rating` is a level 1..5 or "none" (not
    rated).  `clerk_id` matches any clerk who answered the call.
    """

    since: datetime | None = None
    until: datetime | None = None
    booth_id: int | None = None
    region_code: str | None = None
    clerk_id: int | None = None
    item_code: str | None = None
    outcome: str | None = None
    rating: int | str | None = None
    has_alert: bool | None = None

    def __post_init__(self) -> None:
        if self.since is not None and self.until is not None and as_utc(self.until) <= as_utc(self.since):
            raise ValidationError("invalid_filter", "the end of the date range must be after its start")
        if self.outcome is not None and self.outcome not in OUTCOMES:
            raise ValidationError("invalid_filter", f"unknown outcome {self.outcome!r}")
        if self.rating is not None and self.rating != NO_RATING and (
                isinstance(self.rating, bool) or not isinstance(self.rating, int) or not 1 <= self.rating <= 5):
            raise ValidationError("invalid_filter", "rating must be 1..5 or 'none'")


@dataclass(frozen=True)
class SessionPage:
    """One page of search results and how many match in all."""

    rows: list[dict[str, Any]]
    total: int
    limit: int
    offset: int


@dataclass
class _Names:
    """Rows the summaries name, loaded once per page."""

    booths: dict[int, Booth] = field(default_factory=dict)
    regions: dict[str, Region] = field(default_factory=dict)
    users: dict[int, User] = field(default_factory=dict)
    items: dict[str, ServiceItem] = field(default_factory=dict)


# --------------------------------------------------------------------------- helpers


def iso(value: datetime | None) -> str | None:
    """ISO-8601 UTC (stored timestamps are UTC; SQLite hands them back naive)."""
    return None if value is None else as_utc(value).astimezone(timezone.utc).isoformat()


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((as_utc(end) - as_utc(start)).total_seconds(), 3)


def _answered_by(user_id: int) -> Any:
    """Ids of the calls `user_id` answered at some point (a transfer moves `clerk_id` on)."""
    return sa_select(Event.session_id).where(Event.kind == "call.answered", Event.actor == f"user:{user_id}")


def _served_by(user_id: int) -> ColumnElement[bool]:
    return or_(CallSession.clerk_id == user_id, col(CallSession.id).in_(_answered_by(user_id)))


def _conditions(f: SessionFilter, regions: Iterable[str] | None, served_by: int | None) -> list[Any]:
    conds: list[Any] = []
    if regions is not None:
        conds.append(col(CallSession.region_code).in_(sorted(regions)))
    if served_by is not None:
        conds.append(_served_by(served_by))
    if f.since is not None:
        conds.append(CallSession.queued_at >= as_utc(f.since))
    if f.until is not None:
        conds.append(CallSession.queued_at < as_utc(f.until))
    if f.booth_id is not None:
        conds.append(CallSession.booth_id == f.booth_id)
    if f.region_code is not None:
        conds.append(CallSession.region_code == f.region_code)
    if f.clerk_id is not None:
        conds.append(_served_by(f.clerk_id))
    if f.item_code is not None:
        conds.append(CallSession.item_code == f.item_code)
    if f.outcome in CALL_OUTCOMES:
        conds.append(CallSession.status == CallStatus(f.outcome))
    elif f.outcome in CASE_OUTCOMES:
        conds.append(exists(sa_select(Case.id).where(Case.session_id == CallSession.id,
                                                     Case.status == CaseStatus(str(f.outcome)))))
    if f.rating == NO_RATING:
        conds.append(~exists(sa_select(Rating.id).where(Rating.session_id == CallSession.id)))
    elif f.rating is not None:
        conds.append(exists(sa_select(Rating.id).where(Rating.session_id == CallSession.id,
                                                       Rating.level == RatingLevel(int(f.rating)))))
    if f.has_alert is not None:
        alerted = or_(
            exists(sa_select(Alert.id).where(Alert.session_id == CallSession.id)),
            exists(sa_select(Alert.id).join(Case, col(Alert.case_id) == col(Case.id))
                   .where(Case.session_id == CallSession.id)))
        conds.append(alerted if f.has_alert else ~alerted)
    return conds


def _load_names(session: Session, calls: Sequence[CallSession], user_ids: Iterable[int] = ()) -> _Names:
    names = _Names()
    booth_ids = {c.booth_id for c in calls}
    region_codes = {c.region_code for c in calls}
    item_codes = {c.item_code for c in calls}
    users = {c.clerk_id for c in calls if c.clerk_id is not None} | set(user_ids)
    if booth_ids:
        names.booths = {b.id: b for b in session.exec(select(Booth).where(col(Booth.id).in_(booth_ids)))
                        if b.id is not None}
    if region_codes:
        names.regions = {r.code: r for r in session.exec(select(Region).where(col(Region.code).in_(region_codes)))}
    if item_codes:
        names.items = {i.code: i for i in session.exec(select(ServiceItem)
                                                       .where(col(ServiceItem.code).in_(item_codes)))}
    if users:
        names.users = {u.id: u for u in session.exec(select(User).where(col(User.id).in_(users)))
                       if u.id is not None}
    return names


def _user_json(user: User | None, user_id: int | None) -> dict[str, Any] | None:
    if user_id is None:
        return None
    return {"id": user_id, "username": user.username if user else "",
            "display_name": (user.display_name or user.username) if user else f"#{user_id}"}


def _call_json(call: CallSession, names: _Names) -> dict[str, Any]:
    booth = names.booths.get(call.booth_id)
    region = names.regions.get(call.region_code)
    item = names.items.get(call.item_code)
    clerk = names.users.get(call.clerk_id) if call.clerk_id is not None else None
    return {
        "call_id": call.id,
        "status": call.status.value,
        "end_reason": call.end_reason or "",
        "priority": call.priority,
        "queued_at": iso(call.queued_at),
        "answered_at": iso(call.answered_at),
        "ended_at": iso(call.ended_at),
        "wait_s": _seconds(call.queued_at, call.answered_at),
        "duration_s": _seconds(call.answered_at, call.ended_at),
        "booth": {"id": call.booth_id, "name": booth.name if booth else f"#{call.booth_id}",
                  "address": booth.address if booth else ""},
        "region": {"code": call.region_code, "name_zh": region.name_zh if region else call.region_code,
                   "name_en": region.name_en if region else call.region_code},
        "item": {"code": call.item_code, "name_zh": item.name_zh if item else call.item_code,
                 "name_en": item.name_en if item else call.item_code},
        "clerk": _user_json(clerk, call.clerk_id),
    }


def case_json(case: Case) -> dict[str, Any]:
    return {"id": case.id, "number": case.number, "status": case.status.value, "reason": case.reason,
            "missing_materials": list(case.missing_materials),
            "deadline": case.deadline.isoformat() if case.deadline else None,
            "created_at": iso(case.created_at), "updated_at": iso(case.updated_at)}


def rating_json(rating: Rating) -> dict[str, Any]:
    return {"level": int(rating.level), "comment": rating.comment, "created_at": iso(rating.created_at)}


def alert_json(alert: Alert) -> dict[str, Any]:
    return {"id": alert.id, "kind": alert.kind.value, "status": alert.status.value, "message": alert.message,
            "created_at": iso(alert.created_at), "resolution_note": alert.resolution_note}


# --------------------------------------------------------------------------- search


def search_sessions(
    session: Session,
    filters: SessionFilter | None = None,
    *,
    regions: Iterable[str] | None = None,
    served_by: int | None = None,
    limit: int = 20,
    offset: int = 0,
) -> SessionPage:
    """Calls matching `filters` within the scope, newest first (by queueing time), one page.

    `regions=None` is every region; an empty collection is none.  Each row is
    the call's summary plus its case (if decided), rating level and number of
    alerts.
    """
    if not 1 <= limit <= MAX_PAGE_SIZE or offset < 0:
        raise ValidationError("invalid_filter", f"limit must be 1..{MAX_PAGE_SIZE} and offset >= 0")
    f = filters or SessionFilter()
    conds = _conditions(f, None if regions is None else frozenset(regions), served_by)
    total = int(session.exec(select(func.count()).select_from(CallSession).where(*conds)).one())
    stmt = (select(CallSession).where(*conds)
            .order_by(col(CallSession.queued_at).desc(), col(CallSession.id)).offset(offset).limit(limit))
    calls = list(session.exec(stmt))
    names = _load_names(session, calls)
    ids = [c.id for c in calls]
    cases: dict[str, Case] = {}
    ratings: dict[str, int] = {}
    alerts: dict[str, int] = dict.fromkeys(ids, 0)
    if ids:
        for case in session.exec(select(Case).where(col(Case.session_id).in_(ids)).order_by(col(Case.id))):
            if case.session_id is not None:
                cases[case.session_id] = case  # the latest decision of the call wins
        ratings = {r.session_id: int(r.level) for r in session.exec(select(Rating)
                                                                     .where(col(Rating.session_id).in_(ids)))}
        case_session = {c.id: sid for sid, c in cases.items()}
        for alert in session.exec(select(Alert).where(or_(col(Alert.session_id).in_(ids),
                                                          col(Alert.case_id).in_(list(case_session) or [-1])))):
            sid = alert.session_id if alert.session_id in alerts else case_session.get(alert.case_id or -1)
            if sid is not None:
                alerts[sid] += 1
    rows = []
    for call in calls:
        row = _call_json(call, names)
        case = cases.get(call.id)
        row["case"] = None if case is None else {"number": case.number, "status": case.status.value}
        row["rating"] = ratings.get(call.id)
        row["alerts"] = alerts.get(call.id, 0)
        rows.append(row)
    return SessionPage(rows=rows, total=total, limit=limit, offset=offset)


# --------------------------------------------------------------------------- one session


def visible_call(session: Session, call_id: str, *, regions: Iterable[str] | None = None,
                 served_by: int | None = None) -> CallSession | None:
    """The call if it exists and lies within the scope; None otherwise (the two are not told apart)."""
    call = session.get(CallSession, call_id)
    if call is None:
        return None
    if regions is not None and call.region_code not in frozenset(regions):
        return None
    if served_by is not None and call.clerk_id != served_by:
        answered = session.exec(select(Event.id).where(Event.session_id == call_id, Event.kind == "call.answered",
                                                       Event.actor == f"user:{served_by}")).first()
        if answered is None:
            return None
    return call


def recording_content_type(recording: Recording) -> str:
    """The MIME type a browser needs: WebM for VP8/Opus (audio/webm for sound only), Matroska for H.264."""
    codec = recording.codec.lower()
    if recording.path.endswith(".mkv") or codec in ("h264", "avc"):
        return "video/x-matroska"
    if codec == "opus" or recording.track.endswith("audio"):
        return "audio/webm"
    return "video/webm"


def recording_segment(path: str) -> int:
    """Which media segment a file belongs to: ``recordings/<call>/`` is 1, ``<call>.2/`` is 2 ..."""
    match = _SEGMENT.match(path)
    return int(match.group(1)) if match and match.group(1) else 1


def _recording_starts(events: Sequence[Event]) -> dict[int, float]:
    """recording_id -> seconds after the answer of its first frame (from the manifests' events)."""
    starts: dict[int, float] = {}
    for event in events:
        if event.kind in RECORDING_EVENTS:
            for entry in event.data.get("files", []):
                rid, start = entry.get("recording_id"), entry.get("start_s")
                if isinstance(rid, int) and isinstance(start, (int, float)):
                    starts[rid] = float(start)
    return starts


def recording_json(recording: Recording, start_s: float = 0.0) -> dict[str, Any]:
    return {"recording_id": recording.id, "track": recording.track, "codec": recording.codec,
            "content_type": recording_content_type(recording), "duration_s": round(recording.duration_s, 3),
            "start_s": round(start_s, 3), "size": recording.size, "sha256": recording.sha256,
            "segment": recording_segment(recording.path), "recovered": recording.recovered,
            "created_at": iso(recording.created_at)}


def material_json(material: Material) -> dict[str, Any]:
    return {"material_id": material.id, "kind": material.kind, "checklist_code": material.checklist_code,
            "content_type": material.content_type, "sha256": material.sha256, "size": material.size,
            "width": material.width, "height": material.height, "created_at": iso(material.created_at)}


def print_job_json(job: PrintJob) -> dict[str, Any]:
    return {"id": job.id, "document": job.document, "status": job.status.value, "error": job.error,
            "case_id": job.case_id, "sha256": job.sha256, "created_at": iso(job.created_at),
            "updated_at": iso(job.updated_at)}


def _actor_name(actor: str, names: _Names) -> str:
    kind, _, raw = actor.partition(":")
    if raw.isdigit():
        if kind == "user":
            user = names.users.get(int(raw))
            return (user.display_name or user.username) if user else actor
        if kind == "booth":
            booth = names.booths.get(int(raw))
            return booth.name if booth else actor
    return actor


def event_json(event: Event, answered_at: datetime | None, names: _Names) -> dict[str, Any]:
    """One event for the time line; `offset_s` is its place on the recordings' clock (None before the answer)."""
    offset = _seconds(answered_at, event.ts)
    return {"seq": event.seq, "session_seq": event.session_seq, "ts": iso(event.ts), "kind": event.kind,
            "actor": event.actor, "actor_name": _actor_name(event.actor, names),
            "offset_s": offset if offset is not None and offset >= 0 else None, "data": event.data}


def _actor_user_ids(events: Sequence[Event]) -> set[int]:
    ids = set()
    for event in events:
        kind, _, raw = event.actor.partition(":")
        if kind == "user" and raw.isdigit():
            ids.add(int(raw))
    return ids


def session_review(session: Session, call_id: str, *, regions: Iterable[str] | None = None,
                   served_by: int | None = None) -> dict[str, Any] | None:
    """Everything about one call for its review page, or None when missing or outside the scope.

    `events` is the call's time line in chain order without the access log
    (`recording.played`, `material.viewed`), which comes apart as `accesses`.
    Recordings carry `start_s` (first frame, seconds after the answer) and
    `segment` (1, or 2, 3 ... after a reconnect or transfer re-opened the media).
    """
    call = visible_call(session, call_id, regions=regions, served_by=served_by)
    if call is None:
        return None
    events = list_events(session, session_id=call.id, limit=MAX_TIMELINE_EVENTS)
    names = _load_names(session, [call], _actor_user_ids(events))
    cases = list(session.exec(select(Case).where(Case.session_id == call.id).order_by(col(Case.id))))
    case_ids = [c.id for c in cases if c.id is not None]
    alert_filter = Alert.session_id == call.id
    if case_ids:
        alert_filter = or_(alert_filter, col(Alert.case_id).in_(case_ids))  # type: ignore[assignment]
    alerts = list(session.exec(select(Alert).where(alert_filter).order_by(col(Alert.id))))
    rating = session.exec(select(Rating).where(Rating.session_id == call.id)).first()
    jobs = list(session.exec(select(PrintJob).where(PrintJob.session_id == call.id).order_by(col(PrintJob.id))))
    starts = _recording_starts(events)
    answered = call.answered_at
    timeline = [event_json(e, answered, names) for e in events]
    return {
        "call": _call_json(call, names),
        "events": [e for e in timeline if e["kind"] not in ACCESS_KINDS],
        "accesses": [e for e in timeline if e["kind"] in ACCESS_KINDS],
        "recordings": [recording_json(r, starts.get(r.id or 0, 0.0)) for r in list_recordings(session, call.id)],
        "materials": [material_json(m) for m in list_materials(session, call.id)],
        "cases": [case_json(c) for c in cases],
        "print_jobs": [print_job_json(j) for j in jobs],
        "rating": rating_json(rating) if rating else None,
        "alerts": [alert_json(a) for a in alerts],
    }


def reviewable_recording(session: Session, recording_id: int, *, regions: Iterable[str] | None = None,
                         served_by: int | None = None) -> tuple[Recording, CallSession] | None:
    """A stored (not purged) recording and its call, if the call is within the scope."""
    recording = session.get(Recording, recording_id)
    if recording is None or recording.purged_at is not None:
        return None
    call = visible_call(session, recording.session_id, regions=regions, served_by=served_by)
    return None if call is None else (recording, call)


def reviewable_material(session: Session, material_id: int, *, regions: Iterable[str] | None = None,
                        served_by: int | None = None) -> tuple[Material, CallSession] | None:
    """A stored (not purged) material and its call, if the call is within the scope."""
    material = session.get(Material, material_id)
    if material is None or material.purged_at is not None:
        return None
    call = visible_call(session, material.session_id, regions=regions, served_by=served_by)
    return None if call is None else (material, call)


@dataclass(frozen=True)
class FilterOptions:
    """What the review list's filter menus offer, within the caller's regions."""

    regions: list[Region]
    booths: list[Booth]
    clerks: list[User]
    items: list[ServiceItem]


def filter_options(session: Session, *, regions: Iterable[str] | None = None) -> FilterOptions:
    """Regions and booths within `regions` (None: all), every clerk and every service item, sorted."""
    region_stmt = select(Region).order_by(col(Region.code))
    booth_stmt = select(Booth).order_by(col(Booth.name))
    if regions is not None:
        codes = sorted(regions)
        region_stmt = region_stmt.where(col(Region.code).in_(codes))
        booth_stmt = booth_stmt.where(col(Booth.region_code).in_(codes))
    clerks = select(User).where(User.role == Role.CLERK).order_by(col(User.username))
    items = select(ServiceItem).order_by(col(ServiceItem.category), col(ServiceItem.code))
    return FilterOptions(regions=list(session.exec(region_stmt)), booths=list(session.exec(booth_stmt)),
                         clerks=list(session.exec(clerks)), items=list(session.exec(items)))
