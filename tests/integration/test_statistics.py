"""records.statistics against figures recomputed from the raw event log, on SQLite and PostgreSQL.

The sessions come from the real records functions (see test_statistics_data): several days across
two ISO weeks and two months, four booths in three regions, three clerks, three items; calls
abandoned in the queue and during an offer, offers that time out, transfers, a call still waiting,
calls around local midnight; cases accepted, refused, sent for 补正 and moved on later, one without
a call; every rating level.
"""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session

from records.errors import ValidationError
from records.models import ServiceItem
from records.statistics import Dimension, Period, StatsQuery, StatsRow, compute_statistics
from tests.integration.test_statistics_data import (DAYS, OUTSIDE_DAY, RANGE, SHANGHAI, Cast, assert_figures_match,
                                                    expected, facts_from_events, generate)
from tests.records_factories import add_booth, add_item, add_region, add_user


@pytest.fixture
def generated(records_engine, monkeypatch):
    with Session(records_engine, expire_on_commit=False) as session:
        for code in ("east", "west", "north"):
            add_region(session, code)
        booths = {add_booth(session, r, name=f"晓屋-{i}").id: r
                  for i, r in enumerate(("east", "east", "west", "north"), start=1)}
        clerks = [add_user(session, username=f"clerk{i}").id for i in range(1, 4)]
        for code in ("sb01", "yb02", "hj03"):
            add_item(session, code)
        session.commit()
    cast = Cast(booths, clerks, ["sb01", "yb02", "hj03"])
    made = generate(records_engine, cast, monkeypatch)
    return records_engine, cast, made, facts_from_events(records_engine)


def compute(engine, **kw) -> object:
    with Session(engine) as session:
        return compute_statistics(session, StatsQuery(start=RANGE[0], end=RANGE[1], **kw))


def as_table(rows: list[StatsRow], key) -> dict:
    return {key(r): r.figures.as_dict() for r in rows}


def check_report(report, want, where: str) -> None:
    rows = as_table(report.rows, lambda r: (r.period, r.group))
    assert set(rows) == set(want["rows"]), f"{where}: row keys differ"
    for key, figures in want["rows"].items():
        assert_figures_match(rows[key], figures, where=f"{where} row {key}")
    groups = as_table(report.groups, lambda r: r.group)
    assert set(groups) == set(want["groups"]), f"{where}: group keys differ"
    for key, figures in want["groups"].items():
        assert_figures_match(groups[key], figures, where=f"{where} group {key}")
    periods = as_table(report.periods, lambda r: r.period)
    for key, figures in want["periods"].items():
        assert_figures_match(periods[key], figures, where=f"{where} period {key}")
    assert set(periods) >= set(want["periods"])
    assert_figures_match(report.total.figures.as_dict(), want["total"][None], where=f"{where} total")


def test_the_generated_sessions_are_varied(generated):
    _, _, made, facts = generated
    assert {"answered", "abandon_queue", "abandon_offer", "transfer", "requeued", "waiting"} <= set(made.outcomes)
    assert {c.rating for c in facts.calls.values()} - {None} == {1, 2, 3, 4, 5}
    assert {c.status for c in facts.cases.values()} == {"accepted", "refused", "needs_supplement", "completed"}
    waits = [(c.answered - c.queued).total_seconds() for c in facts.calls.values() if c.answered]
    assert min(waits) <= 20 < max(waits), "the 20 s threshold must split the answered calls"


@pytest.mark.parametrize("period", list(Period))
def test_every_grouping_matches_the_event_log(generated, period):
    engine, _, _, facts = generated
    for by in Dimension:
        report = compute(engine, period=period, by=by)
        want = expected(facts, start=RANGE[0], end=RANGE[1], period=period.value, by=by.value)
        check_report(report, want, f"{period.value}/{by.value}")
        assert report.total.figures.abandoned > 0 and report.total.figures.cases_refused > 0


def test_periods_cover_the_range_in_order_even_when_empty(generated):
    engine, *_ = generated
    days = compute(engine).periods
    assert [r.period for r in days][:3] == ["2026-02-27", "2026-02-28", "2026-03-01"]
    assert len(days) == (RANGE[1] - RANGE[0]).days + 1
    assert days[1].figures.offered == 0 and days[1].figures.service_level is None
    weeks = compute(engine, period=Period.WEEK).periods
    assert [(r.period, r.period_start) for r in weeks] == [
        ("2026-W09", date(2026, 2, 23)), ("2026-W10", date(2026, 3, 2)), ("2026-W11", date(2026, 3, 9))]
    assert [r.period for r in compute(engine, period=Period.MONTH).periods] == ["2026-02", "2026-03"]


