"""The deadline sweep of electronic supervision (电子监察): yellow near a deadline, red past it.

Open cases (受理 ACCEPTED, 补正 NEEDS_SUPPLEMENT) with a statutory deadline are checked
against a clock `now` in their region's time zone and working-day calendar (holidays and
adjusted working weekends, 调休, from the region's service hours):

- yellow when the deadline is at most N working days away (N from `records.alerts`
  rules, per item or global): "working days left" counts the working days after today
  up to and including the deadline, so on the deadline day itself 0 are left;
- red from the day after the deadline (when red is enabled for the item).

A case raises each colour at most once in its life: a yellow a supervisor resolved is not
raised again on the next sweep (it would flood them), and a case first seen overdue gets
only red. When red comes, the case's yellow that is still open or acknowledged is resolved
by the system with a note, so each case has one live deadline alert. Completed and refused
cases are never evaluated; their alerts stay as they are for the record.

The sweep is idempotent and safe on several nodes at once (it re-reads under the event-log
lock before raising). `start_alert_sweeps` runs it in the app at start and every
`SWEEP_INTERVAL_S`, and pushes every change to supervisors as `wall.alert`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from records.alerts import AlertRules, alert_views, effective_rules, global_rules, raise_alert, resolve
from records.events import lock_log
from records.models import Alert, AlertKind, AlertStatus, Case, CaseStatus, Region
from signaling.protocol import push
from signaling.service_hours import WorkCalendar, calendar_of

logger = logging.getLogger(__name__)

SWEEP_INTERVAL_S = 300.0  # deadlines move by days; five minutes is prompt enough
STOP_WAIT_S = 30.0  # how long a shutdown waits for a sweep that is running to finish
OPEN_STATUSES = (CaseStatus.ACCEPTED, CaseStatus.NEEDS_SUPPLEMENT)
DEADLINE_KINDS = (AlertKind.YELLOW, AlertKind.RED)
SUPERSEDED_NOTE = "已超期，转为红色预警 (superseded by the red alert)"

Clock = Callable[[], datetime]


def utc_clock() -> datetime:
    return datetime.now(timezone.utc)


# --------------------------------------------------------------------------- pure rules


def working_days_left(today: date, deadline: date, calendar: WorkCalendar) -> int:
    """Working days after `today` up to and including `deadline` (0 on the deadline day or after)."""
    left, day = 0, today
    while day < deadline:
        day += timedelta(days=1)
        if calendar.is_working_day(day):
            left += 1
    return left


def deadline_colour(today: date, deadline: date, calendar: WorkCalendar, rules: AlertRules) -> AlertKind | None:
    """Which deadline alert a case deserves today: red past the deadline, yellow within N working days."""
    if today > deadline:
        return AlertKind.RED if rules.red_enabled else None
    if working_days_left(today, deadline, calendar) <= rules.yellow_days:
        return AlertKind.YELLOW
    return None


def region_calendar(region: Region | None) -> tuple[ZoneInfo, WorkCalendar]:
    """A region's time zone and working-day calendar; Monday-Friday in Shanghai when it has none."""
    return calendar_of(region.service_hours if region else None, region=region.code if region else "")


# --------------------------------------------------------------------------- the sweep


@dataclass(frozen=True)
class Due:
    """One alert the sweep will raise."""

    case: Case
    kind: AlertKind
    today: date
    left: int


def _message(due: Due) -> str:
    assert due.case.deadline is not None
    deadline = due.case.deadline.isoformat()
    if due.kind is AlertKind.RED:
        return f"已超期：案件 {due.case.number} 办理时限 {deadline}，已过期 {(due.today - due.case.deadline).days} 天"
    return f"临近办理时限：案件 {due.case.number} 办理时限 {deadline}，剩余 {due.left} 个工作日"


def _existing(session: Session, case_ids: list[int]) -> tuple[set[tuple[int, AlertKind]], dict[int, Alert]]:
    """(case, colour) pairs ever raised, and each case's yellow that is not resolved yet."""
    if not case_ids:
        return set(), {}
    alerts = session.exec(select(Alert).where(col(Alert.case_id).in_(case_ids), col(Alert.kind).in_(DEADLINE_KINDS))
                          .execution_options(populate_existing=True)).all()
    ever = {(int(a.case_id or 0), a.kind) for a in alerts}
    open_yellow = {int(a.case_id or 0): a for a in alerts
                   if a.kind is AlertKind.YELLOW and a.status is not AlertStatus.RESOLVED}
    return ever, open_yellow


