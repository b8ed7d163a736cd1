"""Service hours per region and the working-day calendar.

Government service halls keep weekday hours with a lunch break (or 午间不断档, service through
lunch), often a Saturday morning, and follow the State Council holiday calendar: statutory
holidays are closed and some weekends are adjusted working days (调休上班) that follow the
weekday schedule. The kiosk uses this to choose between a call and an appointment (预约); case
handling uses the same calendar for statutory deadlines (N working days).

The configuration is the plain JSON dict that `records` stores per region
(``records/data/regions.json``), so it passes from the database to here untouched::

    {
      "timezone": "Asia/Shanghai",
      "weekdays": [{"start": "09:00", "end": "12:00"}, {"start": "13:30", "end": "17:30"}],
      "saturday": [{"start": "09:00", "end": "12:00"}],
      "sunday": [],
      "lunch_service": false,
      "holidays": ["2025-10-01", "2025-10-02"],
      "working_weekends": ["2025-09-28"]
    }

``lunch_service`` true means the gaps between a day's intervals are served too (one continuous
stretch from the first start to the last end). ``saturday``/``sunday`` empty or absent mean
closed; ``timezone`` defaults to Asia/Shanghai. All instants are timezone-aware; naive
datetimes are refused because a kiosk's clock and the server's may sit in different zones.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

logger = logging.getLogger(__name__)

DEFAULT_TIMEZONE = "Asia/Shanghai"
# A calendar with every day closed would loop forever; a year and a bit covers any real gap.
_SEARCH_DAYS = 400


Interval = tuple[time, time]


@dataclass(frozen=True)
class WorkCalendar:
    """Which dates are working days: Monday to Friday, minus holidays, plus working weekends (调休)."""

    holidays: frozenset[date] = field(default_factory=frozenset)
    working_weekends: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        for name in ("holidays", "working_weekends"):
            value = getattr(self, name)
            if not isinstance(value, frozenset) or not all(
                isinstance(d, date) and not isinstance(d, datetime) for d in value
            ):
                raise ValueError(f"{name} must be a frozenset of dates")
        weekdays = sorted(d.isoformat() for d in self.working_weekends if d.weekday() < 5)
        if weekdays:
            raise ValueError(f"working_weekends must be Saturdays or Sundays: {', '.join(weekdays)}")
        both = self.holidays & self.working_weekends
        if both:
            listed = ", ".join(d.isoformat() for d in sorted(both))
            raise ValueError(f"dates cannot be both holiday and working weekend: {listed}")

    def is_working_day(self, day: date) -> bool:
        """True for a working day (工作日) of this calendar."""
        if day in self.holidays:
            return False
        if day in self.working_weekends:
            return True
        return day.weekday() < 5


def _check_intervals(name: str, intervals: object) -> None:
    if not isinstance(intervals, tuple):
        raise ValueError(f"{name} must be a tuple of (start, end) times")
    previous_end: time | None = None
    for i, interval in enumerate(intervals):
        if (
            not isinstance(interval, tuple)
            or len(interval) != 2
            or not all(isinstance(t, time) and t.tzinfo is None for t in interval)
        ):
            raise ValueError(f"{name}[{i}] must be a (start, end) pair of naive times, got {interval!r}")
        start, end = interval
        if not start < end:
            raise ValueError(f"{name}[{i}]: start {start:%H:%M} is not before end {end:%H:%M}")
        if previous_end is not None and start < previous_end:
            raise ValueError(f"{name}[{i}]: overlaps or precedes the interval before it")
        previous_end = end


@dataclass(frozen=True)
class ServiceHours:
    """A region's service hours; build it with `parse_service_hours`. Intervals are [start, end)."""

    timezone: ZoneInfo
    weekdays: tuple[Interval, ...]
    saturday: tuple[Interval, ...] = ()
    sunday: tuple[Interval, ...] = ()
    lunch_service: bool = False
    calendar: WorkCalendar = field(default_factory=WorkCalendar)

    def __post_init__(self) -> None:
        if not isinstance(self.timezone, ZoneInfo):
            raise ValueError("timezone must be a zoneinfo.ZoneInfo")
        for name in ("weekdays", "saturday", "sunday"):
            _check_intervals(name, getattr(self, name))
        if not self.weekdays:
            raise ValueError("weekdays must have at least one interval")
        if not isinstance(self.lunch_service, bool):
            raise ValueError(f"lunch_service must be a bool, got {self.lunch_service!r}")
        if not isinstance(self.calendar, WorkCalendar):
            raise ValueError("calendar must be a WorkCalendar")

    def intervals_on(self, day: date) -> tuple[Interval, ...]:
        """The open intervals on a local date, empty when closed all day."""
        if day in self.calendar.holidays:
            return ()
        if day in self.calendar.working_weekends:  # 调休: a weekend that works a weekday
            intervals = self.weekdays
        elif day.weekday() < 5:
            intervals = self.weekdays
        else:
            intervals = self.saturday if day.weekday() == 5 else self.sunday
        if self.lunch_service and len(intervals) > 1:  # 午间不断档: the gaps are served too
            return ((intervals[0][0], intervals[-1][1]),)
        return intervals