def test_a_narrow_range_counts_only_its_days(generated):
    engine, _, _, facts = generated
    with Session(engine) as session:
        report = compute_statistics(session, StatsQuery(start=DAYS[2], end=DAYS[2], by=Dimension.CLERK))
    check_report(report, expected(facts, start=DAYS[2], end=DAYS[2], by="clerk"), "one day")
    with Session(engine) as session:
        outside = compute_statistics(session, StatsQuery(start=OUTSIDE_DAY, end=OUTSIDE_DAY))
    assert outside.total.figures.offered == sum(
        1 for c in facts.calls.values() if c.queued.astimezone(SHANGHAI).date() == OUTSIDE_DAY)
    assert outside.total.figures.offered > 0


def test_scope_limits_every_figure_to_the_regions(generated):
    engine, _, _, facts = generated
    scoped = compute(engine, by=Dimension.REGION, regions=frozenset({"east", "north"}))
    check_report(scoped, expected(facts, start=RANGE[0], end=RANGE[1], by="region", regions={"east", "north"}),
                 "scoped")
    assert {r.group for r in scoped.rows} == {"east", "north"}
    empty = compute(engine, regions=frozenset())
    assert empty.rows == [] and empty.total.figures.offered == 0 and empty.total.figures.cases_accepted == 0


def test_threshold_and_time_zone_move_the_figures(generated):
    engine, _, _, facts = generated
    strict = compute(engine, sl_threshold_s=5)
    check_report(strict, expected(facts, start=RANGE[0], end=RANGE[1], threshold_s=5), "5 s threshold")
    assert strict.total.figures.answered_within < compute(engine).total.figures.answered_within
    # Day boundaries follow the zone passed in: Shanghai's midnight is 16:00 UTC.
    utc = compute(engine, tz="UTC")
    check_report(utc, expected(facts, start=RANGE[0], end=RANGE[1], tz=ZoneInfo("UTC")), "UTC days")
    shanghai_days = {r.period: r.figures.offered for r in compute(engine).periods}
    utc_days = {r.period: r.figures.offered for r in utc.periods}
    assert shanghai_days != utc_days


def test_labels_name_booths_clerks_items_and_regions(generated):
    engine, cast, _, _ = generated
    booths = {r.group: r.label_zh for r in compute(engine, by=Dimension.BOOTH).groups}
    assert {booths[str(b)] for b in cast.booths} == {"晓屋-1", "晓屋-2", "晓屋-3", "晓屋-4"}
    assert booths[None] == "无晓屋"  # the walk-in case without a booth
    clerks = {r.group: (r.label_zh, r.label_en) for r in compute(engine, by=Dimension.CLERK).groups}
    assert clerks[None] == ("未接通", "Not served")
    assert {clerks[str(c)][0] for c in cast.clerks} == {"clerk1", "clerk2", "clerk3"}
    with Session(engine) as session:
        name = session.get(ServiceItem, "sb01").name_zh
    items = {r.group: r.label_zh for r in compute(engine, by=Dimension.ITEM).groups}
    assert items["sb01"] == name
    regions = {r.group: r.label_en for r in compute(engine, by=Dimension.REGION).groups}
    assert regions == {"east": "east street", "west": "west street", "north": "north street"}


@pytest.mark.parametrize(("kw", "code"), [
    ({"start": date(2026, 3, 2), "end": date(2026, 3, 1)}, "invalid_range"),
    ({"start": date(2025, 1, 1), "end": date(2026, 3, 1)}, "range_too_long"),
    ({"start": date(2026, 3, 1), "end": date(2026, 3, 1), "sl_threshold_s": 0}, "invalid_threshold"),
    ({"start": date(2026, 3, 1), "end": date(2026, 3, 1), "tz": "Mars/Base"}, "invalid_timezone"),
])
def test_bad_queries_are_refused_with_a_code(kw, code):
    with pytest.raises(ValidationError) as err:
        StatsQuery(**kw)
    assert err.value.code == code

