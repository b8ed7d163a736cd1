"""The deadline colours of the alert sweep on the real 2026 calendar (around National Day).

dongcheng's 2026 calendar (records/data/regions.json): 25-27 Sep and 1-7 Oct are holidays,
Sunday 20 Sep and Saturday 10 Oct are adjusted working days (调休上班).
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from records.alerts import DEFAULT_RULES, AlertRules, validate_rule_values
from records.errors import ValidationError
from records.models import AlertKind, Region
from signaling.service_hours import WorkCalendar, parse_calendar
from signaling.supervision_sweep import deadline_colour, region_calendar, working_days_left

REGIONS = Path(__file__).resolve().parents[2] / "records" / "data" / "regions.json"


@pytest.fixture(scope="module")
def calendar() -> WorkCalendar:
    region = next(r for r in json.loads(REGIONS.read_text("utf-8"))["regions"] if r["code"] == "dongcheng")
    return parse_calendar(region["service_hours"])


def d(text: str) -> date:
    return date.fromisoformat(text)


def test_working_days_left_skip_holidays_and_count_adjusted_weekends(calendar):
    assert working_days_left(d("2026-10-09"), d("2026-10-09"), calendar) == 0
    assert working_days_left(d("2026-09-30"), d("2026-10-09"), calendar) == 2  # 8, 9 Oct; the holiday week is skipped
    assert working_days_left(d("2026-10-03"), d("2026-10-09"), calendar) == 2
    assert working_days_left(d("2026-09-29"), d("2026-10-09"), calendar) == 3
    # Saturday 10 Oct works (调休), Sunday 11 Oct does not.
    assert working_days_left(d("2026-10-08"), d("2026-10-12"), calendar) == 3
    assert working_days_left(d("2026-10-09"), d("2026-10-12"), calendar) == 2
    assert working_days_left(d("2026-10-13"), d("2026-10-12"), calendar) == 0  # past


@pytest.mark.parametrize(("today", "deadline", "expected"), [
    ("2026-09-29", "2026-10-09", None),  # three working days left
    ("2026-09-30", "2026-10-09", AlertKind.YELLOW),  # two left: 8 and 9 Oct
    ("2026-10-05", "2026-10-09", AlertKind.YELLOW),  # in the holiday
    ("2026-10-09", "2026-10-09", AlertKind.YELLOW),  # the deadline day itself
    ("2026-10-10", "2026-10-09", AlertKind.RED),  # the day after
    ("2026-10-08", "2026-10-12", None),  # 9, 10 (adjusted Saturday), 12: three
    ("2026-10-09", "2026-10-12", AlertKind.YELLOW),
])
def test_deadline_colour_with_default_rules(calendar, today, deadline, expected):
    assert deadline_colour(d(today), d(deadline), calendar, DEFAULT_RULES) is expected


def test_deadline_colour_follows_rules(calendar):
    no_red = AlertRules(yellow_days=2, red_enabled=False, blue_max_level=2)
    assert deadline_colour(d("2026-10-10"), d("2026-10-09"), calendar, no_red) is None
    wide = AlertRules(yellow_days=4, red_enabled=True, blue_max_level=2)
    assert deadline_colour(d("2026-09-28"), d("2026-10-09"), calendar, wide) is AlertKind.YELLOW  # 29, 30, 8, 9
    none = AlertRules(yellow_days=0, red_enabled=True, blue_max_level=2)
    assert deadline_colour(d("2026-10-08"), d("2026-10-09"), calendar, none) is None
    assert deadline_colour(d("2026-10-09"), d("2026-10-09"), calendar, none) is AlertKind.YELLOW


def test_region_calendar_falls_back_to_monday_to_friday():
    zone, cal = region_calendar(Region(code="x", name_zh="x", name_en="x", service_hours={"weekdays": "bad"}))
    assert str(zone) == "Asia/Shanghai" and cal == WorkCalendar()
    assert region_calendar(None)[1] == WorkCalendar()


@pytest.mark.parametrize("values", [
    {"yellow_days": -1, "red_enabled": True, "blue_max_level": 2},
    {"yellow_days": 31, "red_enabled": True, "blue_max_level": 2},
    {"yellow_days": True, "red_enabled": True, "blue_max_level": 2},
    {"yellow_days": 2, "red_enabled": "yes", "blue_max_level": 2},
    {"yellow_days": 2, "red_enabled": True, "blue_max_level": 5},
    {"yellow_days": 2, "red_enabled": True, "blue_max_level": 2, "green": 1},
    {"yellow_days": 2, "red_enabled": True},
])
def test_global_rules_are_validated(values):
    with pytest.raises(ValidationError) as caught:
        validate_rule_values(values, partial=False)
    assert caught.value.code == "invalid_rule"


def test_override_may_leave_fields_to_the_global_rules():
    assert validate_rule_values({"yellow_days": 5}, partial=True) == {
        "yellow_days": 5, "red_enabled": None, "blue_max_level": None}


async def test_shutdown_waits_for_a_running_sweep_instead_of_abandoning_its_thread(monkeypatch) -> None:
    """A cancelled to_thread keeps running with the app's engine after the app disposed it."""
    import asyncio
    import threading
    from types import SimpleNamespace

    from signaling import supervision_sweep

    entered, release = threading.Event(), threading.Event()
    finished: list[bool] = []

    def slow_sweep(engine: object, now: object) -> list[dict[str, object]]:
        entered.set()
        release.wait(10)
        finished.append(True)
        return []

    monkeypatch.setattr(supervision_sweep, "run_sweep", slow_sweep)
    state = SimpleNamespace(engine=None, switchboard=None)
    sweeps = supervision_sweep.start_alert_sweeps(state, interval_s=3600)
    await asyncio.to_thread(entered.wait, 10)  # the first sweep is inside its thread now
    stopping = asyncio.create_task(supervision_sweep.stop_alert_sweeps(sweeps))
    done, _ = await asyncio.wait({stopping}, timeout=0.5)  # a cancelling stop returns within a loop turn or two
    assert not done, "shutdown went on while the sweep's thread still held the database"
    release.set()
    await asyncio.wait_for(stopping, 10)
    assert finished == [True] and sweeps.task.done() and not sweeps.task.cancelled()
