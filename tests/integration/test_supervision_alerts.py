"""Electronic supervision (电子监察) on SQLite and PostgreSQL with a fixed clock.

The deadline sweep runs against dongcheng's real 2026 calendar (records/data/regions.json):
25-27 Sep and 1-7 Oct are holidays, Saturday 10 Oct is an adjusted working day (调休上班).
Blue alerts come through the real booth API; supervisors acknowledge and resolve through the
real HTTP API of a live server; the event log holds every step and its chains verify.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from cloudseat.app import create_app
from records.accounts import create_user
from records.alerts import GLOBAL_SCOPE, effective_rules, resolve, set_rules
from records.calls import create_call, mark_answered, mark_ended
from records.cases import open_case, set_case_status
from records.db import make_engine
from records.errors import ValidationError
from records.events import verify_chains
from records.models import Alert, AlertRule, AlertStatus, CaseStatus, Event, Region, Role, User
from signaling.supervision_sweep import SUPERSEDED_NOTE, run_sweep, sweep
from tests.live_server import LiveServer, serve
from tests.records_factories import add_booth, add_item, add_user
from tests.signaling_fixtures import ALWAYS_OPEN, PASSWORD, seed_world
from tests.web_clients import booth_client, login

SHANGHAI = ZoneInfo("Asia/Shanghai")
REGIONS_JSON = Path(__file__).resolve().parents[2] / "records" / "data" / "regions.json"
DONGCHENG_HOURS: dict[str, Any] = next(
    r["service_hours"] for r in json.loads(REGIONS_JSON.read_text("utf-8"))["regions"] if r["code"] == "dongcheng")


def at(day: str, hhmm: str = "09:00") -> datetime:
    """A Shanghai local time as an aware instant."""
    return datetime.fromisoformat(f"{day}T{hhmm}").replace(tzinfo=SHANGHAI)


def d(text: str) -> date:
    return date.fromisoformat(text)


# --------------------------------------------------------------------------- records-level sweep


@dataclass
class Ground:
    booth_id: int
    supervisor_id: int
    items: tuple[str, str] = ("sb01", "sb02")


@pytest.fixture
def ground(records_engine: Engine) -> Ground:
    with Session(records_engine, expire_on_commit=False) as session:
        session.add(Region(code="dongcheng", name_zh="东城街道", name_en="Dongcheng", service_hours=DONGCHENG_HOURS))
        session.flush()
        booth = add_booth(session, "dongcheng", name="东城1号晓屋")
        supervisor = add_user(session, Role.SUPERVISOR)
        add_item(session, "sb01")
        add_item(session, "sb02")
        session.commit()
        return Ground(int(booth.id or 0), int(supervisor.id or 0))


def new_case(engine: Engine, ground: Ground, *, deadline: date | None, status: CaseStatus = CaseStatus.ACCEPTED,
             item: str = "sb01", then: CaseStatus | None = None) -> int:
    with Session(engine) as session:
        case = open_case(session, call_session_id=None, item_code=item, region_code="dongcheng",
                         booth_id=ground.booth_id, clerk_id=None, status=status,
                         reason="材料不符合要求" if status is CaseStatus.REFUSED else "",
                         missing_materials=["id_card"] if status is CaseStatus.NEEDS_SUPPLEMENT else (),
                         decided_at=at("2026-09-21"), deadline=deadline, actor="user:1")
        session.flush()
        if then is not None:
            set_case_status(session, int(case.id or 0), then, actor="user:1")
        session.commit()
        return int(case.id or 0)


def deadline_alerts(engine: Engine) -> dict[tuple[int, str], list[str]]:
    """(case, kind) -> statuses of its alerts, oldest first."""
    with Session(engine) as session:
        out: dict[tuple[int, str], list[str]] = {}
        for alert in session.exec(select(Alert).order_by(Alert.id)):
            out.setdefault((int(alert.case_id or 0), alert.kind.value), []).append(alert.status.value)
        return out


def event_kinds(engine: Engine, prefix: str) -> list[str]:
    with Session(engine) as session:
        return [e.kind for e in session.exec(select(Event).order_by(Event.seq)) if e.kind.startswith(prefix)]


def test_sweep_raises_yellow_within_n_working_days_and_red_the_day_after(records_engine, ground):
    engine = records_engine
    national_day = new_case(engine, ground, deadline=d("2026-10-09"))  # Friday after the holiday week
    after_weekend = new_case(engine, ground, deadline=d("2026-10-12"))  # Monday after the working Saturday
    supplement = new_case(engine, ground, deadline=d("2026-10-09"), status=CaseStatus.NEEDS_SUPPLEMENT)
    refused = new_case(engine, ground, deadline=d("2026-10-09"), status=CaseStatus.REFUSED)
    completed = new_case(engine, ground, deadline=d("2026-10-09"), then=CaseStatus.COMPLETED)
    no_deadline = new_case(engine, ground, deadline=None)

    # Tuesday 29 Sep: three working days (30 Sep, 8 and 9 Oct) to go: nothing yet (N = 2 by default).
    assert run_sweep(engine, at("2026-09-29", "23:59")) == []
    # 00:30 on 30 Sep in Shanghai is still 29 Sep in UTC: the region's local date decides.
    raised = run_sweep(engine, datetime(2026, 9, 29, 16, 30, tzinfo=timezone.utc))
    assert sorted((a["case_id"], a["kind"]) for a in raised) == [(national_day, "yellow"), (supplement, "yellow")]
    view = next(a for a in raised if a["case_id"] == national_day)
    assert view["deadline"] == "2026-10-09" and view["region_code"] == "dongcheng"
    assert view["booth_name"] == "东城1号晓屋" and view["status"] == "open" and view["case_number"]
    assert "剩余 2 个工作日" in view["message"]

    # Idempotent: the same clock again, and a day inside the holiday, raise nothing more.
    events_before = len(event_kinds(engine, "alert."))
    assert run_sweep(engine, at("2026-09-30", "10:00")) == []
    assert run_sweep(engine, at("2026-10-04")) == []
    assert len(event_kinds(engine, "alert.")) == events_before

    # The adjusted working Saturday counts: on Thursday 8 Oct, 9, 10 and 12 Oct are three days away.
    assert run_sweep(engine, at("2026-10-08")) == []
    raised = run_sweep(engine, at("2026-10-09"))
    assert [(a["case_id"], a["kind"]) for a in raised] == [(after_weekend, "yellow")]

    # A supervisor resolves the yellow; the next sweep does not raise it again.
    with Session(engine) as session:
        yellow = session.exec(select(Alert).where(Alert.case_id == after_weekend)).one()
        resolve(session, int(yellow.id or 0), user_id=ground.supervisor_id, note="已催办窗口")
        session.commit()

    # Saturday 10 Oct, the day after the deadline: red, and the open yellows give way to it.
    raised = run_sweep(engine, at("2026-10-10", "08:00"))
    changes = sorted((a["case_id"], a["kind"], a["status"]) for a in raised)
    assert changes == sorted([(national_day, "red", "open"), (national_day, "yellow", "resolved"),
                              (supplement, "red", "open"), (supplement, "yellow", "resolved")])
    superseded = next(a for a in raised if a["kind"] == "yellow")
    assert superseded["resolution_note"] == SUPERSEDED_NOTE and superseded["resolved_by"] is None
    assert run_sweep(engine, at("2026-10-12")) == []  # 12 Oct is the deadline day of the other case
    assert [(a["case_id"], a["kind"]) for a in run_sweep(engine, at("2026-10-13"))] == [(after_weekend, "red")]

    alerts = deadline_alerts(engine)
    assert alerts == {
        (national_day, "yellow"): ["resolved"], (national_day, "red"): ["open"],
        (supplement, "yellow"): ["resolved"], (supplement, "red"): ["open"],
        (after_weekend, "yellow"): ["resolved"], (after_weekend, "red"): ["open"],
    }
    assert not any(case in (refused, completed, no_deadline) for case, _ in alerts)
    assert event_kinds(engine, "alert.").count("alert.raised") == 6
    with Session(engine) as session:
        system_resolutions = [e for e in session.exec(select(Event).where(Event.kind == "alert.resolved"))
                              if e.actor == "system"]
        assert len(system_resolutions) == 2
        assert verify_chains(session).ok


def test_a_case_first_seen_overdue_gets_only_red(records_engine, ground):
    case = new_case(records_engine, ground, deadline=d("2026-09-30"))
    raised = run_sweep(records_engine, at("2026-10-08"))
    assert [(a["case_id"], a["kind"]) for a in raised] == [(case, "red")]
    assert "已过期 8 天" in raised[0]["message"]
    assert run_sweep(records_engine, at("2026-10-20")) == []


def test_sweep_needs_an_aware_clock(records_engine, ground):
    with Session(records_engine) as session, pytest.raises(ValueError):
        sweep(session, datetime(2026, 10, 1, 9, 0))


def test_per_item_override_is_honoured_and_every_change_logged(records_engine, ground):
    engine = records_engine
    plain = new_case(engine, ground, deadline=d("2026-10-09"), item="sb01")
    watched = new_case(engine, ground, deadline=d("2026-10-09"), item="sb02")
    with Session(engine) as session:
        set_rules(session, "sb02", {"yellow_days": 4}, user_id=ground.supervisor_id)
        set_rules(session, "sb01", {"red_enabled": False}, user_id=ground.supervisor_id)
        session.commit()
    with Session(engine) as session:
        assert effective_rules(session, "sb02").yellow_days == 4
        assert effective_rules(session, "sb02").red_enabled is True  # inherited
        assert effective_rules(session, "sb01").red_enabled is False
        # Bad values are refused and change nothing.
        for bad in ({"yellow_days": 99}, {"red_enabled": 1}, {"colour": "green"}):
            with pytest.raises(ValidationError):
                set_rules(session, "sb02", bad, user_id=ground.supervisor_id)
        with pytest.raises(ValidationError):
            set_rules(session, GLOBAL_SCOPE, {"yellow_days": 3}, user_id=ground.supervisor_id)  # incomplete
        session.rollback()

    # Monday 28 Sep: 29, 30 Sep, 8, 9 Oct = four working days; only the item watched four days ahead.
    assert [(a["case_id"], a["kind"]) for a in run_sweep(engine, at("2026-09-28"))] == [(watched, "yellow")]
    assert [(a["case_id"], a["kind"]) for a in run_sweep(engine, at("2026-09-30"))] == [(plain, "yellow")]
    # Past the deadline: red only where red is enabled; the other keeps its yellow.
    raised = run_sweep(engine, at("2026-10-10"))
    assert sorted((a["case_id"], a["kind"], a["status"]) for a in raised) == [
        (watched, "red", "open"), (watched, "yellow", "resolved")]
    assert deadline_alerts(engine)[(plain, "yellow")] == ["open"]

    # Global rules change at run time; an override of nothing but nulls goes away.
    with Session(engine) as session:
        set_rules(session, GLOBAL_SCOPE, {"yellow_days": 3, "red_enabled": True, "blue_max_level": 1},
                  user_id=ground.supervisor_id)
        set_rules(session, GLOBAL_SCOPE, {"yellow_days": 3, "red_enabled": True, "blue_max_level": 1},
                  user_id=ground.supervisor_id)  # unchanged: not logged again
        set_rules(session, "sb02", {"yellow_days": None}, user_id=ground.supervisor_id)
        session.commit()
    with Session(engine) as session:
        assert session.get(AlertRule, "sb02") is None
        assert effective_rules(session, "sb02").yellow_days == 3
        changes = session.exec(select(Event).where(Event.kind == "alert_rules.changed").order_by(Event.seq)).all()
        assert [(e.data["scope"], e.data["after"]) for e in changes] == [
            ("sb02", {"yellow_days": 4, "red_enabled": None, "blue_max_level": None}),
            ("sb01", {"yellow_days": None, "red_enabled": False, "blue_max_level": None}),
            ("*", {"yellow_days": 3, "red_enabled": True, "blue_max_level": 1}),
            ("sb02", None),
        ]
        assert changes[0].actor == f"user:{ground.supervisor_id}"
        assert verify_chains(session).ok


# --------------------------------------------------------------------------- the live server


class FixedClock:
    """The app's alert clock in tests: stands still until a test moves it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Site:
    server: LiveServer
    engine: Engine
    clock: FixedClock
    tokens: dict[str, str]
    booth_ids: dict[str, int]
    clerk_ids: dict[str, int]
    booth_regions: dict[str, str]
    users: dict[str, int] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url


