"""Service hours and working-day deadlines, on the real 2025 National Day calendar.

2025: holiday Wed 1 Oct to Wed 8 Oct; working weekends (调休上班) Sun 28 Sep and Sat 11 Oct.
The configuration has the shape `records` stores per region (records/data/regions.json).
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from signaling.service_hours import (
    WorkCalendar,
    add_working_days,
    is_open,
    next_opening,
    parse_calendar,
    parse_service_hours,
)

SH = ZoneInfo("Asia/Shanghai")
NATIONAL_DAY = {
    "holidays": [f"2025-10-0{d}" for d in range(1, 9)],
    "working_weekends": ["2025-09-28", "2025-10-11"],
}


def span(start: str, end: str) -> dict[str, str]:
    return {"start": start, "end": end}


def config(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "timezone": "Asia/Shanghai",
        "weekdays": [span("09:00", "12:00"), span("13:30", "17:00")],
        "saturday": [span("09:00", "12:00")],
        "lunch_service": False,
        **NATIONAL_DAY,
    }
    base.update(changes)
    return base


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH)


HOURS = parse_service_hours(config())


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("2025-09-24 08:59:59", False),  # Wednesday, before opening
        ("2025-09-24 09:00", True),
        ("2025-09-24 11:59:59", True),
        ("2025-09-24 12:00", False),  # lunch break
        ("2025-09-24 13:29", False),
        ("2025-09-24 13:30", True),
        ("2025-09-24 17:00", False),  # closing time is exclusive
        ("2025-09-27 10:00", True),  # Saturday morning
        ("2025-09-27 14:00", False),  # Saturday afternoon
        ("2025-09-21 10:00", False),  # Sunday
        ("2025-09-28 14:00", True),  # adjusted working Sunday keeps weekday hours
        ("2025-10-01 10:00", False),  # holiday on a Wednesday
        ("2025-10-04 10:00", False),  # holiday Saturday: no Saturday morning either
        ("2025-10-11 15:00", True),  # adjusted working Saturday: full weekday hours
    ],
)
def test_is_open(when: str, expected: bool) -> None:
    assert is_open(HOURS, at(when)) is expected


def test_lunch_service_serves_the_gap() -> None:
    continuous = parse_service_hours(config(lunch_service=True))  # 午间不断档
    assert is_open(continuous, at("2025-09-24 12:30"))
    assert not is_open(continuous, at("2025-09-24 17:00"))
    assert not is_open(HOURS, at("2025-09-24 12:30"))
    assert next_opening(continuous, at("2025-09-24 07:00")) == at("2025-09-24 09:00")


def test_minimal_config_defaults() -> None:
    hours = parse_service_hours({"weekdays": [span("08:30", "17:30")]})
    assert hours.timezone == SH
    assert is_open(hours, at("2025-09-24 12:30"))
    assert not is_open(hours, at("2025-09-27 10:00"))  # no Saturday
    assert next_opening(hours, at("2025-09-26 18:00")) == at("2025-09-29 08:30")


def test_other_timezones_are_converted() -> None:
    utc_instant = datetime(2025, 9, 24, 1, 30, tzinfo=timezone.utc)  # 09:30 in Shanghai
    assert is_open(HOURS, utc_instant)
    assert not is_open(HOURS, datetime(2025, 9, 24, 0, 30, tzinfo=timezone.utc))
    with pytest.raises(ValueError, match="timezone-aware"):
        is_open(HOURS, datetime(2025, 9, 24, 10, 0))


def test_next_opening() -> None:
    assert next_opening(HOURS, at("2025-09-24 10:00")) == at("2025-09-24 10:00")  # open: now
    assert next_opening(HOURS, at("2025-09-24 12:10")) == at("2025-09-24 13:30")  # after lunch
    assert next_opening(HOURS, at("2025-09-24 07:00")) == at("2025-09-24 09:00")
    assert next_opening(HOURS, at("2025-09-26 17:00")) == at("2025-09-27 09:00")  # Friday -> Saturday
    assert next_opening(HOURS, at("2025-09-27 12:00")) == at("2025-09-28 09:00")  # -> adjusted Sunday


def test_next_opening_across_the_holiday() -> None:
    # Tuesday 30 Sep after closing: 1-8 Oct closed, Thursday 9 Oct opens
    found = next_opening(HOURS, at("2025-09-30 17:30"))
    assert found == at("2025-10-09 09:00")
    assert found.tzinfo == SH
    from_utc = next_opening(HOURS, datetime(2025, 10, 3, 0, 0, tzinfo=timezone.utc))
    assert from_utc == at("2025-10-09 09:00")


def test_timezone_is_configurable() -> None:
    urumqi = parse_service_hours(config(timezone="Asia/Urumqi"))  # UTC+6
    assert not is_open(urumqi, at("2025-09-24 09:30"))  # 07:30 in Urumqi
    assert next_opening(urumqi, at("2025-09-24 09:30")) == datetime(2025, 9, 24, 9, 0, tzinfo=ZoneInfo("Asia/Urumqi"))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "weekdays"),
        (config(weekdays=[]), "weekdays"),
        (config(weekdays=[span("17:00", "09:00")]), "not before end"),
        (config(weekdays=[span("09:00", "12:00"), span("11:00", "17:00")]), "overlaps"),
        (config(weekdays=[span("9am", "12:00")]), r"weekdays\[0\].start"),
        (config(weekdays=[span("09:00", "12:00:30")]), r"weekdays\[0\].end"),
        (config(weekdays=[{"start": "09:00"}]), "start and end"),
        (config(weekdays={"start": "09:00", "end": "17:00"}), "expected a list"),
        (config(saturday="mornings"), "saturday"),
        (config(lunch_service="yes"), "lunch_service"),
        (config(timezone="Mars/Olympus"), "unknown timezone"),
        (config(holidays=["2025-13-01"]), r"holidays\[0\]"),
        (config(holidays="2025-10-01"), "holidays"),
        (config(working_weekends=["2025-10-04"], holidays=["2025-10-04"]), "both holiday and working weekend"),
        (config(working_weekends=["2025-10-09"]), "Saturdays or Sundays"),
        (config(opening="09:00"), "unknown keys"),
        ([], "expected an object"),
    ],
)
def test_parse_rejects_bad_input(data: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_service_hours(data)


# -- working days --

CALENDAR = parse_calendar(NATIONAL_DAY)


def test_working_day_calendar() -> None:
    assert CALENDAR.is_working_day(date(2025, 9, 26))  # Friday
    assert not CALENDAR.is_working_day(date(2025, 9, 27))  # plain Saturday
    assert CALENDAR.is_working_day(date(2025, 9, 28))  # 调休 Sunday
    assert not CALENDAR.is_working_day(date(2025, 10, 6))  # holiday Monday


def test_add_working_days_plain_week() -> None:
    assert add_working_days(date(2025, 9, 15), 0, CALENDAR) == date(2025, 9, 15)
    assert add_working_days(date(2025, 9, 15), 5, CALENDAR) == date(2025, 9, 22)  # Mon + 5 = next Mon
    assert add_working_days(date(2025, 9, 19), 1, CALENDAR) == date(2025, 9, 22)  # Fri + 1 skips weekend


def test_add_working_days_across_national_day() -> None:
    # Accepted Fri 26 Sep: day 1 is the adjusted Sunday 28, 29 and 30 follow, then Oct 9, 10, 11 (调休 Sat)
    assert add_working_days(date(2025, 9, 26), 3, CALENDAR) == date(2025, 9, 30)
    assert add_working_days(date(2025, 9, 26), 4, CALENDAR) == date(2025, 10, 9)
    assert add_working_days(date(2025, 9, 26), 6, CALENDAR) == date(2025, 10, 11)
    assert add_working_days(date(2025, 9, 26), 7, CALENDAR) == date(2025, 10, 13)
    # without the calendar the same count lands much earlier
    assert add_working_days(date(2025, 9, 26), 4, WorkCalendar()) == date(2025, 10, 2)


def test_add_working_days_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="n must be"):
        add_working_days(date(2025, 9, 26), -1, CALENDAR)
    with pytest.raises(ValueError, match="start must be a date"):
        add_working_days(datetime(2025, 9, 26, 10, 0), 1, CALENDAR)
    start = date(2025, 1, 1).toordinal()
    every_day_off = WorkCalendar(holidays=frozenset(date.fromordinal(start + i) for i in range(800)))
    with pytest.raises(ValueError, match="no working day"):
        add_working_days(date(2025, 1, 1), 1, every_day_off)
