"""Electronic-supervision alerts (电子监察): yellow near a deadline, red overdue, blue on complaints.

An alert is raised by the system, acknowledged by a supervisor, and resolved
with a note saying what was done; each step is logged.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from sqlmodel import Session, col, select

from records.errors import InvalidTransitionError, NotFoundError, ValidationError
from records.events import append_event, lock_log
from records.models import Alert, AlertKind, AlertStatus

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


def resolve(session: Session, alert_id: int, *, user_id: int, note: str) -> Alert:
    """Close the alert with a note of what was done (required); event `alert.resolved`."""
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
    append_event(session, kind="alert.resolved", actor=f"user:{user_id}", session_id=alert.session_id,
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
