"""The booth HTTP API on a live server: catalogue, slots, ratings, complaints.

Calls are put into the records directly (create -> answered -> ended), so these tests check the
API's validation, its stable error codes and that a booth never reaches another booth's calls.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, select

from booth.api import opening_slots
from records.calls import create_call, mark_abandoned, mark_answered, mark_ended
from records.db import make_engine
from records.models import Alert, AlertKind, Event, Rating
from tests.signaling_fixtures import World, world
from tests.web_clients import anonymous_client, booth_client


@pytest.fixture
def live(app_settings) -> Iterator[World]:
    with world(app_settings) as w:
        yield w


def make_call(w: World, booth: str, *, end: str | None = "ended") -> str:
    """A call of `booth` for SB-001: `ended` (served), `active`, `abandoned` or None (queued)."""
    engine = make_engine(w.settings.database_url)
    try:
        with Session(engine) as session:
            call = create_call(session, booth_id=w.booth_ids[booth], item_code="SB-001")
            session.flush()
            if end == "abandoned":
                mark_abandoned(session, call.id, reason="cancelled")
            elif end in ("ended", "active"):
                mark_answered(session, call.id, clerk_id=w.clerk_ids["c1"])
                if end == "ended":
                    mark_ended(session, call.id, "hangup_clerk")
            session.commit()
            return call.id
    finally:
        engine.dispose()


def rows(w: World, model: Any) -> list[Any]:
    engine = make_engine(w.settings.database_url)
    try:
        with Session(engine) as session:
            return list(session.exec(select(model)))
    finally:
        engine.dispose()


def error_code(response: Any) -> str:
    return response.json()["error"]["code"]


# --------------------------------------------------------------------------- catalogue


def test_catalog_lists_categories_items_materials_and_initials(live):
    with closing(booth_client(live.url, live.tokens["b1"])) as client:
        response = client.get("/api/booth/catalog")
    assert response.status_code == 200
    body = response.json()
    codes = [c["code"] for c in body["categories"]]
    assert codes[0] == "social_insurance" and "medical_insurance" in codes
    assert all(c["icon"] and c["count"] > 0 for c in body["categories"])
    card = next(i for i in body["items"] if i["code"] == "SB-004")
    assert card["name_zh"] == "社会保障卡补领换领" and card["initials"] == "shbzkblhl"
    assert card["materials"] and any(m["mandatory"] for m in card["materials"])
    assert {"time_limit_days", "name_en", "category"} <= set(card)


def test_catalog_is_for_booths_only(live):
    with closing(anonymous_client(live.url)) as client:
        assert client.get("/api/booth/catalog").status_code == 401
    with closing(booth_client(live.url, "cst_not-a-token")) as client:
        assert client.get("/api/booth/catalog").status_code == 401


# --------------------------------------------------------------------------- slots


def test_slots_cover_whole_half_hours_of_the_next_opening_days():
    hours = {"timezone": "Asia/Shanghai", "weekdays": [{"start": "09:00", "end": "12:00"},
                                                      {"start": "13:30", "end": "17:15"}],
             "saturday": [], "lunch_service": False, "holidays": ["2025-03-04"], "working_weekends": []}
    friday_evening = datetime(2025, 2, 28, 18, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    days = opening_slots(hours, friday_evening)
    # Sat/Sun closed, Tue a holiday: Mon, Wed, Thu.
    assert [d["date"] for d in days] == ["2025-03-03", "2025-03-05", "2025-03-06"]
    monday = days[0]["slots"]
    assert monday[0] == "2025-03-03T09:00:00+08:00" and "2025-03-03T11:30:00+08:00" in monday
    assert "2025-03-03T12:00:00+08:00" not in monday and "2025-03-03T13:30:00+08:00" in monday
    assert monday[-1] == "2025-03-03T16:30:00+08:00"  # 16:45 + 30 min would pass 17:15
    assert len(monday) == 6 + 7


def test_slots_start_after_now_and_fall_back_to_office_hours_without_hours():
    now = datetime(2025, 3, 3, 10, 10, tzinfo=ZoneInfo("Asia/Shanghai"))
    days = opening_slots({}, now)
    assert days[0]["slots"][0] == "2025-03-03T10:30:00+08:00"
    assert len(days) == 3


def test_slots_api(live):
    with closing(booth_client(live.url, live.tokens["b1"])) as client:
        ok = client.get("/api/booth/slots", params={"item_code": "SB-001"})
        assert ok.status_code == 200 and ok.json()["slot_minutes"] == 30 and len(ok.json()["days"]) == 3
        assert error_code(client.get("/api/booth/slots", params={"item_code": "NOPE-1"})) == "unknown_item"
        bad = client.get("/api/booth/slots", params={"item_code": "a b"})
        assert bad.status_code == 400 and error_code(bad) == "invalid"


# --------------------------------------------------------------------------- ratings


def test_rating_is_stored_once_and_a_bad_one_raises_a_blue_alert(live):
    good, bad = make_call(live, "b1"), make_call(live, "b1")
    with closing(booth_client(live.url, live.tokens["b1"])) as client:
        first = client.post("/api/booth/ratings", json={"call_id": good, "level": 5, "comment": " 很好 "})
        assert first.status_code == 201 and first.json()["alert_id"] is None
        again = client.post("/api/booth/ratings", json={"call_id": good, "level": 1})
        assert again.status_code == 409 and error_code(again) == "already_rated"
        low = client.post("/api/booth/ratings", json={"call_id": bad, "level": 2, "comment": "听不清"})
        assert low.status_code == 201 and low.json()["alert_id"] is not None
    ratings = {r.session_id: r for r in rows(live, Rating)}
    assert ratings[good].level == 5 and ratings[good].comment == "很好"
    assert ratings[bad].level == 2
    [alert] = rows(live, Alert)
    assert alert.kind is AlertKind.BLUE and alert.session_id == bad and alert.booth_id == live.booth_ids["b1"]
    assert "不满意" in alert.message and "听不清" in alert.message


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"level": 3}, 400, "invalid"),
    ({"call_id": "CALL", "level": 3}, 400, "invalid"),
    ({"call_id": "{call}", "level": 0}, 400, "invalid_rating_level"),
    ({"call_id": "{call}", "level": 6}, 400, "invalid_rating_level"),
    ({"call_id": "{call}", "level": True}, 400, "invalid"),
    ({"call_id": "{call}", "level": "5"}, 400, "invalid"),
    ({"call_id": "{call}", "level": 4.5}, 400, "invalid"),
    ({"call_id": "{call}", "level": 4, "comment": "x" * 501}, 400, "comment_too_long"),
    ({"call_id": "{call}", "level": 4, "stars": 4}, 400, "invalid"),
    ({"call_id": "00000000-0000-4000-8000-000000000000", "level": 4}, 404, "call_not_found"),
])
def test_rating_validation(live, body, status, code):
    call = make_call(live, "b1")
    body = {k: (v.format(call=call) if isinstance(v, str) and "{call}" in v else v) for k, v in body.items()}
    with closing(booth_client(live.url, live.tokens["b1"])) as client:
        response = client.post("/api/booth/ratings", json=body)
    assert (response.status_code, error_code(response)) == (status, code)
    assert rows(live, Rating) == []


def test_rating_refuses_bad_json_and_oversized_bodies(live):
    with closing(booth_client(live.url, live.tokens["b1"])) as client:
        for raw in (b"not json", b"[1, 2]", b'{"level": NaN}', b""):
            response = client.post("/api/booth/ratings", content=raw, headers={"content-type": "application/json"})
            assert (response.status_code, error_code(response)) == (400, "bad_json"), raw
        huge = client.post("/api/booth/ratings", content=b" " * 20000)
        assert (huge.status_code, error_code(huge)) == (413, "too_big")


def test_only_finished_calls_can_be_rated(live):
    active, abandoned, queued = make_call(live, "b1", end="active"), make_call(live, "b2", end="abandoned"), None
    with closing(booth_client(live.url, live.tokens["b1"])) as client:
        response = client.post("/api/booth/ratings", json={"call_id": active, "level": 4})
        assert (response.status_code, error_code(response)) == (409, "call_not_ended")
    with closing(booth_client(live.url, live.tokens["b2"])) as client:
        response = client.post("/api/booth/ratings", json={"call_id": abandoned, "level": 4})
        assert (response.status_code, error_code(response)) == (409, "call_not_ended")
    assert queued is None and rows(live, Rating) == []


def test_a_booth_cannot_rate_or_complain_about_another_booths_call(live):
    foreign = make_call(live, "b2")
    with closing(booth_client(live.url, live.tokens["b1"])) as client:
        rating = client.post("/api/booth/ratings", json={"call_id": foreign, "level": 1})
        complaint = client.post("/api/booth/complaints", json={"category": "other", "call_id": foreign})
    assert (rating.status_code, error_code(rating)) == (404, "call_not_found")
    assert (complaint.status_code, error_code(complaint)) == (404, "call_not_found")
    assert rows(live, Rating) == [] and rows(live, Alert) == []


def test_staff_cannot_use_the_booth_api(live):
    from tests.signaling_fixtures import PASSWORD
    from tests.web_clients import login

    call = make_call(live, "b1")
    with closing(login(live.url, "c1", PASSWORD)) as client:
        response = client.post("/api/booth/ratings", json={"call_id": call, "level": 5})
    assert (response.status_code, error_code(response)) == (403, "forbidden")


# --------------------------------------------------------------------------- complaints


def test_complaint_raises_a_blue_alert_with_booth_session_and_event(live):
    call = make_call(live, "b1")
    with closing(booth_client(live.url, live.tokens["b1"])) as client:
        response = client.post("/api/booth/complaints",
                               json={"category": "waited_too_long", "text": "等了很久", "call_id": call})
        bare = client.post("/api/booth/complaints", json={"category": "other"})
    assert response.status_code == 201 and bare.status_code == 201
    alerts = {a.id: a for a in rows(live, Alert)}
    first = alerts[response.json()["alert_id"]]
    assert first.kind is AlertKind.BLUE and first.session_id == call and first.booth_id == live.booth_ids["b1"]
    assert "等待时间过长" in first.message and "等了很久" in first.message
    second = alerts[bare.json()["alert_id"]]
    assert second.session_id is None and second.booth_id == live.booth_ids["b1"]
    filed = [e for e in rows(live, Event) if e.kind == "complaint.filed"]
    assert [(e.session_id, e.data["category"]) for e in filed] == [(call, "waited_too_long"), (None, "other")]
    assert all(e.actor == f"booth:{live.booth_ids['b1']}" for e in filed)


@pytest.mark.parametrize(("body", "status", "code"), [
    ({}, 400, "invalid"),
    ({"category": "rude"}, 400, "invalid_category"),
    ({"category": 3}, 400, "invalid"),
    ({"category": "other", "text": "x" * 301}, 400, "text_too_long"),
    ({"category": "other", "text": 5}, 400, "invalid"),
    ({"category": "other", "call_id": "nope"}, 400, "invalid"),
    ({"category": "other", "call_id": "00000000-0000-4000-8000-000000000000"}, 404, "call_not_found"),
    ({"category": "other", "extra": 1}, 400, "invalid"),
])
def test_complaint_validation(live, body, status, code):
    with closing(booth_client(live.url, live.tokens["b1"])) as client:
        response = client.post("/api/booth/complaints", json=body)
    assert (response.status_code, error_code(response)) == (status, code)
    assert rows(live, Alert) == []


def test_complaint_text_of_exactly_the_limit_is_accepted(live):
    with closing(booth_client(live.url, live.tokens["b3"])) as client:
        response = client.post("/api/booth/complaints", json={"category": "could_not_hear", "text": "听" * 300,
                                                              "call_id": None})
    assert response.status_code == 201
    [alert] = rows(live, Alert)
    assert alert.booth_id == live.booth_ids["b3"] and len(alert.message) <= 500


def test_slot_horizon_is_bounded():
    now = datetime(2025, 3, 3, 18, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    never = {"timezone": "Asia/Shanghai", "weekdays": [{"start": "09:00", "end": "09:20"}], "saturday": [],
             "lunch_service": False, "holidays": [], "working_weekends": []}
    assert opening_slots(never, now) == []  # no interval holds a whole slot
    days = opening_slots({}, now, days=50)
    assert datetime.fromisoformat(days[-1]["date"]) < datetime(2025, 3, 3) + timedelta(days=30)
