"""The clerk console's JSON APIs on the live server: shapes, validation codes, and isolation.

A clerk reads only calls they served: another clerk's call is `call_not_found`, exactly like a
call that does not exist, and never shows up in the history.
"""

from __future__ import annotations

import uuid
from contextlib import closing
from datetime import datetime, timezone

import pytest
from sqlmodel import Session

from records.calls import create_call, mark_answered, mark_ended, mark_offered
from records.cases import open_case
from records.db import make_engine
from records.models import CaseStatus
from tests.signaling_fixtures import PASSWORD, clients, world
from tests.web_clients import anonymous_client, login


def served_call(settings, *, booth_id: int, clerk_id: int, item_code: str, end: bool = True,
                case: CaseStatus | None = None) -> str:
    """A call answered by `clerk_id` (and ended, and decided, if asked), written straight to the records."""
    engine = make_engine(settings.database_url)
    try:
        with Session(engine) as session:
            call = create_call(session, booth_id=booth_id, item_code=item_code)
            mark_offered(session, call.id, clerk_id=clerk_id)
            mark_answered(session, call.id, clerk_id=clerk_id, media_node="n1")
            if end:
                mark_ended(session, call.id, "hangup_clerk", actor=f"user:{clerk_id}")
            if case is not None:
                open_case(session, call_session_id=call.id, item_code=item_code, region_code=call.region_code,
                          booth_id=booth_id, clerk_id=clerk_id, status=case, decided_at=datetime.now(timezone.utc),
                          deadline=None)
            session.commit()
            return call.id
    finally:
        engine.dispose()


@pytest.fixture
def seat_world(app_settings):
    with world(app_settings) as w:
        yield w


def test_item_detail_gives_the_checklist(seat_world):
    with closing(login(seat_world.url, "c1", PASSWORD)) as c1:
        body = c1.get("/api/seat/items/SB-001").json()
        assert body["code"] == "SB-001" and body["skill"] == "social_insurance"
        assert body["name_zh"] == "城乡居民基本养老保险参保登记" and body["skill_name_zh"] == "社会保险"
        assert body["materials"] and all({"code", "name_zh", "name_en", "mandatory"} <= set(m) for m in body["materials"])
        assert any(m["mandatory"] for m in body["materials"])
        # Items of other skills are readable too: a transferred call may bring one.
        assert c1.get("/api/seat/items/YB-001").status_code == 200


