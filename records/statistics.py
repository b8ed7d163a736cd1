"""Supervision statistics (统计分析) computed from the call, case and rating records.

One pass over the rows of a date range, grouped by period (day, ISO week,
month; local dates in the time zone the caller passes, normally the
`CLOUDSEAT_TIMEZONE` setting) and by one dimension (booth, region, clerk,
service item, or none).  Three queries read the range (calls, their ratings,
cases) and one reads the labels of the chosen dimension; the rest is Python.

Definitions (every figure of a bucket; "calls" are CallSession rows whose
`queued_at` falls in the bucket's local dates):

- offered: calls that entered the queue (every call, whatever became of it).
- answered: calls a clerk answered (`answered_at` set; a transferred call
  keeps its first answer).
- abandoned: calls that ended with status ABANDONED before any answer
  (a transferred call that is later abandoned in the queue was answered).
  offered - answered - abandoned calls were still waiting when read.
- wait (s): `answered_at - queued_at` of answered calls; wait_avg_s is its
  mean, wait_p90_s its 90th percentile by nearest rank: the value at
  position ceil(0.9 * n) (1-based) of the ascending list, so at least 90 %
  of the answered calls waited no longer.  None without answered calls.
- abandon_wait_avg_s: mean `ended_at - queued_at` of abandoned calls.
- answered_within: answered calls with wait <= the threshold (default 20 s);
  service_level = answered_within / offered (None when nothing was offered).
- handle_avg_s: mean `ended_at - answered_at` of answered calls that have
  ended (talk time up to hang-up; wrap-up is not in the records).
- cases_accepted / cases_refused / cases_supplement: cases decided
  (`Case.created_at`) in the bucket, by their status now: accepted counts
  受理 and 办结 (completed), supplement counts cases still waiting for 补正;
  a 补正 case that was later accepted or refused counts as that.  Cases are
  grouped by their own booth, region, clerk and item.
- rated: calls of the bucket with a 好差评 rating; rating_counts per level
  (1..5); satisfied_share = (满意 + 非常满意, levels 4 and 5) / rated;
  dissatisfied = count of 不满意 and 非常不满意 (levels 2 and 1).  A rating
  belongs to its call: its period and dimensions are the call's.
- booths_active: distinct booths that placed a call; booth_busy_s: sum of
  `ended_at - queued_at` of calls that have ended (how long booths were
  occupied by a call, waiting included).

The clerk of a call (dimension `clerk`) is the clerk who held it at its end:
`CallSession.clerk_id` of calls that are ACTIVE or ENDED.  Calls that were
never served, or left in the queue, have no clerk (group key None), even
when a clerk was being offered the call when the resident left.

A week runs Monday to Sunday and is labelled `2026-W10` (ISO); a month
`2026-03`; a day `2026-03-02`.  Only the days inside the range count, also
for the first and last week or month.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlmodel import Session, col, select

from records.errors import ValidationError
from records.models import (Booth, CallSession, CallStatus, Case, CaseStatus, Rating, Region, ServiceItem,
                            User, as_utc)

MAX_SPAN_DAYS = 366
DEFAULT_SL_THRESHOLD_S = 20.0
MAX_SL_THRESHOLD_S = 3600.0
P90 = 0.9
SERVED = frozenset({CallStatus.ACTIVE, CallStatus.ENDED})
ACCEPTED_STATUSES = frozenset({CaseStatus.ACCEPTED, CaseStatus.COMPLETED})

# Group labels of calls without a value in the dimension, and of the whole.
NO_CLERK_LABEL = ("未接通", "Not served")
ALL_LABEL = ("全部", "All")


class Period(str, enum.Enum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class Dimension(str, enum.Enum):
    NONE = "none"
    BOOTH = "booth"
    REGION = "region"
    CLERK = "clerk"
    ITEM = "item"


@dataclass(frozen=True)
class StatsQuery:
    """What to compute: local dates `start`..`end` inclusive, grouping, threshold and scope.

    `regions` None means every region; a set limits every figure to calls
    and cases of those regions (an empty set gives empty statistics).
    """

    start: date
    end: date
    period: Period = Period.DAY
    by: Dimension = Dimension.NONE
    tz: str = "Asia/Shanghai"
    sl_threshold_s: float = DEFAULT_SL_THRESHOLD_S
    regions: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValidationError("invalid_range", "the range ends before it starts")
        if (self.end - self.start).days + 1 > MAX_SPAN_DAYS:
            raise ValidationError("range_too_long", f"the range is longer than {MAX_SPAN_DAYS} days")
        object.__setattr__(self, "period", Period(self.period))
        object.__setattr__(self, "by", Dimension(self.by))
        if not (isinstance(self.sl_threshold_s, (int, float)) and 0 < self.sl_threshold_s <= MAX_SL_THRESHOLD_S):
            raise ValidationError("invalid_threshold", f"threshold must be in (0, {MAX_SL_THRESHOLD_S:g}] s")
        try:
            ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValidationError("invalid_timezone", f"unknown time zone {self.tz!r}") from exc

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    def utc_bounds(self) -> tuple[datetime, datetime]:
        """[first instant, instant after the last local day) as naive UTC, how the columns compare."""
        lo = datetime.combine(self.start, time.min, tzinfo=self.zone).astimezone(timezone.utc)
        hi = datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=self.zone).astimezone(timezone.utc)
        return lo.replace(tzinfo=None), hi.replace(tzinfo=None)


@dataclass(frozen=True)
class Figures:
    """The figures of one bucket; see the module docstring for each definition."""

    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    answered_within: int = 0
    service_level: float | None = None
    wait_avg_s: float | None = None
    wait_p90_s: float | None = None
    abandon_wait_avg_s: float | None = None
    handle_avg_s: float | None = None
    cases_accepted: int = 0
    cases_refused: int = 0
    cases_supplement: int = 0
    rated: int = 0
    rating_counts: dict[int, int] = field(default_factory=lambda: {lv: 0 for lv in range(1, 6)})
    satisfied_share: float | None = None
    dissatisfied: int = 0
    booths_active: int = 0
    booth_busy_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class StatsRow:
    """Figures of one period (or the whole range: period None) and one group (None: the whole)."""

    period: str | None
    period_start: date | None
    group: str | None
    label_zh: str
    label_en: str
    figures: Figures


@dataclass(frozen=True)
class StatsReport:
    """`rows`: period x group with activity; `periods`: every period of the range, all groups;
    `groups`: each group over the whole range; `total`: everything."""

    query: StatsQuery
    rows: list[StatsRow]
    periods: list[StatsRow]
    groups: list[StatsRow]
    total: StatsRow


# --------------------------------------------------------------------------- pure helpers


def nearest_rank(values: Iterable[float], share: float = P90) -> float | None:
    """The nearest-rank percentile: the ceil(share * n)-th smallest value, None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[max(1, math.ceil(share * len(ordered))) - 1]


