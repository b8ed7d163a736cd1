"""records.review on real records, on SQLite and PostgreSQL: every filter, the scopes, paging, one session.

Four calls, newest first D, C, B, A:

- A (xh booth, sb01, clerk 1) ended, accepted, rated 5; a yellow alert on its case only (no session id);
- B (yh booth, sb02, clerk 2) ended, refused, rated 1, a blue alert on the session;
- C (xh booth, sb01) abandoned before any answer;
- D (xh booth, sb02) answered by clerk 1, transferred, answered by clerk 2, ended: served by both.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from records.alerts import raise_alert
from records.calls import create_call, mark_abandoned, mark_answered, mark_ended, mark_transferred
from records.cases import open_case
from records.errors import ValidationError
from records.events import append_event
from records.models import AlertKind, CallSession, CaseStatus, Role
from records.ratings import rate
from records.review import SessionFilter, filter_options, search_sessions, session_review, visible_call
from tests.records_factories import add_booth, add_item, add_region, add_user

QUEUED = {"A": datetime(2026, 1, 10, 2, 0, tzinfo=timezone.utc), "B": datetime(2026, 2, 10, 2, 0, tzinfo=timezone.utc),
          "C": datetime(2026, 3, 10, 2, 0, tzinfo=timezone.utc), "D": datetime(2026, 3, 11, 2, 0, tzinfo=timezone.utc)}


def _queued_at(session: Session, call_id: str, when: datetime) -> None:
    call = session.get(CallSession, call_id)
    assert call is not None
    call.queued_at = when
    session.add(call)


def build(engine: Engine) -> dict[str, Any]:
    with Session(engine, expire_on_commit=False) as s:
        add_region(s, "xh")
        add_region(s, "yh")
        bx, by = add_booth(s, "xh", "bx"), add_booth(s, "yh", "by")
        c1, c2 = add_user(s, Role.CLERK, "clerk1"), add_user(s, Role.CLERK, "clerk2")
        sb01, sb02 = add_item(s, "sb01"), add_item(s, "sb02")
        ids: dict[str, Any] = {"bx": bx.id, "by": by.id, "c1": c1.id, "c2": c2.id}

        a = create_call(s, booth_id=bx.id, item_code=sb01.code)
        mark_answered(s, a.id, clerk_id=c1.id)
        case_a = open_case(s, call_session_id=a.id, item_code="sb01", region_code="xh", booth_id=bx.id,
                           clerk_id=c1.id, status=CaseStatus.ACCEPTED, decided_at=datetime.now(timezone.utc),
                           deadline=date(2026, 1, 20))
        append_event(s, kind="chat.message", actor=f"booth:{bx.id}", session_id=a.id, booth_id=bx.id,
                     data={"text": "你好"})
        mark_ended(s, a.id, "hangup_clerk")
        rate(s, session_id=a.id, level=5)
        raise_alert(s, kind=AlertKind.YELLOW, message="near deadline", case_id=case_a.id)

        b = create_call(s, booth_id=by.id, item_code=sb02.code)
        mark_answered(s, b.id, clerk_id=c2.id)
        open_case(s, call_session_id=b.id, item_code="sb02", region_code="yh", booth_id=by.id, clerk_id=c2.id,
                  status=CaseStatus.REFUSED, reason="不符合条件", decided_at=datetime.now(timezone.utc), deadline=None)
        mark_ended(s, b.id, "hangup_booth")
        rate(s, session_id=b.id, level=1, comment="太慢")
        raise_alert(s, kind=AlertKind.BLUE, message="bad rating", session_id=b.id, booth_id=by.id)

        c = create_call(s, booth_id=bx.id, item_code=sb01.code)
        mark_abandoned(s, c.id)

        d = create_call(s, booth_id=bx.id, item_code=sb02.code)
        mark_answered(s, d.id, clerk_id=c1.id)
        mark_transferred(s, d.id, actor=f"user:{c1.id}", to_clerk_id=c2.id)
        mark_answered(s, d.id, clerk_id=c2.id)
        mark_ended(s, d.id, "hangup_clerk")

        for name, call in (("A", a), ("B", b), ("C", c), ("D", d)):
            _queued_at(s, call.id, QUEUED[name])
            ids[name] = call.id
        s.commit()
    return ids


@pytest.fixture
def world(records_engine: Engine) -> tuple[Engine, dict[str, Any]]:
    return records_engine, build(records_engine)


def found(engine: Engine, ids: dict[str, Any], filters: SessionFilter | None = None, **kw: Any) -> list[str]:
    names = {v: k for k, v in ids.items() if k in "ABCD"}
    with Session(engine) as s:
        page = search_sessions(s, filters, **kw)
    return [names[r["call_id"]] for r in page.rows]


def test_newest_first_with_summaries(world):
    engine, ids = world
    with Session(engine) as s:
        page = search_sessions(s)
    assert page.total == 4
    rows = {r["call_id"]: r for r in page.rows}
    assert [r["call_id"] for r in page.rows] == [ids["D"], ids["C"], ids["B"], ids["A"]]
    a, b = rows[ids["A"]], rows[ids["B"]]
    assert a["case"]["status"] == "accepted" and a["rating"] == 5 and a["alerts"] == 1  # the alert on its case
    assert b["case"]["status"] == "refused" and b["rating"] == 1 and b["alerts"] == 1
    assert rows[ids["C"]]["case"] is None and rows[ids["C"]]["rating"] is None and rows[ids["C"]]["alerts"] == 0
    assert a["booth"]["name"] == "bx" and a["region"]["code"] == "xh" and a["clerk"]["id"] == ids["c1"]
    assert a["item"]["code"] == "sb01" and a["status"] == "ended" and a["duration_s"] is not None


def test_each_filter(world):
    engine, ids = world
    f = SessionFilter
    assert found(engine, ids, f(since=datetime(2026, 2, 1, tzinfo=timezone.utc),
                                until=datetime(2026, 3, 11, tzinfo=timezone.utc))) == ["C", "B"]
    assert found(engine, ids, f(booth_id=ids["by"])) == ["B"]
    assert found(engine, ids, f(region_code="xh")) == ["D", "C", "A"]
    assert found(engine, ids, f(clerk_id=ids["c1"])) == ["D", "A"]  # D: answered before its transfer
    assert found(engine, ids, f(clerk_id=ids["c2"])) == ["D", "B"]
    assert found(engine, ids, f(item_code="sb02")) == ["D", "B"]
    assert found(engine, ids, f(outcome="ended")) == ["D", "B", "A"]
    assert found(engine, ids, f(outcome="abandoned")) == ["C"]
    assert found(engine, ids, f(outcome="accepted")) == ["A"]
    assert found(engine, ids, f(outcome="refused")) == ["B"]
    assert found(engine, ids, f(outcome="needs_supplement")) == []
    assert found(engine, ids, f(rating=5)) == ["A"]
    assert found(engine, ids, f(rating=1)) == ["B"]
    assert found(engine, ids, f(rating="none")) == ["D", "C"]
    assert found(engine, ids, f(has_alert=True)) == ["B", "A"]
    assert found(engine, ids, f(has_alert=False)) == ["D", "C"]
    assert found(engine, ids, f(region_code="xh", item_code="sb01", outcome="accepted", rating=5, has_alert=True)) \
        == ["A"]


def test_scopes_and_paging(world):
    engine, ids = world
    assert found(engine, ids, regions=frozenset({"xh"})) == ["D", "C", "A"]
    assert found(engine, ids, regions=frozenset()) == []
    assert found(engine, ids, SessionFilter(region_code="yh"), regions=frozenset({"xh"})) == []
    assert found(engine, ids, served_by=ids["c1"]) == ["D", "A"]
    assert found(engine, ids, served_by=ids["c2"]) == ["D", "B"]
    assert found(engine, ids, limit=2) == ["D", "C"]
    assert found(engine, ids, limit=2, offset=2) == ["B", "A"]
    with Session(engine) as s:
        assert search_sessions(s, limit=3, offset=3).total == 4
        options = filter_options(s, regions=frozenset({"xh"}))
    assert [r.code for r in options.regions] == ["xh"] and [b.name for b in options.booths] == ["bx"]
    assert {c.id for c in options.clerks} == {ids["c1"], ids["c2"]}


def test_bad_filters_are_refused():
    for kwargs in ({"outcome": "won"}, {"rating": 6}, {"rating": True}, {"rating": "bad"},
                   {"since": datetime(2026, 2, 1, tzinfo=timezone.utc), "until": datetime(2026, 1, 1, tzinfo=timezone.utc)}):
        with pytest.raises(ValidationError) as exc:
            SessionFilter(**kwargs)
        assert exc.value.code == "invalid_filter"


def test_paging_bounds_are_checked(world):
    engine, _ = world
    with Session(engine) as s, pytest.raises(ValidationError):
        search_sessions(s, limit=0)


def test_one_session_review(world):
    engine, ids = world
    with Session(engine) as s:
        review = session_review(s, ids["A"])
        assert session_review(s, ids["A"], regions=frozenset({"yh"})) is None
        assert session_review(s, ids["A"], served_by=ids["c2"]) is None
        assert session_review(s, "00000000-0000-4000-8000-000000000000") is None
        assert visible_call(s, ids["D"], served_by=ids["c1"]) is not None  # served before the transfer
    assert review is not None
    kinds = [e["kind"] for e in review["events"]]
    assert kinds[:2] == ["call.queued", "call.answered"]
    assert {"case.opened", "chat.message", "call.ended", "rating.given"} <= set(kinds)
    assert "alert.raised" not in kinds  # its alert names the case only; it shows under `alerts`
    seqs = [e["seq"] for e in review["events"]]
    assert seqs == sorted(seqs)
    chat = next(e for e in review["events"] if e["kind"] == "chat.message")
    assert chat["data"] == {"text": "你好"} and chat["actor_name"] == "bx" and chat["offset_s"] >= 0
    answered = next(e for e in review["events"] if e["kind"] == "call.answered")
    assert answered["offset_s"] == 0 and answered["actor_name"] == "clerk1"
    assert review["events"][0]["offset_s"] is None  # queued before the answer: not on the recordings' clock
    assert [c["status"] for c in review["cases"]] == ["accepted"] and review["cases"][0]["deadline"] == "2026-01-20"
    assert review["rating"]["level"] == 5
    assert [a["kind"] for a in review["alerts"]] == ["yellow"]
    assert review["call"]["clerk"]["id"] == ids["c1"] and review["recordings"] == [] and review["materials"] == []
    assert review["accesses"] == []