@contextmanager
def site(settings: Any, clock_at: datetime, booths: dict[str, str] | None = None) -> Iterator[Site]:
    """Dongcheng with the real 2026 calendar and a west region; an admin and a west-only supervisor."""
    booths = booths or {"b1": "dongcheng", "b3": "west"}
    seeded = seed_world(settings, regions={"dongcheng": DONGCHENG_HOURS, "west": ALWAYS_OPEN}, booths=booths,
                        clerks={"c1": (["social_insurance"], ["dongcheng", "west"])})
    engine = make_engine(settings.database_url)
    users = {}
    with Session(engine) as session:
        for username, role, regions in (("admin", Role.ADMIN, []), ("supwest", Role.SUPERVISOR, ["west"])):
            users[username] = create_user(session, username=username, password=PASSWORD, role=role,
                                          display_name=username.upper(), regions=regions).id
        session.commit()
    clock = FixedClock(clock_at)
    app = create_app(settings)
    app.state.alert_clock = clock
    try:
        with serve(app) as server:
            yield Site(server, engine, clock, seeded["tokens"], seeded["booth_ids"], seeded["clerk_ids"], booths,
                       users)
    finally:
        engine.dispose()


@pytest.fixture
def live_settings(app_settings, database_url):
    return app_settings.with_overrides(database_url=database_url)