def period_of(day: date, period: Period) -> tuple[str, date]:
    """(label, first day) of the period holding local date `day`."""
    if period is Period.DAY:
        return day.isoformat(), day
    if period is Period.WEEK:
        year, week, weekday = day.isocalendar()
        return f"{year}-W{week:02d}", day - timedelta(days=weekday - 1)
    return f"{day.year:04d}-{day.month:02d}", day.replace(day=1)


def periods_between(start: date, end: date, period: Period) -> list[tuple[str, date]]:
    """Every period touching [start, end], in order."""
    out: list[tuple[str, date]] = []
    day = start
    while day <= end:
        key = period_of(day, period)
        if not out or out[-1] != key:
            out.append(key)
        day += timedelta(days=1)
    return out


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _seconds(start: datetime, end: datetime) -> float:
    return (as_utc(end) - as_utc(start)).total_seconds()


@dataclass
class _Bucket:
    """Raw observations of one bucket, reduced to Figures at the end."""

    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    waits: list[float] = field(default_factory=list)
    abandon_waits: list[float] = field(default_factory=list)
    handles: list[float] = field(default_factory=list)
    cases: dict[str, int] = field(default_factory=lambda: {"accepted": 0, "refused": 0, "supplement": 0})
    ratings: dict[int, int] = field(default_factory=lambda: {lv: 0 for lv in range(1, 6)})
    booths: set[int] = field(default_factory=set)
    busy_s: float = 0.0

    def figures(self, threshold_s: float) -> Figures:
        within = sum(1 for w in self.waits if w <= threshold_s)
        rated = sum(self.ratings.values())
        return Figures(
            offered=self.offered,
            answered=self.answered,
            abandoned=self.abandoned,
            answered_within=within,
            service_level=within / self.offered if self.offered else None,
            wait_avg_s=_mean(self.waits),
            wait_p90_s=nearest_rank(self.waits),
            abandon_wait_avg_s=_mean(self.abandon_waits),
            handle_avg_s=_mean(self.handles),
            cases_accepted=self.cases["accepted"],
            cases_refused=self.cases["refused"],
            cases_supplement=self.cases["supplement"],
            rated=rated,
            rating_counts=dict(self.ratings),
            satisfied_share=(self.ratings[4] + self.ratings[5]) / rated if rated else None,
            dissatisfied=self.ratings[1] + self.ratings[2],
            booths_active=len(self.booths),
            booth_busy_s=self.busy_s,
        )


