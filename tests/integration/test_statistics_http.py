"""The statistics JSON API, CSV and page through the real server, against figures from the event log.

Sessions are generated with the real records functions into the live server's database (see
test_statistics_data), then read over HTTP as an unscoped supervisor, a region-scoped supervisor,
a clerk and a booth.
"""

from __future__ import annotations

import csv
import io
from contextlib import closing
from typing import Any

import pytest
from sqlmodel import Session

from records.accounts import create_user
from records.db import make_engine
from records.models import Role
from tests.integration.test_statistics_data import (RANGE, SHANGHAI, Cast, assert_figures_match, expected, facts_from_events,
                                                    generate)
from tests.signaling_fixtures import PASSWORD, world
from tests.web_clients import booth_client, login

# Rounded on the wire: seconds to 0.1 s, shares to 4 decimals (JSON) or 0.1 % (CSV).
JSON_TOL = {"seconds_abs": 0.05 + 1e-9, "share_abs": 0.00005 + 1e-12}


@pytest.fixture(scope="module")
def stats_world(tmp_path_factory):
    """One server and one set of sessions for the read-only tests of this module."""
    from cloudseat.settings import Settings

    settings = Settings(data_dir=tmp_path_factory.mktemp("stats") / "var", public_base_url="http://127.0.0.1:8000")
    with world(settings) as w, pytest.MonkeyPatch.context() as monkeypatch:
        engine = make_engine(settings.database_url)
        regions = {"b1": "east", "b2": "east", "b3": "west"}
        cast = Cast({w.booth_ids[n]: r for n, r in regions.items()}, list(w.clerk_ids.values()),
                    sorted(set(w.item_by_skill.values()))[:3])
        generate(engine, cast, monkeypatch)
        with Session(engine) as session:
            create_user(session, username="supeast", password=PASSWORD, role=Role.SUPERVISOR,
                        display_name="东区监督", regions=["east"])
            session.commit()
        facts = facts_from_events(engine)
        engine.dispose()
        yield w, facts


def params(**kw: Any) -> dict[str, str]:
    return {"from": RANGE[0].isoformat(), "to": RANGE[1].isoformat(), **{k: str(v) for k, v in kw.items()}}


def check_json(body: dict[str, Any], want: dict[str, Any], where: str) -> None:
    rows = {(r["period"], r["group"]): r for r in body["rows"]}
    assert set(rows) == set(want["rows"]), f"{where}: row keys differ"
    for key, figures in want["rows"].items():
        assert_figures_match(rows[key], figures, where=f"{where} {key}", **JSON_TOL)
    groups = {r["group"]: r for r in body["groups"]}
    assert set(groups) == set(want["groups"])
    for key, figures in want["groups"].items():
        assert_figures_match(groups[key], figures, where=f"{where} group {key}", **JSON_TOL)
    assert_figures_match(body["total"], want["total"][None], where=f"{where} total", **JSON_TOL)


@pytest.mark.parametrize(("period", "by"), [("day", "none"), ("week", "booth"), ("month", "clerk"),
                                            ("day", "item"), ("week", "region")])
def test_json_matches_the_event_log(stats_world, period, by):
    w, facts = stats_world
    with closing(login(w.url, "sup", PASSWORD)) as client:
        response = client.get("/api/supervise/stats", params=params(period=period, by=by))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["query"]["period"] == period and body["query"]["by"] == by and body["query"]["regions"] is None
    check_json(body, expected(facts, start=RANGE[0], end=RANGE[1], period=period, by=by), f"{period}/{by}")
    assert body["total"]["abandoned"] > 0 and body["total"]["cases_refused"] > 0


def test_threshold_parameter_changes_the_service_level(stats_world):
    w, facts = stats_world
    with closing(login(w.url, "sup", PASSWORD)) as client:
        body = client.get("/api/supervise/stats", params=params(sl_threshold_s=8)).json()
    check_json(body, expected(facts, start=RANGE[0], end=RANGE[1], threshold_s=8), "8 s")
    assert body["query"]["sl_threshold_s"] == "8"