def ended_call(s: Site, booth: str, item: str = "SB-003") -> str:
    with Session(s.engine) as session:
        call = create_call(session, booth_id=s.booth_ids[booth], item_code=item)
        session.flush()
        mark_answered(session, call.id, clerk_id=s.clerk_ids["c1"])
        mark_ended(session, call.id, "hangup_clerk")
        session.commit()
        return call.id


def case_for(s: Site, booth: str, deadline: date, item: str = "SB-003") -> int:
    call_id = ended_call(s, booth, item)
    with Session(s.engine) as session:
        case = open_case(session, call_session_id=call_id, item_code=item, region_code=s.booth_regions[booth],
                         booth_id=s.booth_ids[booth], clerk_id=s.clerk_ids["c1"], status=CaseStatus.ACCEPTED,
                         decided_at=at("2026-09-21"), deadline=deadline, actor="user:1")
        session.commit()
        return int(case.id or 0)


def error_code(response: Any) -> str:
    return response.json()["error"]["code"]


def listed(client: Any, **params: str) -> list[dict[str, Any]]:
    response = client.get("/api/supervise/alerts", params=params)
    assert response.status_code == 200, response.text
    return response.json()["alerts"]


def test_blue_alerts_from_the_booth_api_follow_the_rules(live_settings):
    with site(live_settings, at("2026-09-01")) as s, \
            closing(booth_client(s.url, s.tokens["b1"])) as booth, \
            closing(login(s.url, "sup", PASSWORD)) as sup, closing(login(s.url, "admin", PASSWORD)) as admin:
        bad = ended_call(s, "b1")
        rated = booth.post("/api/booth/ratings", json={"call_id": bad, "level": 2, "comment": "等太久"})
        assert rated.status_code == 201 and rated.json()["alert_id"]
        fair = ended_call(s, "b1")
        assert booth.post("/api/booth/ratings", json={"call_id": fair, "level": 3}).json()["alert_id"] is None
        complaint = booth.post("/api/booth/complaints", json={"category": "clerk_attitude", "text": "态度差"})
        assert complaint.status_code == 201

        blues = listed(sup, kind="blue")
        assert [a["id"] for a in blues] == [complaint.json()["alert_id"], rated.json()["alert_id"]]
        assert "不满意" in blues[1]["message"] and "办不成事" in blues[0]["message"]
        assert blues[1]["session_id"] == bad and blues[1]["booth_name"] == "b1"
        assert blues[0]["region_code"] == "dongcheng" and blues[0]["case_id"] is None

        # The admin widens blue for SB-003 to 基本满意 at run time: the next 3-star rating alerts.
        override = admin.put("/api/supervise/alert-rules/items/SB-003", json={"blue_max_level": 3})
        assert override.status_code == 200
        sb003 = next(i for i in override.json()["items"] if i["item_code"] == "SB-003")
        assert sb003["effective"]["blue_max_level"] == 3 and sb003["override"]["yellow_days"] is None
        third = ended_call(s, "b1")
        assert booth.post("/api/booth/ratings", json={"call_id": third, "level": 3}).json()["alert_id"]
        other_item = ended_call(s, "b1", item="SB-004")
        assert booth.post("/api/booth/ratings", json={"call_id": other_item, "level": 3}).json()["alert_id"] is None
        # ... and switches blue ratings off globally (complaints still alert).
        off = admin.put("/api/supervise/alert-rules/global",
                        json={"yellow_days": 2, "red_enabled": True, "blue_max_level": 0})
        assert off.status_code == 200 and off.json()["global"]["blue_max_level"] == 0
        quiet = ended_call(s, "b1", item="SB-004")
        assert booth.post("/api/booth/ratings", json={"call_id": quiet, "level": 1}).json()["alert_id"] is None