class _Buckets:
    """The same observation goes to its (period, group), its period, its group and the total."""

    def __init__(self) -> None:
        self.cells: dict[tuple[str, str | None], _Bucket] = {}
        self.by_period: dict[str, _Bucket] = {}
        self.by_group: dict[str | None, _Bucket] = {}
        self.total = _Bucket()

    def targets(self, period: str, group: str | None) -> list[_Bucket]:
        return [
            self.cells.setdefault((period, group), _Bucket()),
            self.by_period.setdefault(period, _Bucket()),
            self.by_group.setdefault(group, _Bucket()),
            self.total,
        ]


# --------------------------------------------------------------------------- the computation


def compute_statistics(session: Session, query: StatsQuery) -> StatsReport:
    """The statistics of `query` (read-only)."""
    lo, hi = query.utc_bounds()
    zone = query.zone
    buckets = _Buckets()
    if query.regions is not None and not query.regions:
        return _report(session, query, buckets)

    def local_period(ts: datetime) -> str:
        return period_of(as_utc(ts).astimezone(zone).date(), query.period)[0]

    call_filter = [col(CallSession.queued_at) >= lo, col(CallSession.queued_at) < hi]
    if query.regions is not None:
        call_filter.append(col(CallSession.region_code).in_(sorted(query.regions)))
    calls = session.exec(
        select(CallSession.id, CallSession.booth_id, CallSession.region_code, CallSession.item_code,
               CallSession.clerk_id, CallSession.status, CallSession.queued_at, CallSession.answered_at,
               CallSession.ended_at).where(*call_filter)
    ).all()
    where_of: dict[str, tuple[str, str | None]] = {}
    for cid, booth_id, region, item, clerk_id, status, queued, answered, ended in calls:
        status = CallStatus(status)
        clerk = clerk_id if status in SERVED else None
        group = _group_key(query.by, booth_id, region, item, clerk)
        period = local_period(queued)
        where_of[cid] = (period, group)
        for b in buckets.targets(period, group):
            b.offered += 1
            b.booths.add(booth_id)
            if answered is not None:
                b.answered += 1
                b.waits.append(_seconds(queued, answered))
                if ended is not None:
                    b.handles.append(_seconds(answered, ended))
            elif status is CallStatus.ABANDONED:
                b.abandoned += 1
                if ended is not None:
                    b.abandon_waits.append(_seconds(queued, ended))
            if ended is not None:
                b.busy_s += _seconds(queued, ended)

    ratings = session.exec(
        select(Rating.session_id, Rating.level).join(CallSession, col(CallSession.id) == col(Rating.session_id))
        .where(*call_filter)
    ).all()
    for session_id, level in ratings:
        for b in buckets.targets(*where_of[session_id]):
            b.ratings[int(level)] += 1

    case_filter = [col(Case.created_at) >= lo, col(Case.created_at) < hi]
    if query.regions is not None:
        case_filter.append(col(Case.region_code).in_(sorted(query.regions)))
    cases = session.exec(
        select(Case.booth_id, Case.region_code, Case.item_code, Case.clerk_id, Case.status, Case.created_at)
        .where(*case_filter)
    ).all()
    for booth_id, region, item, clerk_id, status, created in cases:
        status = CaseStatus(status)
        kind = ("accepted" if status in ACCEPTED_STATUSES
                else "refused" if status is CaseStatus.REFUSED else "supplement")
        for b in buckets.targets(local_period(created), _group_key(query.by, booth_id, region, item, clerk_id)):
            b.cases[kind] += 1
    return _report(session, query, buckets)


