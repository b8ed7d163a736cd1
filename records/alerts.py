"""Electronic-supervision alerts (电子监察): yellow near a deadline, red overdue, blue on complaints.

An alert is raised by the system, acknowledged by a supervisor, and resolved
with a note saying what was done; each step is logged.  The rules that decide
when alerts are raised (global defaults, per-item overrides) live here too, in
the `AlertRule` table, so an admin changes them without a restart; the sweep
that applies the deadline rules needs the working-day calendar and lives in
`signaling.supervision_sweep`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from records.errors import InvalidTransitionError, NotFoundError, ValidationError
from records.events import append_event, lock_log
from records.models import Alert, AlertKind, AlertRule, AlertStatus, Booth, Case, ServiceItem, User, as_utc, utcnow

logger = logging.getLogger(__name__)

MAX_TEXT = 500


def raise_alert(
    session: Session,
    *,
    kind: AlertKind,
    message: str,
    case_id: int | None = None,
    session_id: str | None = None,
    booth_id: int | None = None,
    actor: str = "system",
) -> Alert:
    """Raise an alert; event `alert.raised`.

    Idempotent per case and kind: while an unresolved alert of the same kind
    exists for the case it is returned unchanged, so a periodic deadline
    sweep can call this every run without flooding supervisors.
    """
    kind = AlertKind(kind)
    if len(message) > MAX_TEXT:
        raise ValidationError("message_too_long", f"alert message longer than {MAX_TEXT}")
    lock_log(session)
    if case_id is not None:
        existing = session.exec(
            select(Alert).where(Alert.case_id == case_id, Alert.kind == kind,
                                Alert.status != AlertStatus.RESOLVED)
        ).first()
        if existing is not None:
            return existing
    alert = Alert(kind=kind, message=message, case_id=case_id, session_id=session_id, booth_id=booth_id)
    session.add(alert)
    session.flush()
    append_event(session, kind="alert.raised", actor=actor, session_id=session_id, booth_id=booth_id,
                 data={"alert_id": alert.id, "kind": kind.value, "case_id": case_id, "message": message})
    logger.info("alert %s (%s) raised", alert.id, kind.value)
    return alert


def _load(session: Session, alert_id: int, allowed_from: set[AlertStatus], to: AlertStatus) -> Alert:
    lock_log(session)
    alert = session.get(Alert, alert_id, populate_existing=True)
    if alert is None:
        raise NotFoundError("alert_not_found", f"no alert {alert_id}")
    if alert.status not in allowed_from:
        raise InvalidTransitionError(message=f"alert {alert_id}: {alert.status.value} -> {to.value} not allowed")
    return alert


def acknowledge(session: Session, alert_id: int, *, user_id: int) -> Alert:
    """A supervisor has seen the alert and takes it on; event `alert.acknowledged`."""
    alert = _load(session, alert_id, {AlertStatus.OPEN}, AlertStatus.ACKNOWLEDGED)
    alert.status = AlertStatus.ACKNOWLEDGED
    alert.acknowledged_by = user_id
    alert.acknowledged_at = datetime.now(timezone.utc)
    session.add(alert)
    append_event(session, kind="alert.acknowledged", actor=f"user:{user_id}", session_id=alert.session_id,
                 booth_id=alert.booth_id, data={"alert_id": alert.id})
    return alert


def resolve(session: Session, alert_id: int, *, user_id: int | None, note: str) -> Alert:
    """Close the alert with a note of what was done (required); event `alert.resolved`.

    `user_id` None is the system closing it (a yellow superseded by red).
    """
    note = note.strip()
    if not note:
        raise ValidationError("note_required", "resolving an alert needs a note")
    if len(note) > MAX_TEXT:
        raise ValidationError("note_too_long", f"note longer than {MAX_TEXT}")
    alert = _load(session, alert_id, {AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED}, AlertStatus.RESOLVED)
    alert.status = AlertStatus.RESOLVED
    alert.resolved_by = user_id
    alert.resolved_at = datetime.now(timezone.utc)
    alert.resolution_note = note
    session.add(alert)
    actor = f"user:{user_id}" if user_id is not None else "system"
    append_event(session, kind="alert.resolved", actor=actor, session_id=alert.session_id,
                 booth_id=alert.booth_id, data={"alert_id": alert.id, "note": note})
    return alert


def list_alerts(
    session: Session, *, status: AlertStatus | None = None, kind: AlertKind | None = None, limit: int = 200
) -> list[Alert]:
    """Alerts, newest first, optionally of one status or kind."""
    stmt = select(Alert)
    if status is not None:
        stmt = stmt.where(Alert.status == status)
    if kind is not None:
        stmt = stmt.where(Alert.kind == kind)
    return list(session.exec(stmt.order_by(col(Alert.id).desc()).limit(limit)))


# --------------------------------------------------------------------------- views


def _iso(value: datetime | None) -> str | None:
    return as_utc(value).isoformat() if value is not None else None


def alert_views(
    session: Session,
    *,
    status: AlertStatus | None = None,
    kind: AlertKind | None = None,
    regions: Iterable[str] | None = None,
    alert_id: int | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """Alerts as the supervision API and the `wall.alert` push show them, newest first.

    `regions` None means every region; otherwise only alerts whose case (or,
    without a case, whose booth) is in one of them.  An alert with neither is
    visible to unscoped supervisors only.
    """
    region = func.coalesce(Case.region_code, Booth.region_code)
    stmt = (select(Alert, Case, Booth, region)
            .outerjoin(Case, col(Alert.case_id) == col(Case.id))
            .outerjoin(Booth, col(Alert.booth_id) == col(Booth.id)))
    if status is not None:
        stmt = stmt.where(Alert.status == AlertStatus(status))
    if kind is not None:
        stmt = stmt.where(Alert.kind == AlertKind(kind))
    if alert_id is not None:
        stmt = stmt.where(Alert.id == alert_id)
    if regions is not None:
        stmt = stmt.where(region.in_(sorted(set(regions))))
    rows = list(session.exec(stmt.order_by(col(Alert.id).desc()).limit(limit)))
    user_ids = {uid for alert, *_ in rows for uid in (alert.acknowledged_by, alert.resolved_by) if uid is not None}
    names = {u.id: (u.display_name or u.username)
             for u in session.exec(select(User).where(col(User.id).in_(sorted(user_ids))))} if user_ids else {}
    views = []
    for alert, case, booth, region_code in rows:
        views.append({
            "id": alert.id, "kind": alert.kind.value, "status": alert.status.value, "message": alert.message,
            "case_id": alert.case_id, "case_number": case.number if case else None,
            "deadline": case.deadline.isoformat() if case and case.deadline else None,
            "session_id": alert.session_id, "booth_id": alert.booth_id,
            "booth_name": booth.name if booth else None, "region_code": region_code,
            "created_at": _iso(alert.created_at),
            "acknowledged_at": _iso(alert.acknowledged_at), "acknowledged_by": names.get(alert.acknowledged_by),
            "resolved_at": _iso(alert.resolved_at), "resolved_by": names.get(alert.resolved_by),
            "resolution_note": alert.resolution_note,
        })
    return views


def alert_view(session: Session, alert_id: int, *, regions: Iterable[str] | None = None) -> dict[str, Any]:
    """One alert's view; `alert_not_found` when missing or outside `regions` (never "forbidden")."""
    found = alert_views(session, alert_id=alert_id, regions=regions, limit=1)
    if not found:
        raise NotFoundError("alert_not_found", f"no alert {alert_id}")
    return found[0]