def test_rules_api_validates_and_logs(live_settings):
    with site(live_settings, at("2026-09-01")) as s, \
            closing(login(s.url, "sup", PASSWORD)) as sup, closing(login(s.url, "admin", PASSWORD)) as admin:
        doc = sup.get("/api/supervise/alert-rules").json()
        assert doc["global"] == doc["defaults"] == {"yellow_days": 2, "red_enabled": True, "blue_max_level": 2}
        assert any(i["item_code"] == "SB-001" and i["override"] is None for i in doc["items"])
        before = event_kinds(s.engine, "alert_rules.")
        for body in ({"yellow_days": 2, "red_enabled": True}, {"yellow_days": "2", "red_enabled": True,
                                                                "blue_max_level": 2},
                     {"yellow_days": 2, "red_enabled": True, "blue_max_level": 2, "x": 1}):
            response = admin.put("/api/supervise/alert-rules/global", json=body)
            assert response.status_code == 400 and error_code(response) == "invalid_rule"
        assert error_code(admin.put("/api/supervise/alert-rules/global", content=b"[1]")) == "bad_json"
        missing = admin.put("/api/supervise/alert-rules/items/NOPE-1", json={"yellow_days": 1})
        assert missing.status_code == 404 and error_code(missing) == "item_not_found"
        assert event_kinds(s.engine, "alert_rules.") == before
        assert sup.put("/api/supervise/alert-rules/global",
                       json={"yellow_days": 3, "red_enabled": True, "blue_max_level": 2}).status_code == 403
        saved = admin.put("/api/supervise/alert-rules/global",
                          json={"yellow_days": 5, "red_enabled": False, "blue_max_level": 1})
        assert saved.json()["global"] == {"yellow_days": 5, "red_enabled": False, "blue_max_level": 1}
        assert sup.get("/api/supervise/alert-rules").json()["global"]["yellow_days"] == 5
        with Session(s.engine) as session:
            change = session.exec(select(Event).where(Event.kind == "alert_rules.changed")).one()
            assert change.actor == f"user:{s.users['admin']}" and change.data["before"] is None