def test_csv_has_a_bom_and_the_same_numbers(stats_world):
    w, facts = stats_world
    with closing(login(w.url, "sup", PASSWORD)) as client:
        response = client.get("/api/supervise/stats.csv", params=params(period="week", by="booth"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="cloudseat-stats-2026-02-27-2026-03-10-week-booth.csv"' in response.headers["content-disposition"]
    assert response.content.startswith(b"\xef\xbb\xbf")
    check_csv(response.content, expected(facts, start=RANGE[0], end=RANGE[1], period="week", by="booth"))


def check_csv(content: bytes, want: dict[str, Any]) -> None:
    """The CSV's rows (and its total line) equal the independent figures."""
    lines = list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))
    assert lines, "empty CSV"
    assert "呼入 Offered" in lines[0] and "服务水平% Service level %" in lines[0]
    *rows, total = lines
    assert total["时段 Period"] == "合计"
    got = {(r["时段 Period"], r["分组编码 Group key"] or None): r for r in rows}
    assert set(got) == set(want["rows"])
    for key, figures in [*want["rows"].items(), (("合计", None), want["total"][None])]:
        line = got.get(key, total)
        where = f"CSV {key}"
        for column, name in (("呼入 Offered", "offered"), ("接通 Answered", "answered"),
                             ("放弃 Abandoned", "abandoned"), ("受理 Accepted", "cases_accepted"),
                             ("不予受理 Refused", "cases_refused"), ("补正 Supplement", "cases_supplement"),
                             ("评价数 Rated", "rated"), ("不满意数 Dissatisfied", "dissatisfied"),
                             ("使用晓屋数 Booths used", "booths_active")):
            assert int(line[column]) == figures[name], f"{where}: {column}"
        for column, name, scale, tol in (("服务水平% Service level %", "service_level", 100, 0.05),
                                         ("平均等待秒 Avg wait s", "wait_avg_s", 1, 0.05),
                                         ("90%等待秒 P90 wait s", "wait_p90_s", 1, 0.05),
                                         ("平均通话时长秒 Avg handle s", "handle_avg_s", 1, 0.05),
                                         ("满意率% Satisfied %", "satisfied_share", 100, 0.05),
                                         ("晓屋占用秒 Booth busy s", "booth_busy_s", 1, 0.05)):
            value = figures[name]
            if value is None:
                assert line[column] == "", f"{where}: {column}"
            else:
                assert abs(float(line[column]) - value * scale) <= tol + 1e-9, f"{where}: {column}"
        assert int(line["非常满意 Very satisfied"]) == figures["rating_counts"][5]
        assert int(line["非常不满意 Very dissatisfied"]) == figures["rating_counts"][1]


def test_a_region_scoped_supervisor_sees_only_their_regions(stats_world):
    w, facts = stats_world
    with closing(login(w.url, "supeast", PASSWORD)) as client:
        body = client.get("/api/supervise/stats", params=params(by="region")).json()
        csv_body = client.get("/api/supervise/stats.csv", params=params(by="region")).content
        page = client.get("/supervise/stats", headers={"accept": "text/html"})
    assert body["query"]["regions"] == ["east"]
    assert {r["group"] for r in body["rows"]} == {"east"}
    check_json(body, expected(facts, start=RANGE[0], end=RANGE[1], by="region", regions={"east"}), "scoped")
    west_calls = sum(1 for c in facts.calls.values()
                     if c.region == "west" and RANGE[0] <= c.queued.astimezone(SHANGHAI).date() <= RANGE[1])
    assert west_calls > 0  # there was something to hide
    *lines, _total = csv.DictReader(io.StringIO(csv_body.decode("utf-8-sig")))
    assert {line["分组编码 Group key"] for line in lines} == {"east"}
    assert page.status_code == 200 and "范围：" in page.text and "全部镇街" not in page.text


def test_clerks_and_booths_are_refused(stats_world):
    w, _ = stats_world
    with closing(login(w.url, "c1", PASSWORD)) as clerk, closing(booth_client(w.url, w.tokens["b1"])) as booth:
        for client in (clerk, booth):
            for path in ("/api/supervise/stats", "/api/supervise/stats.csv"):
                response = client.get(path)
                assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"


BAD_QUERIES = [
    ({"from": "2026-3-1"}, "invalid_date"),
    ({"from": "2026-02-30"}, "invalid_date"),
    ({"to": "yesterday"}, "invalid_date"),
    ({"from": "2026-03-10", "to": "2026-03-01"}, "invalid_range"),
    ({"from": "2024-01-01", "to": "2026-03-01"}, "range_too_long"),
    ({"period": "year"}, "invalid_period"),
    ({"by": "colour"}, "invalid_group"),
    ({"sl_threshold_s": "0"}, "invalid_threshold"),
    ({"sl_threshold_s": "601"}, "invalid_threshold"),
    ({"sl_threshold_s": "2.5"}, "invalid_threshold"),
]


def test_bad_parameters_get_400_with_a_code(app_settings):
    with world(app_settings) as w, closing(login(w.url, "sup", PASSWORD)) as client:
        for query, code in BAD_QUERIES:
            for path in ("/api/supervise/stats", "/api/supervise/stats.csv"):
                response = client.get(path, params=query)
                assert response.status_code == 400, (query, path, response.text)
                assert response.json()["error"]["code"] == code, query
            page = client.get("/supervise/stats", params=query, headers={"accept": "text/html"})
            assert page.status_code == 400, query
            assert f'data-code="{code}"' in page.text and 'id="stats-filters"' in page.text


def test_defaults_are_the_last_seven_local_days(app_settings):
    from datetime import date, datetime, timedelta, timezone
    from zoneinfo import ZoneInfo

    with world(app_settings) as w, closing(login(w.url, "sup", PASSWORD)) as client:
        body = client.get("/api/supervise/stats").json()
    today = datetime.now(timezone.utc).astimezone(ZoneInfo(app_settings.timezone)).date()
    assert body["query"]["to"] in {today.isoformat(), (today + timedelta(days=1)).isoformat()}  # midnight race
    to = date.fromisoformat(body["query"]["to"])
    assert body["query"]["from"] == (to - timedelta(days=6)).isoformat()
    assert [p["period"] for p in body["periods"]] == [(to - timedelta(days=6 - i)).isoformat() for i in range(7)]
    assert body["total"]["offered"] == 0 and body["rows"] == []
