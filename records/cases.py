"""Cases opened by a clerk's decision (受理 / 不予受理 / 补正) and their public progress check.

Case numbers read `XH-2026-000123`: region code in upper case, the year of
the decision, and a 6-digit serial that restarts every year in every region.
The serial comes from a counter row ("case:<region>:<year>" in the
ChainHead table) locked for the transaction, so concurrent openers on
several server processes never draw the same number and a rolled-back
decision gives its number back.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timezone

from sqlmodel import Session, select

from records.errors import InvalidTransitionError, NotFoundError, ValidationError
from records.events import append_event, lock_head, lock_log
from records.models import CallSession, Case, CaseStatus, Region, ServiceItem

logger = logging.getLogger(__name__)

# No 0/O, 1/I/L: a resident types this from a paper receipt.
PROGRESS_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
PROGRESS_CODE_LENGTH = 8

CASE_TRANSITIONS: dict[CaseStatus, frozenset[CaseStatus]] = {
    CaseStatus.ACCEPTED: frozenset({CaseStatus.COMPLETED}),
    # After a 补正 notice the resident supplements and the case is accepted, or it is refused.
    CaseStatus.NEEDS_SUPPLEMENT: frozenset({CaseStatus.ACCEPTED, CaseStatus.REFUSED}),
    CaseStatus.REFUSED: frozenset(),
    CaseStatus.COMPLETED: frozenset(),
}


@dataclass(frozen=True)
class CaseProgress:
    """What the public progress page may show: nothing about the person."""

    number: str
    status: CaseStatus
    deadline: date | None
    item_name_zh: str
    item_name_en: str


def format_case_number(region_code: str, year: int, serial: int) -> str:
    """`XH-2026-000123`."""
    return f"{region_code.upper()}-{year:04d}-{serial:06d}"


def new_progress_code() -> str:
    """A random 8-character code from an alphabet without look-alike characters."""
    return "".join(secrets.choice(PROGRESS_ALPHABET) for _ in range(PROGRESS_CODE_LENGTH))


def _validate_decision(status: CaseStatus, reason: str, missing: list[str]) -> None:
    if status is CaseStatus.REFUSED and not reason.strip():
        raise ValidationError("reason_required", "a refusal (不予受理) needs a reason")
    if status is CaseStatus.NEEDS_SUPPLEMENT and not missing:
        raise ValidationError("missing_materials_required",
                              "a supplement notice (补正) must list every missing material")
    if len(reason) > 500:
        raise ValidationError("reason_too_long", "reason longer than 500 characters")


def _next_serial(session: Session, region_code: str, year: int) -> int:
    counter = lock_head(session, f"case:{region_code}:{year}", initial_hash="")
    counter.seq += 1
    session.add(counter)
    return counter.seq


def open_case(
    session: Session,
    *,
    call_session_id: str | None,
    item_code: str,
    region_code: str,
    booth_id: int | None,
    clerk_id: int | None,
    status: CaseStatus,
    reason: str = "",
    missing_materials: Iterable[str] = (),
    decided_at: datetime,
    deadline: date | None,
    actor: str | None = None,
) -> Case:
    """Open a case for a decision; event `case.opened`; does not commit.

    The year of the number is `decided_at.year` as given: pass local time
    (Asia/Shanghai) so a decision at 07:00 on 1 January counts in the new
    year.  The statutory deadline in working days is the caller's to compute.
    """
    status = CaseStatus(status)
    missing = [str(m) for m in missing_materials]
    _validate_decision(status, reason, missing)
    if status is CaseStatus.COMPLETED:
        raise ValidationError("invalid_case_status", "a case cannot be opened as completed")
    lock_log(session)  # global lock first: fixed lock order with every other writer
    if session.get(Region, region_code) is None:
        raise NotFoundError("region_not_found", f"no region {region_code!r}")
    if session.get(ServiceItem, item_code) is None:
        raise NotFoundError("item_not_found", f"no service item {item_code!r}")
    if call_session_id is not None and session.get(CallSession, call_session_id) is None:
        raise NotFoundError("call_not_found", f"no call session {call_session_id!r}")
    year = decided_at.year
    serial = _next_serial(session, region_code, year)
    decided_utc = decided_at.astimezone(timezone.utc) if decided_at.tzinfo else decided_at
    case = Case(
        number=format_case_number(region_code, year, serial),
        region_code=region_code,
        year=year,
        serial=serial,
        session_id=call_session_id,
        item_code=item_code,
        booth_id=booth_id,
        clerk_id=clerk_id,
        status=status,
        reason=reason,
        missing_materials=missing,
        deadline=deadline,
        progress_code=new_progress_code(),
        created_at=decided_utc,
        updated_at=decided_utc,
    )
    session.add(case)
    session.flush()
    append_event(
        session,
        kind="case.opened",
        actor=actor or (f"user:{clerk_id}" if clerk_id is not None else "system"),
        session_id=call_session_id,
        booth_id=booth_id,
        # The progress code is a credential of the resident: never in the log.
        data={"case_id": case.id, "number": case.number, "status": status.value,
              "item_code": item_code, "region_code": region_code, "clerk_id": clerk_id,
              "reason": reason, "missing_materials": missing, "deadline": deadline},
        ts=decided_at,
    )
    logger.info("case %s opened (%s)", case.number, status.value)
    return case


def set_case_status(
    session: Session,
    case_id: int,
    status: CaseStatus,
    *,
    actor: str,
    reason: str = "",
    missing_materials: Iterable[str] | None = None,
    deadline: date | None = None,
) -> Case:
    """Move a case on (补正 -> 受理/不予受理, 受理 -> 办结); event `case.status_changed`."""
    status = CaseStatus(status)
    lock_log(session)
    case = session.get(Case, case_id, populate_existing=True)
    if case is None:
        raise NotFoundError("case_not_found", f"no case {case_id}")
    if status not in CASE_TRANSITIONS[case.status]:
        raise InvalidTransitionError(
            message=f"case {case.number}: {case.status.value} -> {status.value} not allowed")
    missing = list(missing_materials) if missing_materials is not None else list(case.missing_materials)
    _validate_decision(status, reason, missing)
    previous = case.status
    case.status = status
    if reason:
        case.reason = reason
    if missing_materials is not None:
        case.missing_materials = missing
    if deadline is not None:
        case.deadline = deadline
    case.updated_at = datetime.now(timezone.utc)
    session.add(case)
    append_event(session, kind="case.status_changed", actor=actor, session_id=case.session_id,
                 booth_id=case.booth_id,
                 data={"case_id": case.id, "number": case.number, "from": previous.value,
                       "to": status.value, "reason": reason, "deadline": case.deadline})
    return case


def get_case_by_number(session: Session, number: str) -> Case | None:
    """The case with this number (case-insensitive on the region part), or None."""
    return session.exec(select(Case).where(Case.number == number.strip().upper())).first()


def check_progress(session: Session, number: str, code: str) -> CaseProgress | None:
    """The public view of a case if `code` is its progress code, else None.

    The comparison is constant-time, and an unknown number still costs a
    comparison, so timing tells neither which numbers exist nor how much of a
    code was right.
    """
    case = get_case_by_number(session, number)
    given = code.strip().upper().encode("ascii", "replace")
    expected = case.progress_code.encode("ascii") if case else new_progress_code().encode("ascii")
    if not hmac.compare_digest(given, expected) or case is None:
        return None
    item = session.get(ServiceItem, case.item_code)
    return CaseProgress(
        number=case.number,
        status=case.status,
        deadline=case.deadline,
        item_name_zh=item.name_zh if item else case.item_code,
        item_name_en=item.name_en if item else case.item_code,
    )


def set_legal_hold(session: Session, case: int | str, on: bool, *, actor: str, reason: str) -> Case:
    """Put a case under legal hold (or release it); event `case.legal_hold`; does not commit.

    `case` is the case id or its number.  While on, retention purges nothing
    of the case's call session.  Every order is logged, also one that
    restates the current state (a second court order is worth its own line),
    with `previous` so the log shows whether it changed anything.
    """
    reason = reason.strip()
    if not reason:
        raise ValidationError("reason_required", "a legal hold change needs a reason")
    if len(reason) > 500:
        raise ValidationError("reason_too_long", "reason longer than 500 characters")
    lock_log(session)  # serialised with purges: one running now has either committed or will see the hold
    if isinstance(case, int):
        row = session.get(Case, case, populate_existing=True)
    else:
        found = get_case_by_number(session, case)
        row = session.get(Case, found.id, populate_existing=True) if found is not None else None
    if row is None:
        raise NotFoundError("case_not_found", f"no case {case!r}")
    previous = row.legal_hold
    row.legal_hold = bool(on)
    row.updated_at = datetime.now(timezone.utc)
    session.add(row)
    append_event(session, kind="case.legal_hold", actor=actor, session_id=row.session_id, booth_id=row.booth_id,
                 data={"case_id": row.id, "number": row.number, "on": row.legal_hold, "previous": previous,
                       "reason": reason})
    logger.info("case %s legal hold %s (was %s)", row.number, "on" if on else "off", "on" if previous else "off")
    return row