def test_supervisors_acknowledge_and_resolve_in_their_regions(live_settings):
    with site(live_settings, at("2026-09-01")) as s, \
            closing(booth_client(s.url, s.tokens["b1"])) as booth, \
            closing(booth_client(s.url, s.tokens["b3"])) as west_booth, \
            closing(login(s.url, "sup", PASSWORD)) as sup, closing(login(s.url, "supwest", PASSWORD)) as supwest:
        east_case = case_for(s, "b1", d("2026-10-09"))
        # West counts plain Monday-Friday: 1 Oct is a working day there, one day away on 30 Sep.
        west_case = case_for(s, "b3", d("2026-10-01"))
        with Session(s.engine) as session:  # the sweep at 30 Sep, 10:00 (the app's own clock waits at 1 Sep)
            sweep(session, at("2026-09-30", "10:00"))
            session.commit()
        blue = booth.post("/api/booth/complaints", json={"category": "waited_too_long"}).json()["alert_id"]
        west_blue = west_booth.post("/api/booth/complaints", json={"category": "other"}).json()["alert_id"]

        everything = listed(sup)
        assert sorted((a["case_id"] or 0, a["kind"], a["region_code"]) for a in everything) == sorted([
            (east_case, "yellow", "dongcheng"), (west_case, "yellow", "west"), (0, "blue", "dongcheng"),
            (0, "blue", "west")])
        yellow = next(a for a in everything if a["case_id"] == east_case)
        assert yellow["deadline"] == "2026-10-09" and yellow["status"] == "open"
        assert yellow["acknowledged_at"] is None and yellow["resolution_note"] == ""
        assert set(yellow) == {"id", "kind", "status", "message", "case_id", "case_number", "deadline",
                               "session_id", "booth_id", "booth_name", "region_code", "created_at",
                               "acknowledged_at", "acknowledged_by", "resolved_at", "resolved_by",
                               "resolution_note"}
        # Scoped: the west supervisor sees west only and cannot touch dongcheng's alerts.
        assert {a["region_code"] for a in listed(supwest)} == {"west"}
        assert {a["id"] for a in listed(supwest)} == {west_blue} | {a["id"] for a in everything
                                                                      if a["case_id"] == west_case}
        for action, body in (("ack", None), ("resolve", {"note": "x"})):
            hidden = supwest.post(f"/api/supervise/alerts/{yellow['id']}/{action}", json=body)
            assert hidden.status_code == 404 and error_code(hidden) == "alert_not_found"
        assert sup.post("/api/supervise/alerts/99999/ack").status_code == 404
        assert sup.post("/api/supervise/alerts/99999999999/ack").status_code == 404

        # Filters.
        assert [a["id"] for a in listed(sup, kind="yellow", status="open")] == sorted(
            (a["id"] for a in everything if a["kind"] == "yellow"), reverse=True)
        assert error_code(sup.get("/api/supervise/alerts", params={"status": "closed"})) == "invalid"
        assert error_code(sup.get("/api/supervise/alerts", params={"kind": "green"})) == "invalid"

        # Acknowledge, then resolve with a note; wrong steps are refused and change nothing.
        acked = sup.post(f"/api/supervise/alerts/{yellow['id']}/ack")
        assert acked.status_code == 200
        view = acked.json()["alert"]
        assert view["status"] == "acknowledged" and view["acknowledged_by"] == "SUP" and view["acknowledged_at"]
        again = sup.post(f"/api/supervise/alerts/{yellow['id']}/ack")
        assert again.status_code == 409 and error_code(again) == "invalid_transition"
        for body, code in (({"note": "   "}, "note_required"), ({}, "note_required"), ({"note": 5}, "invalid"),
                           ({"note": "x" * 501}, "note_too_long"), ({"note": "ok", "extra": 1}, "invalid")):
            refused = sup.post(f"/api/supervise/alerts/{yellow['id']}/resolve", json=body)
            assert refused.status_code == 400 and error_code(refused) == code, body
        assert error_code(sup.post(f"/api/supervise/alerts/{yellow['id']}/resolve", content=b"nope")) == "bad_json"
        resolved = sup.post(f"/api/supervise/alerts/{yellow['id']}/resolve", json={"note": "已电话督办，窗口承诺 10 月 8 日办结"})
        assert resolved.status_code == 200
        view = resolved.json()["alert"]
        assert view["status"] == "resolved" and view["resolved_by"] == "SUP"
        assert view["resolution_note"] == "已电话督办，窗口承诺 10 月 8 日办结"
        assert sup.post(f"/api/supervise/alerts/{yellow['id']}/ack").status_code == 409
        assert sup.post(f"/api/supervise/alerts/{yellow['id']}/resolve", json={"note": "x"}).status_code == 409
        # An open alert may be resolved directly.
        assert sup.post(f"/api/supervise/alerts/{blue}/resolve", json={"note": "已回访"}).status_code == 200
        assert [a["id"] for a in listed(sup, status="resolved")] == [blue, yellow["id"]]
        assert listed(sup, status="resolved", kind="blue")[0]["resolved_by"] == "SUP"

        with Session(s.engine) as session:
            life = [e for e in session.exec(select(Event).order_by(Event.seq))
                    if e.kind.startswith("alert.") and e.data.get("alert_id") == yellow["id"]]
            assert [e.kind for e in life] == ["alert.raised", "alert.acknowledged", "alert.resolved"]
            sup_id = session.exec(select(User).where(User.username == "sup")).one().id
            assert life[0].actor == "system" and life[1].actor == life[2].actor == f"user:{sup_id}"
            assert life[2].data["note"] == "已电话督办，窗口承诺 10 月 8 日办结"
            assert all(e.session_id is not None for e in life)  # on the call's own chain too
            stored = session.get(Alert, yellow["id"])
            assert stored is not None and stored.status is AlertStatus.RESOLVED
            assert verify_chains(session).ok


