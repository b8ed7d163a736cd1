"""SQLModel tables of cloudseat's records.

Table models only; the functions that read and write them live in the
modules named after the concept (`accounts`, `cases`, `events`, ...), and take
the SQLModel session as their first argument.  Lists and small documents are
JSON columns so the same schema runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import enum
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import JSON, Column, DateTime, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """Aware UTC now; every timestamp in the records is UTC."""
    return datetime.now(timezone.utc)


def as_utc(dt: datetime) -> datetime:
    """A stored timestamp as aware UTC (SQLite hands back naive datetimes; all we store is UTC)."""
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=timezone.utc)


def _json_list() -> Any:
    return Field(default_factory=list, sa_column=Column(JSON, nullable=False))


def _json_dict() -> Any:
    return Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Role(str, enum.Enum):
    """Roles of people who log in; booth devices authenticate by token instead."""

    CLERK = "clerk"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


class CaseStatus(str, enum.Enum):
    ACCEPTED = "accepted"  # 受理
    REFUSED = "refused"  # 不予受理
    NEEDS_SUPPLEMENT = "needs_supplement"  # 补正
    COMPLETED = "completed"  # 办结


class CallStatus(str, enum.Enum):
    QUEUED = "queued"
    OFFERED = "offered"
    ACTIVE = "active"
    ENDED = "ended"
    ABANDONED = "abandoned"


class RatingLevel(int, enum.Enum):
    """好差评 five levels; the number is what statistics average."""

    VERY_SATISFIED = 5  # 非常满意
    SATISFIED = 4  # 满意
    BASICALLY_SATISFIED = 3  # 基本满意
    DISSATISFIED = 2  # 不满意
    VERY_DISSATISFIED = 1  # 非常不满意


class AlertKind(str, enum.Enum):
    YELLOW = "yellow"  # near the statutory deadline
    RED = "red"  # overdue
    BLUE = "blue"  # complaint or bad rating


class AlertStatus(str, enum.Enum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class PrintStatus(str, enum.Enum):
    PENDING = "pending"
    SENT = "sent"
    PRINTED = "printed"
    FAILED = "failed"


class Region(SQLModel, table=True):
    """A town or street (镇街) whose booths a clerk may be allowed to serve."""

    code: str = Field(primary_key=True, max_length=32)
    name_zh: str = Field(max_length=64)
    name_en: str = Field(max_length=64)
    # Service hours in the shape signaling.service_hours parses (weekday hours, lunch, holidays).
    service_hours: dict[str, Any] = _json_dict()
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class Booth(SQLModel, table=True):
    """A booth (政务晓屋) device; it authenticates with a token stored only as a hash."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=64)
    region_code: str = Field(foreign_key="region.code", index=True)
    address: str = Field(default="", max_length=200)
    token_hash: str = Field(index=True, unique=True, max_length=64)
    revoked_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    last_seen_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    device_status: dict[str, Any] = _json_dict()
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class User(SQLModel, table=True):
    """A clerk, supervisor or admin who logs in with a password (argon2id hash)."""

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(index=True, unique=True, max_length=64)
    display_name: str = Field(default="", max_length=64)
    role: Role
    password_hash: str
    skills: list[str] = _json_list()
    # Regions whose booths this user may serve (clerks) or see (scoped supervisors); empty = all for supervisors/admins.
    regions: list[str] = _json_list()
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class WebSession(SQLModel, table=True):
    """A logged-in browser; the cookie carries only the signed `id`."""

    id: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="user.id", index=True)
    csrf_token: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    expires_at: datetime = Field(sa_type=DateTime(timezone=True))
    revoked_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class ServiceItem(SQLModel, table=True):
    """A service item (事项) a resident can ask for, with its materials checklist."""

    code: str = Field(primary_key=True, max_length=32)
    name_zh: str = Field(max_length=100)
    name_en: str = Field(max_length=150)
    category: str = Field(index=True, max_length=32)
    skill: str = Field(index=True, max_length=32)
    # [{"code", "name_zh", "name_en", "mandatory": bool, "note_zh"?, "note_en"?}]
    materials: list[dict[str, Any]] = _json_list()
    time_limit_days: int = Field(ge=0)  # statutory time limit in working days
    cross_region: bool = True  # 跨镇街通办
    active: bool = True


class CallSession(SQLModel, table=True):
    """One call from a booth, from queueing to its end; the unit of review."""

    id: str = Field(primary_key=True, max_length=36)
    booth_id: int = Field(foreign_key="booth.id", index=True)
    region_code: str = Field(foreign_key="region.code", index=True)
    item_code: str = Field(foreign_key="serviceitem.code", index=True)
    clerk_id: int | None = Field(default=None, foreign_key="user.id", index=True)
    status: CallStatus = CallStatus.QUEUED
    priority: int = 0
    queued_at: datetime = Field(default_factory=utcnow, index=True, sa_type=DateTime(timezone=True))
    answered_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    ended_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    end_reason: str | None = Field(default=None, max_length=64)
    media_node: str | None = Field(default=None, max_length=64)


