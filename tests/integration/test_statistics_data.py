"""Generated calls for the statistics tests, and the figures computed independently from the event log.

`generate` drives the real records functions (create_call, mark_offered, mark_answered, mark_ended,
mark_abandoned, mark_transferred, open_case, set_case_status, rate) under a controlled clock, so
rows and events carry the same timestamps spread over several days.  The records functions read
`datetime.now` themselves (they take no `now`), so the clock replaces the `datetime` name in the
modules that call it with a class whose `now()` is the clock and that is otherwise datetime.

`expected` recomputes every statistic from the raw Event rows alone (call.queued, call.answered,
call.transferred, call.ended, call.abandoned, case.opened, case.status_changed, rating.given); it
never imports records.statistics.  The tests compare the module, the JSON API, the CSV and the page
with it.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

import records.calls
import records.cases
import records.events
from records import calls, cases, ratings
from records.models import CaseStatus, Event

_REAL_DATETIME = datetime
SHANGHAI = ZoneInfo("Asia/Shanghai")
# Local service days: two ISO weeks, two months; the last one lies outside the tests' range.
DAYS = (date(2026, 2, 27), date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 5), date(2026, 3, 9))
OUTSIDE_DAY = date(2026, 3, 20)
RANGE = (date(2026, 2, 27), date(2026, 3, 10))


class _DatetimeMeta(type):
    # Instances of the real datetime still pass `isinstance(x, datetime)` in the patched modules.
    def __instancecheck__(cls, obj: object) -> bool:
        return isinstance(obj, _REAL_DATETIME)

    def __subclasscheck__(cls, sub: type) -> bool:
        return issubclass(sub, _REAL_DATETIME)


class _ClockDatetime(_REAL_DATETIME, metaclass=_DatetimeMeta):
    current: _REAL_DATETIME = _REAL_DATETIME(2026, 1, 1, tzinfo=timezone.utc)

    @classmethod
    def now(cls, tz: Any = None) -> _REAL_DATETIME:  # type: ignore[override]
        return cls.current.astimezone(tz) if tz is not None else cls.current.replace(tzinfo=None)


class Clock:
    """The time the records functions see while patched in (`with clock.frozen(monkeypatch)`)."""

    MODULES = (records.calls, records.events, records.cases)

    def set(self, moment: datetime) -> datetime:
        assert moment.tzinfo is not None
        _ClockDatetime.current = moment.astimezone(timezone.utc)
        return moment

    def patch(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for module in self.MODULES:
            monkeypatch.setattr(module, "datetime", _ClockDatetime)


@dataclass
class Cast:
    """Who takes part: booth ids (with their region), clerk ids, item codes."""

    booths: dict[int, str]
    clerks: list[int]
    items: list[str]


@dataclass
class Generated:
    """What `generate` made, for the tests to aim at."""

    outcomes: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    call_ids: list[str] = field(default_factory=list)


def _local(day: date, seconds: int) -> datetime:
    return datetime.combine(day, time.min, tzinfo=SHANGHAI) + timedelta(seconds=seconds)


def generate(engine: Engine, cast: Cast, monkeypatch: pytest.MonkeyPatch, *, seed: int = 7,
             calls_per_day: int = 9) -> Generated:
    """Calls on every day of DAYS (and OUTSIDE_DAY) with every outcome; the clock is restored after."""
    rng = random.Random(seed)
    clock = Clock()
    out = Generated()
    booths = sorted(cast.booths)
    with monkeypatch.context() as mp:
        clock.patch(mp)
        with Session(engine, expire_on_commit=False) as session:
            plan: list[tuple[date, int, str]] = []
            outcomes = ["answered"] * 6 + ["abandon_queue", "abandon_offer", "transfer", "requeued"]
            for day in (*DAYS, OUTSIDE_DAY):
                starts = sorted(rng.randrange(8 * 3600, 18 * 3600) for _ in range(calls_per_day))
                plan += [(day, s, rng.choice(outcomes)) for s in starts]
            # Around local midnight: counted on the day the call was queued.
            plan += [(DAYS[1], 24 * 3600 - 40, "answered"), (DAYS[2], 5, "abandon_queue"),
                     (DAYS[-1], 17 * 3600, "waiting"), (DAYS[-1], 17 * 3600 + 60, "answered_unrated")]
            for day, start, outcome in plan:
                booth = rng.choice(booths)
                call_id = _one_call(session, clock, rng, cast, booth, _local(day, start), outcome)
                out.outcomes[outcome] += 1
                out.call_ids.append(call_id)
            # A case decided without a call (walk-in at the service centre): no booth.
            clock.set(_local(DAYS[2], 11 * 3600))
            cases.open_case(session, call_session_id=None, item_code=cast.items[0],
                            region_code=cast.booths[booths[0]], booth_id=None, clerk_id=cast.clerks[0],
                            status=CaseStatus.ACCEPTED, decided_at=_local(DAYS[2], 11 * 3600),
                            deadline=DAYS[2] + timedelta(days=7))
            session.commit()
    return out


def _one_call(session: Session, clock: Clock, rng: random.Random, cast: Cast, booth: int,
              start: datetime, outcome: str) -> str:
    """One call from queueing to its end (and case and rating), each step committed at its time."""
    item = rng.choice(cast.items)
    clerk = rng.choice(cast.clerks)
    clock.set(start)
    call = calls.create_call(session, booth_id=booth, item_code=item)
    session.commit()
    t = start
    if outcome == "waiting":
        return call.id
    if outcome == "abandon_queue":
        clock.set(t + timedelta(seconds=rng.randrange(5, 240)))
        calls.mark_abandoned(session, call.id, reason="booth_left")
        session.commit()
        return call.id
    t = clock.set(t + timedelta(seconds=rng.randrange(1, 10)))
    calls.mark_offered(session, call.id, clerk_id=clerk)
    session.commit()
    if outcome == "abandon_offer":
        clock.set(t + timedelta(seconds=rng.randrange(3, 30)))
        calls.mark_abandoned(session, call.id, reason="booth_left")
        session.commit()
        return call.id
    if outcome == "requeued":
        t = clock.set(t + timedelta(seconds=20))
        calls.mark_requeued(session, call.id, reason="offer_timeout")
        clerk = rng.choice([c for c in cast.clerks if c != clerk] or cast.clerks)
        t = clock.set(t + timedelta(seconds=rng.randrange(1, 15)))
        calls.mark_offered(session, call.id, clerk_id=clerk)
        session.commit()
    t = clock.set(t + timedelta(seconds=rng.randrange(1, 45)))
    calls.mark_answered(session, call.id, clerk_id=clerk)
    session.commit()
    if outcome == "transfer":
        t = clock.set(t + timedelta(seconds=rng.randrange(30, 120)))
        other = rng.choice([c for c in cast.clerks if c != clerk] or cast.clerks)
        calls.mark_transferred(session, call.id, actor=f"user:{clerk}", note="转社保", to_clerk_id=other)
        t = clock.set(t + timedelta(seconds=rng.randrange(2, 20)))
        calls.mark_offered(session, call.id, clerk_id=other)
        t = clock.set(t + timedelta(seconds=rng.randrange(2, 20)))
        calls.mark_answered(session, call.id, clerk_id=other)
        session.commit()
        clerk = other
    t = clock.set(t + timedelta(seconds=rng.randrange(60, 900)))
    calls.mark_ended(session, call.id, "hangup_clerk", actor=f"user:{clerk}")
    session.commit()
    _decide(session, clock, rng, call, clerk, t)
    if outcome != "answered_unrated" and rng.random() < 0.85:
        clock.set(t + timedelta(seconds=rng.randrange(5, 60)))
        ratings.rate(session, session_id=call.id, level=rng.randint(1, 5), comment="")
        session.commit()
    return call.id


def _decide(session: Session, clock: Clock, rng: random.Random, call: Any, clerk: int, t: datetime) -> None:
    """Most served calls end in a decision; some cases move on later (补正 -> 受理/不予受理, 受理 -> 办结)."""
    roll = rng.random()
    if roll < 0.15:
        return
    status = (CaseStatus.ACCEPTED if roll < 0.55 else CaseStatus.REFUSED if roll < 0.75
              else CaseStatus.NEEDS_SUPPLEMENT)
    clock.set(t)
    case = cases.open_case(
        session, call_session_id=call.id, item_code=call.item_code, region_code=call.region_code,
        booth_id=call.booth_id, clerk_id=clerk, status=status,
        reason="材料不符合要求" if status is CaseStatus.REFUSED else "",
        missing_materials=["户口簿"] if status is CaseStatus.NEEDS_SUPPLEMENT else (),
        decided_at=t, deadline=t.date() + timedelta(days=10))
    session.commit()
    later = rng.random()
    if later < 0.4:
        clock.set(t + timedelta(days=1))
        if status is CaseStatus.NEEDS_SUPPLEMENT:
            nxt = CaseStatus.ACCEPTED if later < 0.25 else CaseStatus.REFUSED
            cases.set_case_status(session, case.id, nxt, actor=f"user:{clerk}",
                                  reason="" if nxt is CaseStatus.ACCEPTED else "逾期未补正")
        elif status is CaseStatus.ACCEPTED:
            cases.set_case_status(session, case.id, CaseStatus.COMPLETED, actor=f"user:{clerk}")
        session.commit()


# --------------------------------------------------------------------------- the independent figures


@dataclass
class _Call:
    queued: datetime
    booth: int
    region: str
    item: str
    status: str = "queued"
    answered: datetime | None = None
    clerk: int | None = None
    ended: datetime | None = None
    rating: int | None = None


@dataclass
class _Case:
    decided: datetime
    booth: int | None
    region: str
    item: str
    clerk: int | None
    status: str


@dataclass
class EventFacts:
    calls: dict[str, _Call]
    cases: dict[int, _Case]


def facts_from_events(engine: Engine) -> EventFacts:
    """Calls, cases and ratings as the event log tells them."""
    calls_: dict[str, _Call] = {}
    cases_: dict[int, _Case] = {}
    with Session(engine) as session:
        events = session.exec(select(Event).order_by(col(Event.seq))).all()
    for ev in events:
        ts = ev.ts.replace(tzinfo=timezone.utc) if ev.ts.tzinfo is None else ev.ts
        d, sid = ev.data, ev.session_id
        if ev.kind == "call.queued":
            calls_[sid] = _Call(queued=ts, booth=ev.booth_id, region=d["region_code"], item=d["item_code"])
        elif ev.kind == "call.offered":
            calls_[sid].status = "offered"
        elif ev.kind in ("call.requeued", "call.transferred"):
            calls_[sid].status = "queued"
        elif ev.kind == "call.answered":
            call = calls_[sid]
            call.status, call.clerk = "active", d["clerk_id"]
            call.answered = call.answered or ts
        elif ev.kind == "call.ended":
            calls_[sid].status, calls_[sid].ended = "ended", ts
        elif ev.kind == "call.abandoned":
            calls_[sid].status, calls_[sid].ended = "abandoned", ts
        elif ev.kind == "rating.given":
            calls_[sid].rating = d["level"]
        elif ev.kind == "case.opened":
            cases_[d["case_id"]] = _Case(decided=ts, booth=ev.booth_id, region=d["region_code"],
                                         item=d["item_code"], clerk=d["clerk_id"], status=d["status"])
        elif ev.kind == "case.status_changed":
            cases_[d["case_id"]].status = d["to"]
    return EventFacts(calls_, cases_)


def _period(moment: datetime, period: str, tz: ZoneInfo) -> str:
    day = moment.astimezone(tz).date()
    if period == "day":
        return day.strftime("%Y-%m-%d")
    if period == "week":
        iso = day.isocalendar()
        return "%d-W%02d" % (iso[0], iso[1])
    return day.strftime("%Y-%m")


def _group(by: str, booth: int | None, region: str, item: str, clerk: int | None) -> str | None:
    value = {"none": None, "booth": booth, "region": region, "item": item, "clerk": clerk}[by]
    return None if value is None else str(value)


def _p90(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[math.ceil(len(ordered) * 9 / 10) - 1]


def _avg(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def expected(facts: EventFacts, *, start: date, end: date, period: str = "day", by: str = "none",
             threshold_s: float = 20, regions: set[str] | None = None,
             tz: ZoneInfo = SHANGHAI) -> dict[str, dict[Any, dict[str, Any]]]:
    """{"rows": {(period, group): figures}, "periods": {period: ...}, "groups": {group: ...}, "total": {None: ...}}."""
    raw: dict[str, dict[Any, dict[str, list[Any]]]] = {k: defaultdict(lambda: defaultdict(list))
                                                       for k in ("rows", "periods", "groups", "total")}

    def inside(moment: datetime, region: str) -> bool:
        return start <= moment.astimezone(tz).date() <= end and (regions is None or region in regions)

    def add(moment: datetime, group: str | None, name: str, value: Any) -> None:
        p = _period(moment, period, tz)
        for table, key in (("rows", (p, group)), ("periods", p), ("groups", group), ("total", None)):
            raw[table][key][name].append(value)

    for call in facts.calls.values():
        if not inside(call.queued, call.region):
            continue
        clerk = call.clerk if call.status in ("active", "ended") else None
        group = _group(by, call.booth, call.region, call.item, clerk)
        add(call.queued, group, "booth", call.booth)
        if call.answered is not None:
            add(call.queued, group, "wait", (call.answered - call.queued).total_seconds())
            if call.ended is not None:
                add(call.queued, group, "handle", (call.ended - call.answered).total_seconds())
        elif call.status == "abandoned":
            add(call.queued, group, "abandon_wait", (call.ended - call.queued).total_seconds())
        if call.ended is not None:
            add(call.queued, group, "busy", (call.ended - call.queued).total_seconds())
        if call.rating is not None:
            add(call.queued, group, "rating", call.rating)
    for case in facts.cases.values():
        if inside(case.decided, case.region):
            add(case.decided, _group(by, case.booth, case.region, case.item, case.clerk), "case", case.status)

    def figures(obs: dict[str, list[Any]]) -> dict[str, Any]:
        offered, waits, rates = len(obs["booth"]), obs["wait"], obs["rating"]
        within = len([w for w in waits if w <= threshold_s])
        statuses = obs["case"]
        return {
            "offered": offered, "answered": len(waits), "abandoned": len(obs["abandon_wait"]),
            "answered_within": within, "service_level": within / offered if offered else None,
            "wait_avg_s": _avg(waits), "wait_p90_s": _p90(waits),
            "abandon_wait_avg_s": _avg(obs["abandon_wait"]), "handle_avg_s": _avg(obs["handle"]),
            "cases_accepted": statuses.count("accepted") + statuses.count("completed"),
            "cases_refused": statuses.count("refused"), "cases_supplement": statuses.count("needs_supplement"),
            "rated": len(rates), "rating_counts": {lv: rates.count(lv) for lv in range(1, 6)},
            "satisfied_share": (rates.count(4) + rates.count(5)) / len(rates) if rates else None,
            "dissatisfied": rates.count(1) + rates.count(2),
            "booths_active": len(set(obs["booth"])), "booth_busy_s": sum(obs["busy"]),
        }

    return {table: {key: figures(obs) for key, obs in entries.items()} for table, entries in raw.items()}


def assert_figures_match(actual: dict[str, Any], wanted: dict[str, Any], *, where: str,
                         seconds_abs: float = 1e-6, share_abs: float = 1e-9) -> None:
    """Every figure equal; floats within the given rounding of seconds and shares."""
    assert set(actual) >= set(wanted), f"{where}: missing {set(wanted) - set(actual)}"
    for name, want in wanted.items():
        got = actual[name]
        if name == "rating_counts":
            got = {int(k): v for k, v in got.items()}
        if isinstance(want, float):
            tol = share_abs if name in ("service_level", "satisfied_share") else seconds_abs
            assert got is not None and abs(got - want) <= tol, f"{where}: {name} is {got}, expected {want}"
        else:
            assert got == want, f"{where}: {name} is {got}, expected {want}"


# --------------------------------------------------------------------------- the generator's own check


def test_generated_sessions_cover_every_outcome(records_engine, monkeypatch):
    from tests.records_factories import add_booth, add_item, add_region, add_user

    with Session(records_engine, expire_on_commit=False) as session:
        add_region(session, "xh")
        booth = add_booth(session, "xh")
        clerks = [add_user(session).id, add_user(session).id]
        add_item(session, "sb01")
        session.commit()
    made = generate(records_engine, Cast({booth.id: "xh"}, clerks, ["sb01"]), monkeypatch, calls_per_day=4)
    facts = facts_from_events(records_engine)
    assert set(made.call_ids) == set(facts.calls)
    statuses = {c.status for c in facts.calls.values()}
    assert statuses == {"queued", "abandoned", "ended"}
    assert {c.status for c in facts.cases.values()} >= {"accepted", "refused", "needs_supplement"}
    assert {c.rating for c in facts.calls.values()} - {None} <= {1, 2, 3, 4, 5}
    # The rows carry the clock's times too, not the wall clock's.
    first = facts.calls[made.call_ids[0]]
    with Session(records_engine) as session:
        row = calls.get_call(session, made.call_ids[0])
        assert row.queued_at.replace(tzinfo=timezone.utc) == first.queued
    assert first.queued.astimezone(SHANGHAI).date() == DAYS[0]
    assert datetime.now(timezone.utc).year >= 2026 and records.calls.datetime is _REAL_DATETIME