async def test_supervisors_get_wall_alert_pushes(live_settings, monkeypatch):
    import signaling.supervision_sweep as sweeps
    from signaling.protocol_client import ProtocolClient, login_cookie

    monkeypatch.setattr(sweeps, "SWEEP_INTERVAL_S", 0.2)
    with site(live_settings, at("2026-09-30", "10:00")) as s, \
            closing(booth_client(s.url, s.tokens["b1"])) as booth, closing(login(s.url, "sup", PASSWORD)) as sup:
        watcher = await ProtocolClient.connect(s.url, "supervisor", cookie=login_cookie(s.url, "sup", PASSWORD))
        west = await ProtocolClient.connect(s.url, "supervisor", cookie=login_cookie(s.url, "supwest", PASSWORD))
        try:
            # Blue from the booth API: the push carries exactly what the list shows.
            alert_id = booth.post("/api/booth/complaints", json={"category": "could_not_hear"}).json()["alert_id"]
            pushed = await watcher.wait_for("wall.alert", lambda m: m["alert"]["id"] == alert_id)
            assert pushed["alert"] == listed(sup)[0]
            assert pushed["alert"]["kind"] == "blue" and pushed["alert"]["status"] == "open"

            sup.post(f"/api/supervise/alerts/{alert_id}/ack")
            acked = await watcher.wait_for("wall.alert", lambda m: m["alert"]["id"] == alert_id)
            assert acked["alert"]["status"] == "acknowledged" and acked["alert"]["acknowledged_by"] == "SUP"
            sup.post(f"/api/supervise/alerts/{alert_id}/resolve", json={"note": "已处理"})
            done = await watcher.wait_for("wall.alert", lambda m: m["alert"]["id"] == alert_id)
            assert done["alert"]["status"] == "resolved" and done["alert"]["resolution_note"] == "已处理"

            # Yellow from the app's own periodic sweep (its clock stands at 30 Sep, 10:00).
            case_id = case_for(s, "b1", d("2026-10-09"))
            swept = await watcher.wait_for("wall.alert", lambda m: m["alert"]["case_id"] == case_id, timeout_s=20)
            assert swept["alert"]["kind"] == "yellow" and swept["alert"]["deadline"] == "2026-10-09"
            # Time moves on: red, and the yellow resolved by the system.
            s.clock.now = at("2026-10-10")
            red = await watcher.wait_for("wall.alert", lambda m: m["alert"]["case_id"] == case_id
                                         and m["alert"]["kind"] == "red", timeout_s=20)
            assert red["alert"]["status"] == "open"

            # A supervisor scoped to west hears west's alerts only.
            west_alert = (await _complain(s, "b3"))["alert_id"]
            heard = await west.wait_for("wall.alert")
            assert heard["alert"]["id"] == west_alert, "a dongcheng alert reached the west-only supervisor"
        finally:
            await watcher.close()
            await west.close()


async def _complain(s: Site, booth: str) -> dict[str, Any]:
    with closing(booth_client(s.url, s.tokens[booth])) as client:
        return client.post("/api/booth/complaints", json={"category": "other"}).json()