# --------------------------------------------------------------------------- rules

GLOBAL_SCOPE = "*"
MAX_YELLOW_DAYS = 30
MAX_BLUE_LEVEL = 4  # 5 is 非常满意: never a reason to alert


@dataclass(frozen=True)
class AlertRules:
    """The rules in force for one service item: an override applied on the global defaults."""

    yellow_days: int  # yellow when the deadline is within N working days
    red_enabled: bool  # red once the deadline has passed
    blue_max_level: int  # blue on a rating <= this (0: ratings never raise blue)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# 不满意 (2) and 非常不满意 (1) raise blue; yellow two working days ahead.
DEFAULT_RULES = AlertRules(yellow_days=2, red_enabled=True, blue_max_level=2)
RULE_FIELDS = ("yellow_days", "red_enabled", "blue_max_level")


def _check_rule_value(name: str, value: object, *, nullable: bool) -> Any:
    if value is None:
        if nullable:
            return None
        raise ValidationError("invalid_rule", f"{name} is required")
    if name == "red_enabled":
        if not isinstance(value, bool):
            raise ValidationError("invalid_rule", "red_enabled must be true or false")
        return value
    top = MAX_YELLOW_DAYS if name == "yellow_days" else MAX_BLUE_LEVEL
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
        raise ValidationError("invalid_rule", f"{name} must be a whole number from 0 to {top}")
    return value