class Case(SQLModel, table=True):
    """A case opened by the clerk's decision; its number is unique per year and region."""

    __table_args__ = (UniqueConstraint("region_code", "year", "serial"),)

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(index=True, unique=True, max_length=40)
    region_code: str = Field(foreign_key="region.code", index=True)
    year: int
    serial: int
    session_id: str | None = Field(default=None, foreign_key="callsession.id", index=True)
    item_code: str = Field(foreign_key="serviceitem.code", index=True)
    booth_id: int | None = Field(default=None, foreign_key="booth.id")
    clerk_id: int | None = Field(default=None, foreign_key="user.id")
    status: CaseStatus
    reason: str = Field(default="", max_length=500)
    missing_materials: list[str] = _json_list()
    deadline: date | None = None
    # Printed on the receipt; with the case number it opens the public progress page.
    progress_code: str = Field(max_length=16)
    legal_hold: bool = False
    # Indexed (revision 0002): statistics select a period's cases by it.
    created_at: datetime = Field(default_factory=utcnow, index=True, sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class Material(SQLModel, table=True):
    """A stored document capture, signature or still, with its hash."""

    id: int | None = Field(default=None, primary_key=True)
    session_id: str = Field(foreign_key="callsession.id", index=True)
    kind: str = Field(max_length=32)  # capture, signature, id_photo, still
    checklist_code: str | None = Field(default=None, max_length=32)
    path: str = Field(max_length=255)  # relative to the data dir's file store
    content_type: str = Field(max_length=64)
    sha256: str = Field(max_length=64)
    size: int
    width: int | None = None
    height: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    purged_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class Recording(SQLModel, table=True):
    """One recorded track of a session (encoded media, stream copy)."""

    id: int | None = Field(default=None, primary_key=True)
    session_id: str = Field(foreign_key="callsession.id", index=True)
    track: str = Field(max_length=64)  # e.g. booth-face, booth-document, clerk-camera, booth-audio
    path: str = Field(max_length=255)
    codec: str = Field(max_length=16)
    duration_s: float
    size: int
    sha256: str = Field(max_length=64)
    recovered: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    purged_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class Rating(SQLModel, table=True):
    """The resident's 好差评 for a session; one per session."""

    id: int | None = Field(default=None, primary_key=True)
    session_id: str = Field(foreign_key="callsession.id", unique=True)
    level: RatingLevel
    comment: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class Alert(SQLModel, table=True):
    """An electronic-supervision alert (电子监察) and its handling."""

    id: int | None = Field(default=None, primary_key=True)
    kind: AlertKind
    status: AlertStatus = AlertStatus.OPEN
    case_id: int | None = Field(default=None, foreign_key="case.id", index=True)
    session_id: str | None = Field(default=None, foreign_key="callsession.id", index=True)
    booth_id: int | None = Field(default=None, foreign_key="booth.id")
    message: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    acknowledged_by: int | None = Field(default=None, foreign_key="user.id")
    acknowledged_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    resolved_by: int | None = Field(default=None, foreign_key="user.id")
    resolved_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    resolution_note: str = Field(default="", max_length=500)


class Appointment(SQLModel, table=True):
    """A booked slot (预约) for an item, optionally with a chosen clerk."""

    id: int | None = Field(default=None, primary_key=True)
    booth_id: int = Field(foreign_key="booth.id", index=True)
    item_code: str = Field(foreign_key="serviceitem.code")
    clerk_id: int | None = Field(default=None, foreign_key="user.id")
    slot_start: datetime = Field(index=True, sa_type=DateTime(timezone=True))
    slot_end: datetime = Field(sa_type=DateTime(timezone=True))
    status: str = Field(default="booked", max_length=16)  # booked, used, cancelled, missed
    contact: str = Field(default="", max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class PrintJob(SQLModel, table=True):
    """A document sent to a booth's printer, and what the booth said of it."""

    id: int | None = Field(default=None, primary_key=True)
    session_id: str | None = Field(default=None, foreign_key="callsession.id", index=True)
    booth_id: int = Field(foreign_key="booth.id", index=True)
    case_id: int | None = Field(default=None, foreign_key="case.id")
    document: str = Field(max_length=32)  # receipt, refusal, notice, form
    path: str = Field(max_length=255)
    sha256: str = Field(max_length=64)
    status: PrintStatus = PrintStatus.PENDING
    error: str = Field(default="", max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class Event(SQLModel, table=True):
    """Append-only, hash-chained log of everything that happened.

    Every row is on the global chain (`seq`, `prev_hash`, `hash`); a row with a
    session is also on that session's chain (`session_seq`, `session_prev_hash`,
    `session_hash`).  `hash = sha256(prev_hash || canonical_json(row))`.
    """

    __table_args__ = (UniqueConstraint("session_id", "session_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    seq: int = Field(unique=True, index=True)
    ts: datetime = Field(default_factory=utcnow, index=True, sa_type=DateTime(timezone=True))
    kind: str = Field(index=True, max_length=48)
    actor: str = Field(default="system", max_length=64)  # "user:3", "booth:2", "system"
    session_id: str | None = Field(default=None, index=True, max_length=36)
    booth_id: int | None = Field(default=None, index=True)
    data: dict[str, Any] = _json_dict()
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)
    session_seq: int | None = None
    session_prev_hash: str | None = Field(default=None, max_length=64)
    session_hash: str | None = Field(default=None, max_length=64)


class ChainHead(SQLModel, table=True):
    """The last sequence number and hash of a chain; locked while appending.

    One row per chain ("global", or "session:<id>"): appends from several
    server processes serialise on this row (SELECT ... FOR UPDATE on
    PostgreSQL, the database write lock on SQLite).
    """

    chain: str = Field(primary_key=True, max_length=48)
    seq: int = 0
    hash: str = Field(max_length=64)


class AlertRule(SQLModel, table=True):
    """电子监察 rules: the global defaults (scope "*") and per-item overrides (scope = item code).

    A None field of an override inherits the global value, so an override names only what
    differs.  Admins change rows at run time (see `records.alerts.set_rules`); the deadline
    sweep and the rating path read them on every use, so no restart is needed.
    """

    scope: str = Field(primary_key=True, max_length=32)
    yellow_days: int | None = None  # yellow when the deadline is within N working days
    red_enabled: bool | None = None  # red once the deadline has passed
    blue_max_level: int | None = None  # blue on a rating <= this level (0: never)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    updated_by: int | None = Field(default=None, foreign_key="user.id")
