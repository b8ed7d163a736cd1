"""The pure parts of records.statistics: percentile, period labels, range bounds."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from records.statistics import Period, StatsQuery, nearest_rank, period_of, periods_between


@pytest.mark.parametrize(("values", "p90"), [
    ([], None),
    ([7.0], 7.0),
    ([3.0, 1.0], 3.0),  # ceil(1.8) = 2nd smallest
    (list(range(1, 11)), 9),  # ceil(9.0) = 9th
    (list(range(1, 12)), 10),  # ceil(9.9) = 10th
    (list(range(1, 21)), 18),
])
def test_p90_is_the_nearest_rank(values, p90):
    assert nearest_rank(values) == p90


def test_periods_are_labelled_by_local_day_iso_week_and_month():
    sunday, monday = date(2026, 3, 1), date(2026, 3, 2)
    assert period_of(monday, Period.DAY) == ("2026-03-02", monday)
    assert period_of(sunday, Period.WEEK) == ("2026-W09", date(2026, 2, 23))
    assert period_of(monday, Period.WEEK) == ("2026-W10", monday)
    assert period_of(date(2027, 1, 1), Period.WEEK) == ("2026-W53", date(2026, 12, 28))  # ISO year
    assert period_of(date(2026, 2, 28), Period.MONTH) == ("2026-02", date(2026, 2, 1))


def test_periods_between_lists_every_period_once():
    assert [p for p, _ in periods_between(date(2026, 2, 27), date(2026, 3, 9), Period.WEEK)] == [
        "2026-W09", "2026-W10", "2026-W11"]
    assert len(periods_between(date(2026, 1, 1), date(2026, 12, 31), Period.DAY)) == 365
    assert periods_between(date(2026, 1, 31), date(2026, 2, 1), Period.MONTH)[-1] == ("2026-02", date(2026, 2, 1))


def test_utc_bounds_follow_the_local_midnight():
    q = StatsQuery(start=date(2026, 3, 2), end=date(2026, 3, 2), tz="Asia/Shanghai")
    assert q.utc_bounds() == (datetime(2026, 3, 1, 16, 0), datetime(2026, 3, 2, 16, 0))


def test_query_normalises_its_enums_and_accepts_a_full_year():
    q = StatsQuery(start=date(2024, 1, 1), end=date(2024, 12, 31), period="week", by="clerk")  # type: ignore[arg-type]
    assert q.period is Period.WEEK and q.by.value == "clerk"
    with pytest.raises(ValueError):
        StatsQuery(start=date(2026, 1, 1), end=date(2026, 1, 2), by="colour")  # type: ignore[arg-type]