def validate_rule_values(values: Mapping[str, Any], *, partial: bool) -> dict[str, Any]:
    """Checked rule fields; `partial` (an override) allows null for "inherit the global value"."""
    if not isinstance(values, Mapping):
        raise ValidationError("invalid_rule", "rules must be an object")
    unknown = set(values) - set(RULE_FIELDS)
    if unknown:
        raise ValidationError("invalid_rule", f"unknown rule field(s): {', '.join(sorted(map(str, unknown)))}")
    return {name: _check_rule_value(name, values.get(name), nullable=partial) for name in RULE_FIELDS}


def _row_values(row: AlertRule | None) -> dict[str, Any] | None:
    return None if row is None else {name: getattr(row, name) for name in RULE_FIELDS}


def global_rules(session: Session) -> AlertRules:
    """The global defaults as stored, or DEFAULT_RULES before an admin saved any."""
    row = session.get(AlertRule, GLOBAL_SCOPE)
    if row is None:
        return DEFAULT_RULES
    return AlertRules(**{name: getattr(row, name) if getattr(row, name) is not None else getattr(DEFAULT_RULES, name)
                         for name in RULE_FIELDS})


def effective_rules(session: Session, item_code: str | None, *, base: AlertRules | None = None) -> AlertRules:
    """The rules in force for `item_code`: its override's set fields over the global rules."""
    rules = base or global_rules(session)
    row = session.get(AlertRule, item_code) if item_code and item_code != GLOBAL_SCOPE else None
    if row is None:
        return rules
    merged = rules.as_dict()
    merged.update({name: getattr(row, name) for name in RULE_FIELDS if getattr(row, name) is not None})
    return AlertRules(**merged)


def blue_rating_level(session: Session, item_code: str | None) -> int:
    """A rating at or below this level raises a blue alert (0: none does)."""
    return effective_rules(session, item_code).blue_max_level


def rules_document(session: Session) -> dict[str, Any]:
    """Everything the rules editor shows: defaults, global rules and every item with its override."""
    overrides = {row.scope: row for row in session.exec(select(AlertRule))}
    items = session.exec(select(ServiceItem).order_by(col(ServiceItem.code))).all()
    return {
        "defaults": DEFAULT_RULES.as_dict(),
        "global": global_rules(session).as_dict(),
        "limits": {"yellow_days": MAX_YELLOW_DAYS, "blue_max_level": MAX_BLUE_LEVEL},
        "items": [{"item_code": item.code, "name_zh": item.name_zh, "name_en": item.name_en,
                   "time_limit_days": item.time_limit_days,
                   "override": _row_values(overrides.get(item.code)),
                   "effective": effective_rules(session, item.code).as_dict()} for item in items],
    }


def set_rules(session: Session, scope: str, values: Mapping[str, Any] | None, *, user_id: int | None) -> None:
    """Save the global rules (scope "*", every field required) or an item's override.

    An override whose fields are all null (or `values` None) is removed, so the
    item follows the global rules again.  Event `alert_rules.changed` with the
    rules before and after; an unchanged save logs nothing.
    """
    is_global = scope == GLOBAL_SCOPE
    checked = validate_rule_values(values or {}, partial=not is_global) if values is not None or is_global else None
    lock_log(session)
    if not is_global and session.get(ServiceItem, scope) is None:
        raise NotFoundError("item_not_found", f"no service item {scope!r}")
    row = session.get(AlertRule, scope, populate_existing=True)
    before = _row_values(row)
    remove = not is_global and (checked is None or all(v is None for v in checked.values()))
    after = None if remove else checked
    if before == after:
        return
    if remove:
        assert row is not None
        session.delete(row)
    else:
        assert checked is not None
        row = row or AlertRule(scope=scope)
        for name, value in checked.items():
            setattr(row, name, value)
        row.updated_at = utcnow()
        row.updated_by = user_id
        session.add(row)
    session.flush()
    append_event(session, kind="alert_rules.changed", actor=f"user:{user_id}" if user_id is not None else "system",
                 data={"scope": scope, "before": before, "after": after})
    logger.info("alert rules %s changed: %s -> %s", scope, before, after)