def _parse_time(where: str, value: object) -> time:
    if not isinstance(value, str) or len(value) != 5 or value[2] != ":":
        raise ValueError(f"{where}: expected a time 'HH:MM', got {value!r}")
    try:
        return time.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{where}: expected a time 'HH:MM', got {value!r}") from None


def _parse_date(where: str, value: object) -> date:
    if not isinstance(value, str):
        raise ValueError(f"{where}: expected a date 'YYYY-MM-DD', got {value!r}")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{where}: expected a date 'YYYY-MM-DD', got {value!r}") from None


def _parse_dates(where: str, value: object) -> frozenset[date]:
    if value is None:
        return frozenset()
    if not isinstance(value, list):
        raise ValueError(f"{where}: expected a list of dates, got {type(value).__name__}")
    return frozenset(_parse_date(f"{where}[{i}]", item) for i, item in enumerate(value))


def _parse_intervals(where: str, value: object) -> tuple[Interval, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ValueError(f"{where}: expected a list of {{start, end}} objects, got {type(value).__name__}")
    intervals: list[Interval] = []
    for i, item in enumerate(value):
        spot = f"{where}[{i}]"
        if not isinstance(item, Mapping):
            raise ValueError(f"{spot}: expected an object with start and end, got {item!r}")
        if set(item) != {"start", "end"}:
            raise ValueError(f"{spot}: expected exactly the keys start and end, got {sorted(item)}")
        intervals.append((_parse_time(f"{spot}.start", item["start"]), _parse_time(f"{spot}.end", item["end"])))
    result = tuple(intervals)
    _check_intervals(where, result)
    return result


def parse_calendar(data: Mapping[str, Any]) -> WorkCalendar:
    """Build a WorkCalendar from ``{"holidays": [...], "working_weekends": [...]}`` (other keys ignored)."""
    if not isinstance(data, Mapping):
        raise ValueError(f"calendar: expected an object, got {type(data).__name__}")
    return WorkCalendar(
        holidays=_parse_dates("holidays", data.get("holidays")),
        working_weekends=_parse_dates("working_weekends", data.get("working_weekends")),
    )


_SERVICE_HOURS_KEYS = frozenset(
    {"timezone", "weekdays", "saturday", "sunday", "lunch_service", "holidays", "working_weekends"}
)


def parse_service_hours(data: Mapping[str, Any]) -> ServiceHours:
    """Build ServiceHours from a region's plain dict (see the module docstring).

    Raises ValueError naming the field at fault.
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"service hours: expected an object, got {type(data).__name__}")
    unknown = set(data) - _SERVICE_HOURS_KEYS
    if unknown:
        raise ValueError(f"service hours: unknown keys {sorted(unknown)}")
    tz_name = data.get("timezone", DEFAULT_TIMEZONE)
    if not isinstance(tz_name, str) or not tz_name:
        raise ValueError(f"timezone: expected an IANA name like 'Asia/Shanghai', got {tz_name!r}")
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"timezone: unknown timezone {tz_name!r}") from None
    weekdays = _parse_intervals("weekdays", data.get("weekdays"))
    if not weekdays:
        raise ValueError("weekdays: required, at least one {start, end} interval")
    lunch_service = data.get("lunch_service", False)
    if not isinstance(lunch_service, bool):
        raise ValueError(f"lunch_service: expected true or false, got {lunch_service!r}")
    return ServiceHours(
        timezone=tz,
        weekdays=weekdays,
        saturday=_parse_intervals("saturday", data.get("saturday")),
        sunday=_parse_intervals("sunday", data.get("sunday")),
        lunch_service=lunch_service,
        calendar=parse_calendar(data),
    )


def _local(hours: ServiceHours, dt: datetime) -> datetime:
    if not isinstance(dt, datetime):
        raise ValueError(f"expected a datetime, got {type(dt).__name__}")
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware")
    return dt.astimezone(hours.timezone)


def is_open(hours: ServiceHours, dt: datetime) -> bool:
    """True when the service is open at the aware instant `dt` (intervals are [start, end))."""
    local = _local(hours, dt)
    now = local.time().replace(tzinfo=None)
    return any(start <= now < end for start, end in hours.intervals_on(local.date()))


def next_opening(hours: ServiceHours, dt: datetime) -> datetime:
    """The earliest instant >= `dt` at which the service is open, in the region's timezone.

    Returns `dt` itself (converted) when already open, so "open now?" and "open when?" agree.
    """
    local = _local(hours, dt)
    if is_open(hours, local):
        return local
    day = local.date()
    for offset in range(_SEARCH_DAYS):
        current = day + timedelta(days=offset)
        for start, _end in hours.intervals_on(current):
            candidate = datetime.combine(current, start, tzinfo=hours.timezone)
            if candidate >= local:
                return candidate
    raise ValueError(f"no opening within {_SEARCH_DAYS} days of {local.isoformat()}")


def add_working_days(start: date, n: int, calendar: WorkCalendar) -> date:
    """The n-th working day after `start` (n == 0 gives `start`).

    Statutory time limits (e.g. 受理后 N 个工作日) count from the day after acceptance; holidays
    are skipped and working weekends (调休上班) count.
    """
    if isinstance(start, datetime) or not isinstance(start, date):
        raise ValueError(f"start must be a date, got {type(start).__name__}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be an int >= 0, got {n!r}")
    if not isinstance(calendar, WorkCalendar):
        raise ValueError("calendar must be a WorkCalendar")
    current = start
    remaining = n
    idle_days = 0
    while remaining:
        current += timedelta(days=1)
        if calendar.is_working_day(current):
            remaining -= 1
            idle_days = 0
        else:
            idle_days += 1
            if idle_days > _SEARCH_DAYS:
                raise ValueError("calendar has no working day within a year")
    return current


def calendar_of(service_hours: Mapping[str, Any] | None, default_zone: str = DEFAULT_TIMEZONE, *,
                region: str = "") -> tuple[ZoneInfo, WorkCalendar]:
    """A region's time zone and working-day calendar from its service hours.

    Plain Monday-Friday in `default_zone` where it has none, or where they are invalid (logged:
    a deadline counted without holidays is better than no deadline at all).
    """
    if service_hours:
        try:
            hours = parse_service_hours(service_hours)
            return hours.timezone, hours.calendar
        except ValueError as exc:
            logger.error("region %s has invalid service hours, counting Monday-Friday: %s", region, exc)
    return ZoneInfo(default_zone), WorkCalendar()