def _group_key(by: Dimension, booth_id: int | None, region: str, item: str, clerk_id: int | None) -> str | None:
    if by is Dimension.BOOTH:
        return None if booth_id is None else str(booth_id)
    if by is Dimension.REGION:
        return region
    if by is Dimension.ITEM:
        return item
    if by is Dimension.CLERK:
        return None if clerk_id is None else str(clerk_id)
    return None


def _labels(session: Session, by: Dimension, keys: set[str]) -> dict[str | None, tuple[str, str]]:
    """(zh, en) label of each group key of the dimension; one query."""
    present = sorted(k for k in keys if k is not None)
    labels: dict[str | None, tuple[str, str]] = {None: ALL_LABEL if by is Dimension.NONE else NO_CLERK_LABEL}
    if by is Dimension.BOOTH:
        labels[None] = ("无晓屋", "No booth")
        for booth in session.exec(select(Booth).where(col(Booth.id).in_([int(k) for k in present]))):
            labels[str(booth.id)] = (booth.name, booth.name)
    elif by is Dimension.REGION:
        for region in session.exec(select(Region).where(col(Region.code).in_(present))):
            labels[region.code] = (region.name_zh, region.name_en)
    elif by is Dimension.ITEM:
        for item in session.exec(select(ServiceItem).where(col(ServiceItem.code).in_(present))):
            labels[item.code] = (item.name_zh, item.name_en)
    elif by is Dimension.CLERK:
        for user in session.exec(select(User).where(col(User.id).in_([int(k) for k in present]))):
            name = user.display_name or user.username
            labels[str(user.id)] = (name, name)
    return labels


def _report(session: Session, query: StatsQuery, buckets: _Buckets) -> StatsReport:
    labels = _labels(session, query.by, {g for _, g in buckets.cells})
    threshold = query.sl_threshold_s
    starts = dict(periods_between(query.start, query.end, query.period))

    def label(group: str | None) -> tuple[str, str]:
        return labels.get(group, (group or "", group or ""))

    rows = [
        StatsRow(period, starts[period], group, *label(group), bucket.figures(threshold))
        for (period, group), bucket in buckets.cells.items()
    ]
    rows.sort(key=lambda r: (r.period_start or date.min, r.group is None, r.label_zh, r.group or ""))
    periods = [
        StatsRow(period, start, None, *ALL_LABEL, buckets.by_period.get(period, _Bucket()).figures(threshold))
        for period, start in starts.items()
    ]
    groups = [
        StatsRow(None, None, group, *label(group), bucket.figures(threshold))
        for group, bucket in buckets.by_group.items()
    ]
    groups.sort(key=lambda r: (-r.figures.offered, r.group is None, r.label_zh, r.group or ""))
    total = StatsRow(None, None, None, *ALL_LABEL, buckets.total.figures(threshold))
    return StatsReport(query=query, rows=rows, periods=periods, groups=groups, total=total)