@pytest.mark.parametrize(("path", "status", "code"), [
    ("/api/seat/items/NO-SUCH", 404, "unknown_item"),
    ("/api/seat/items/SB%20001", 400, "invalid"),
    ("/api/seat/items/" + "A" * 33, 400, "invalid"),
    ("/api/seat/history?limit=0", 400, "invalid"),
    ("/api/seat/history?limit=101", 400, "invalid"),
    ("/api/seat/history?limit=ten", 400, "invalid"),
    ("/api/seat/history?offset=-1", 400, "invalid"),
    ("/api/seat/history?offset=10001", 400, "invalid"),
    ("/api/seat/calls/not-a-uuid", 400, "invalid"),
    ("/api/seat/calls/5F0C2A4E-8D1B-4C3A-9E57-0B6F1D2C3A4B", 400, "invalid"),
    (f"/api/seat/calls/{uuid.uuid4()}", 404, "call_not_found"),
])
def test_bad_requests_get_stable_codes(seat_world, path, status, code):
    with closing(login(seat_world.url, "c1", PASSWORD)) as c1:
        response = c1.get(path)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def test_history_lists_only_the_clerks_own_ended_calls_with_their_cases(seat_world):
    w = seat_world
    mine = served_call(w.settings, booth_id=w.booth_ids["b1"], clerk_id=w.clerk_ids["c1"], item_code="SB-001",
                       case=CaseStatus.ACCEPTED)
    mine_plain = served_call(w.settings, booth_id=w.booth_ids["b2"], clerk_id=w.clerk_ids["c1"], item_code="SB-003")
    mine_live = served_call(w.settings, booth_id=w.booth_ids["b1"], clerk_id=w.clerk_ids["c1"], item_code="SB-001",
                            end=False)
    theirs = served_call(w.settings, booth_id=w.booth_ids["b3"], clerk_id=w.clerk_ids["c2"], item_code="YB-001")
    with closing(login(w.url, "c1", PASSWORD)) as c1, closing(login(w.url, "c2", PASSWORD)) as c2:
        rows = c1.get("/api/seat/history").json()["calls"]
        assert [r["call_id"] for r in rows] == [mine_plain, mine]  # newest first; the live call is not history
        decided = rows[1]
        assert decided["case"]["number"].startswith("EAST-") and decided["case"]["status"] == "accepted"
        assert decided["item"]["name_zh"] == "城乡居民基本养老保险参保登记"
        assert decided["booth"] == {"id": w.booth_ids["b1"], "name": "b1", "region": "east",
                                    "region_name_zh": "east", "region_name_en": "east"}
        assert decided["outcome"] == "hangup_clerk" and decided["wait_s"] >= 0 and decided["duration_s"] >= 0
        assert decided["ended_at"] and decided["answered_at"] and decided["queued_at"]
        assert rows[0]["case"] is None

        assert [r["call_id"] for r in c2.get("/api/seat/history").json()["calls"]] == [theirs]
        page = c1.get("/api/seat/history?limit=1&offset=1").json()
        assert [r["call_id"] for r in page["calls"]] == [mine] and page["limit"] == 1 and page["offset"] == 1

        # One's own call, live or ended, reads back; another clerk's call looks like no call at all.
        assert c1.get(f"/api/seat/calls/{mine_live}").json()["status"] == "active"
        assert c1.get(f"/api/seat/calls/{mine}").json()["case"]["status"] == "accepted"
        foreign = c1.get(f"/api/seat/calls/{theirs}")
        assert foreign.status_code == 404 and foreign.json()["error"]["code"] == "call_not_found"
        assert c2.get(f"/api/seat/calls/{mine}").status_code == 404


def test_history_and_calls_are_for_clerks_only(seat_world):
    w = seat_world
    call = served_call(w.settings, booth_id=w.booth_ids["b1"], clerk_id=w.clerk_ids["c1"], item_code="SB-001")
    with closing(login(w.url, "sup", PASSWORD)) as sup, closing(anonymous_client(w.url)) as anon:
        for path in ("/api/seat/history", f"/api/seat/calls/{call}", "/api/seat/directory", "/api/seat/items/SB-001"):
            assert sup.get(path).json()["error"]["code"] == "forbidden"
            assert anon.get(path).json()["error"]["code"] == "unauthenticated"


async def test_directory_lists_skills_items_and_the_other_clerks_online(seat_world):
    w = seat_world
    with closing(login(w.url, "c1", PASSWORD)) as c1:
        offline = {s["skill"]: s for s in c1.get("/api/seat/directory").json()["skills"]}
        assert offline["medical"]["clerks"] == [] and offline["medical"]["online"] == 0
        c2 = await w.clerk("c2")  # online and available
        me = await w.clerk("c1", available=False)  # the caller online too: never listed to itself
        async with clients(c2, me):
            skills = {s["skill"]: s for s in c1.get("/api/seat/directory").json()["skills"]}
    medical = skills["medical"]
    assert medical["name_zh"] == "医疗保障" and medical["online"] == 1 and medical["available"] == 1
    assert medical["clerks"] == [{"id": w.clerk_ids["c2"], "name": "C2", "status": "available", "regions": ["west"]}]
    assert skills["social_insurance"]["clerks"] == []
    assert "SB-001" in {i["code"] for i in skills["social_insurance"]["items"]}
    assert {"code", "name_zh", "name_en"} == set(skills["social_insurance"]["items"][0])