def _due(session: Session, now: datetime) -> list[Due]:
    cases = session.exec(select(Case).where(col(Case.status).in_(OPEN_STATUSES), col(Case.deadline).is_not(None))
                         .order_by(col(Case.id))).all()
    calendars: dict[str, tuple[ZoneInfo, WorkCalendar]] = {}
    base = global_rules(session)
    rules: dict[str, AlertRules] = {}
    due: list[Due] = []
    for case in cases:
        assert case.deadline is not None
        if case.region_code not in calendars:
            calendars[case.region_code] = region_calendar(session.get(Region, case.region_code))
        zone, calendar = calendars[case.region_code]
        if case.item_code not in rules:
            rules[case.item_code] = effective_rules(session, case.item_code, base=base)
        today = now.astimezone(zone).date()
        kind = deadline_colour(today, case.deadline, calendar, rules[case.item_code])
        if kind is not None:
            due.append(Due(case, kind, today, working_days_left(today, case.deadline, calendar)))
    return due


def sweep(session: Session, now: datetime) -> list[int]:
    """Raise the yellow and red alerts due at `now`; the ids of alerts raised or resolved. Does not commit."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    candidates = _due(session, now)
    ever, _ = _existing(session, [int(d.case.id or 0) for d in candidates])
    if all((d.case.id, d.kind) in ever for d in candidates):
        return []  # nothing new: no lock taken, the common case of a periodic sweep
    lock_log(session)  # another node may sweep too: decide again under the lock
    ever, open_yellow = _existing(session, [int(d.case.id or 0) for d in candidates])
    changed: list[int] = []
    for d in candidates:
        case_id = int(d.case.id or 0)
        if (case_id, d.kind) in ever or (d.kind is AlertKind.YELLOW and (case_id, AlertKind.RED) in ever):
            continue
        alert = raise_alert(session, kind=d.kind, message=_message(d), case_id=case_id,
                            session_id=d.case.session_id, booth_id=d.case.booth_id)
        changed.append(int(alert.id or 0))
        if d.kind is AlertKind.RED and case_id in open_yellow:
            changed.append(int(resolve(session, int(open_yellow[case_id].id or 0), user_id=None,
                                       note=SUPERSEDED_NOTE).id or 0))
    if changed:
        logger.info("alert sweep at %s: %d alert(s) raised or resolved", now.isoformat(), len(changed))
    return changed


def run_sweep(engine: Engine, now: datetime) -> list[dict[str, Any]]:
    """One sweep in its own committed transaction; the views of the alerts it changed."""
    with Session(engine, expire_on_commit=False) as session:
        changed = sweep(session, now)
        session.commit()
        return [alert_views(session, alert_id=alert_id)[0] for alert_id in changed]


# --------------------------------------------------------------------------- the app's periodic task


async def sweep_and_push(state: Any, now: datetime) -> list[dict[str, Any]]:
    """Run one sweep off the event loop and push each change to supervisors as `wall.alert`."""
    views = await asyncio.to_thread(run_sweep, state.engine, now)
    for view in views:
        await state.switchboard.to_wall(push("wall.alert", alert=view))
    return views


@dataclass
class AlertSweeps:
    """The periodic sweep task and the event that stops it between two sweeps."""

    task: asyncio.Task[None]
    stopping: asyncio.Event


async def _sweep_forever(state: Any, clock: Clock, interval_s: float, stopping: asyncio.Event) -> None:
    while not stopping.is_set():
        try:
            await sweep_and_push(state, clock())
        except Exception:  # noqa: BLE001 - a bad sweep must not stop the next one
            logger.exception("alert sweep failed; trying again in %.0f s", interval_s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), interval_s)


def start_alert_sweeps(state: Any, *, interval_s: float | None = None) -> AlertSweeps:
    """Sweep now and every `SWEEP_INTERVAL_S`; `state.alert_clock`, when set, replaces the real clock (tests)."""
    clock: Clock = getattr(state, "alert_clock", None) or utc_clock
    stopping = asyncio.Event()
    task = asyncio.get_running_loop().create_task(
        _sweep_forever(state, clock, interval_s if interval_s is not None else SWEEP_INTERVAL_S, stopping),
        name="alert-sweeps")
    return AlertSweeps(task, stopping)


async def stop_alert_sweeps(sweeps: AlertSweeps) -> None:
    """Stop the periodic sweep, letting a sweep that is running finish first.

    A sweep runs in a worker thread, which a cancellation cannot stop: cancelled mid-sweep, the
    thread would go on with a connection of an engine the app is about to dispose, and that
    connection would be left open.  So stop between sweeps, and cancel only a sweep that hangs.
    """
    sweeps.stopping.set()
    try:
        await asyncio.wait_for(asyncio.shield(sweeps.task), STOP_WAIT_S)
    except TimeoutError:
        logger.warning("alert sweep still running after %.0f s at shutdown; cancelling it", STOP_WAIT_S)
        sweeps.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeps.task
