"""POST /api/admin/cases/{number}/legal-hold on the real server (who may is in the access table)."""

from __future__ import annotations

from contextlib import closing
from datetime import datetime, timezone

import pytest
from sqlmodel import Session, select

from records.cases import open_case
from records.db import make_engine
from records.events import list_events
from records.models import Case, CaseStatus, Region, ServiceItem
from tests.web_clients import client_for


@pytest.fixture
def case_number(demo_server, app_settings) -> str:
    """A case decided in the demo's first region (no call: a counter decision)."""
    engine = make_engine(app_settings.database_url)
    with Session(engine) as session:
        region = session.exec(select(Region.code)).first()
        item = session.exec(select(ServiceItem.code)).first()
        case = open_case(session, call_session_id=None, item_code=item, region_code=region, booth_id=None,
                         clerk_id=None, status=CaseStatus.ACCEPTED, decided_at=datetime.now(timezone.utc),
                         deadline=None, actor="system")
        session.commit()
        number = case.number
    engine.dispose()
    return number


def hold_state(app_settings, number: str) -> tuple[bool, list[dict]]:
    engine = make_engine(app_settings.database_url)
    with Session(engine) as session:
        case = session.exec(select(Case).where(Case.number == number)).one()
        events = [e.data for e in list_events(session, kind="case.legal_hold")]
    engine.dispose()
    return case.legal_hold, events


def test_admin_sets_and_releases_a_legal_hold(demo_server, app_settings, case_number):
    server, logins = demo_server
    with closing(client_for("admin", server.url, logins)) as admin:
        url = f"/api/admin/cases/{case_number}/legal-hold"
        on = admin.post(url, json={"on": True, "reason": "court order 2026-17"})
        assert on.status_code == 200, on.text
        assert on.json() == {"case_id": on.json()["case_id"], "number": case_number, "legal_hold": True}
        assert hold_state(app_settings, case_number)[0] is True
        off = admin.post(f"/api/admin/cases/{case_number.lower()}/legal-hold", json={"on": False, "reason": "lifted"})
        assert off.status_code == 200 and off.json()["legal_hold"] is False
        admin_id = admin.get("/api/me").json()["user_id"]
    held, events = hold_state(app_settings, case_number)
    assert held is False
    assert [(e["on"], e["previous"], e["reason"]) for e in events] == [
        (True, False, "court order 2026-17"), (False, True, "lifted")]
    engine = make_engine(app_settings.database_url)
    with Session(engine) as session:
        assert {e.actor for e in list_events(session, kind="case.legal_hold")} == {f"user:{admin_id}"}
    engine.dispose()


@pytest.mark.parametrize("body, status, code", [
    (b"not json", 400, "bad_json"),
    (b"[true]", 400, "bad_json"),
    (b'{"on": "yes", "reason": "x"}', 400, "invalid"),
    (b'{"on": true}', 400, "invalid"),
    (b'{"on": true, "reason": "   "}', 400, "reason_required"),
    (b'{"on": true, "reason": "x", "until": "2030"}', 400, "invalid"),
    (b'{"on": true, "reason": "' + b"x" * 501 + b'"}', 400, "invalid"),
])
def test_bad_input_is_400_and_changes_nothing(demo_server, app_settings, case_number, body, status, code):
    server, logins = demo_server
    with closing(client_for("admin", server.url, logins)) as admin:
        response = admin.post(f"/api/admin/cases/{case_number}/legal-hold", content=body,
                              headers={"content-type": "application/json"})
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    assert hold_state(app_settings, case_number) == (False, [])


def test_unknown_case_is_404_and_csrf_is_required(demo_server, app_settings, case_number):
    server, logins = demo_server
    with closing(client_for("admin", server.url, logins)) as admin:
        missing = admin.post("/api/admin/cases/XH-1999-000001/legal-hold", json={"on": True, "reason": "x"})
        assert (missing.status_code, missing.json()["error"]["code"]) == (404, "case_not_found")
        weird = admin.post("/api/admin/cases/a%20b/legal-hold", json={"on": True, "reason": "x"})
        assert (weird.status_code, weird.json()["error"]["code"]) == (400, "invalid")
        del admin.headers["x-csrf-token"]
        forged = admin.post(f"/api/admin/cases/{case_number}/legal-hold", json={"on": True, "reason": "x"})
        assert (forged.status_code, forged.json()["error"]["code"]) == (403, "csrf")
    assert hold_state(app_settings, case_number) == (False, [])


def test_supervisor_is_refused(demo_server, app_settings, case_number):
    server, logins = demo_server
    with closing(client_for("supervisor", server.url, logins)) as supervisor:
        response = supervisor.post(f"/api/admin/cases/{case_number}/legal-hold", json={"on": True, "reason": "x"})
    assert (response.status_code, response.json()["error"]["code"]) == (403, "forbidden")
    assert hold_state(app_settings, case_number) == (False, [])
